"""Inhibition rules, with Alertmanager's semantics."""

from __future__ import annotations

import pytest

from monitoring.models import Alert, InhibitionRule, Service, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import (
    create_inhibition_rule,
    delete_inhibition_rule,
    reevaluate_suppressions,
    update_inhibition_rule,
)
from tocsin.models import Event
from tocsin.services import ServiceError

DOWN = {"alertname": "NodeDown", "severity": "critical", "cluster": "eu", "node": "n1"}
SLOW = {"alertname": "HighLatency", "severity": "warning", "cluster": "eu", "node": "n1"}


def fire(service, labels, status="firing"):
    return process(service, [AlertInput(labels=dict(labels), status=status)], source="test")[0]


def by_name(name):
    return Alert.objects.get(labels__alertname=name)


@pytest.fixture
def rule(crew):
    return create_inhibition_rule(
        team=crew.team,
        name="node down mutes warnings",
        source_matchers='severity="critical"',
        target_matchers='severity="warning"',
        equal=["cluster", "node"],
        actor=crew.manager,
    )


def test_a_firing_source_inhibits_a_target_with_equal_labels(service, rule):
    fire(service, DOWN)
    target = fire(service, SLOW).alert
    assert target.suppression == Suppression.INHIBITED
    assert target.suppressed_by == {"kind": "inhibited", "id": rule.pk, "label": rule.name}
    assert by_name("NodeDown").suppression == ""
    event = Event.objects.get(kind="alert.firing", subject_id=str(target.pk))
    assert event.payload["suppression"] == "inhibited"


def test_different_equal_labels_do_not_inhibit(service, rule):
    fire(service, DOWN)
    assert fire(service, {**SLOW, "node": "n2"}).alert.suppression == ""


def test_equal_labels_missing_on_both_sides_count_as_equal(service, crew):
    create_inhibition_rule(
        team=crew.team,
        name="r",
        source_matchers="alertname=NodeDown",
        target_matchers="alertname=HighLatency",
        equal=["rack"],
    )
    fire(service, DOWN)
    assert fire(service, SLOW).alert.suppression == Suppression.INHIBITED
    assert fire(service, {**SLOW, "rack": "r1", "x": "1"}).alert.suppression == ""


def test_without_equal_labels_any_source_inhibits(service, crew):
    create_inhibition_rule(
        team=crew.team,
        name="r",
        source_matchers="alertname=NodeDown",
        target_matchers="severity=warning",
    )
    fire(service, {**DOWN, "cluster": "us"})
    assert fire(service, SLOW).alert.suppression == Suppression.INHIBITED


def test_an_alert_does_not_inhibit_itself(service, crew):
    create_inhibition_rule(
        team=crew.team, name="r", source_matchers="cluster=eu", target_matchers="cluster=eu"
    )
    assert fire(service, SLOW).alert.suppression == ""
    reevaluate_suppressions()
    assert by_name("HighLatency").suppression == ""


def test_two_alerts_matching_both_sides_do_not_mute_each_other(service, crew):
    create_inhibition_rule(
        team=crew.team,
        name="r",
        source_matchers="cluster=eu",
        target_matchers="cluster=eu",
        equal=["cluster"],
    )
    fire(service, SLOW)
    fire(service, DOWN)
    reevaluate_suppressions()
    assert [a.suppression for a in Alert.objects.all()] == ["", ""]


def test_mutually_inhibiting_rules_settle_with_one_muted(service, crew):
    create_inhibition_rule(
        team=crew.team,
        name="a",
        source_matchers="alertname=NodeDown",
        target_matchers="alertname=HighLatency",
    )
    create_inhibition_rule(
        team=crew.team,
        name="b",
        source_matchers="alertname=HighLatency",
        target_matchers="alertname=NodeDown",
    )
    fire(service, DOWN)
    fire(service, SLOW)  # inhibited by NodeDown
    for _ in range(3):
        reevaluate_suppressions()
        states = sorted(a.suppression for a in Alert.objects.all())
        assert states == ["", Suppression.INHIBITED]


def test_when_the_source_resolves_its_targets_come_back_at_once(service, rule):
    fire(service, DOWN)
    fire(service, SLOW)
    fire(service, DOWN, status="resolved")
    assert by_name("HighLatency").suppression == ""
    assert Event.objects.filter(kind="alert.unsuppressed").count() == 1
    assert reevaluate_suppressions() == 0  # nothing left for the periodic pass


def test_a_new_source_inhibits_already_firing_targets_at_once(service, rule):
    fire(service, SLOW)
    assert by_name("HighLatency").suppression == ""
    fire(service, DOWN)
    assert by_name("HighLatency").suppression == Suppression.INHIBITED
    assert Event.objects.filter(kind="alert.suppressed").count() == 1


def test_sources_from_other_teams_do_not_inhibit(service, other_service, rule):
    fire(other_service, DOWN)
    assert fire(service, SLOW).alert.suppression == ""


def test_a_service_scoped_rule_only_mutes_that_services_alerts(service, crew):
    billing = Service.objects.create(team=crew.team, name="Billing")
    create_inhibition_rule(
        team=crew.team,
        service=billing,
        name="r",
        source_matchers="alertname=NodeDown",
        target_matchers="severity=warning",
    )
    fire(service, DOWN)  # a source in another service of the team still counts
    assert fire(service, SLOW).alert.suppression == ""
    assert fire(billing, SLOW).alert.suppression == Suppression.INHIBITED


def test_disabled_rules_do_nothing(service, rule, crew):
    update_inhibition_rule(rule, enabled=False, actor=crew.manager)
    fire(service, DOWN)
    assert fire(service, SLOW).alert.suppression == ""


def test_rule_changes_are_recorded_and_reevaluate(service, rule, crew):
    fire(service, DOWN)
    fire(service, SLOW)
    update_inhibition_rule(rule, equal=["cluster", "node", "zone"], actor=crew.manager)
    event = Event.objects.get(kind="inhibition.updated")
    assert event.payload["changes"]["equal"] == [["cluster", "node"], ["cluster", "node", "zone"]]
    assert by_name("HighLatency").suppression == Suppression.INHIBITED  # zone missing on both
    delete_inhibition_rule(rule, actor=crew.manager)
    assert not InhibitionRule.objects.exists()
    assert by_name("HighLatency").suppression == ""
    assert {"inhibition.created", "inhibition.deleted", "alert.unsuppressed"} <= set(
        Event.objects.values_list("kind", flat=True)
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source_matchers": 'a=~"("'}, "source_matchers"),
        ({"target_matchers": ""}, "target_matchers"),
        ({"equal": ["not a label"]}, "equal"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_rules_are_refused(crew, kwargs, field):
    data = {"name": "r", "source_matchers": "a=b", "target_matchers": "c=d", **kwargs}
    with pytest.raises(ServiceError) as info:
        create_inhibition_rule(team=crew.team, **data)
    assert info.value.field == field
    assert not InhibitionRule.objects.exists()
