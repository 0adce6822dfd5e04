"""Threshold rules: aggregations, comparisons, pending → firing → resolved, one event each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.metrics import SampleInput, record_samples
from monitoring.metrics.rules import (
    create_rule,
    delete_rule,
    evaluate_rule,
    evaluate_rules,
    preview_rule,
    update_rule,
)
from monitoring.models import Alert, AlertRule, AlertRuleState
from tocsin.models import Event
from tocsin.services import ServiceError

T0 = timezone.now().replace(microsecond=0)


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def sample(team, value, minutes, name="cpu", **labels):
    when = at(minutes)
    record_samples(team, SampleInput(name, value, labels or {"host": "web-1"}, time=when), now=when)


def alert_kinds() -> list[str]:
    return list(
        Event.objects.filter(kind__startswith="alert.")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def make_rule(service, **overrides) -> AlertRule:
    fields = {
        "name": "CPU high",
        "service": service,
        "metric": "cpu",
        "aggregation": "avg",
        "window_seconds": 120,
        "comparison": ">",
        "threshold": 90,
        "for_seconds": 0,
        "severity": "critical",
    }
    fields.update(overrides)
    return create_rule(service.team, **fields)


def test_it_fires_after_for_and_resolves_with_exactly_one_event_each(service):
    rule = make_rule(service, for_seconds=180, window_seconds=60, aggregation="last")
    values = [50, 95, 96, 97, 98, 99, 97, 40, 30, 20]
    for minute, value in enumerate(values):
        sample(service.team, value, minute)
        evaluate_rules(now=at(minute) + timedelta(seconds=5))
        state = AlertRuleState.objects.get(rule=rule)
        if minute == 0:
            assert state.state == "inactive"
        elif minute in (1, 2, 3):  # 95 seen at minute 1: pending for 0, 1, 2 minutes
            assert state.state == "pending"
            assert state.pending_since == at(1) + timedelta(seconds=5)
        elif minute in (4, 5, 6):  # held for 3 minutes: firing, and stays so
            assert state.state == "firing"
        else:
            assert state.state == "inactive"
    assert alert_kinds() == ["alert.firing", "alert.resolved"]
    alert = Alert.objects.get()
    assert (alert.source, alert.severity, alert.status) == ("rule", "critical", "resolved")
    assert alert.fingerprint == rule.fingerprint({"host": "web-1"})
    assert alert.labels == {"host": "web-1", "alertname": "CPU high"}
    assert alert.details["value"] == 98.0  # the value when it fired


def test_a_condition_that_stops_before_for_never_fires(service):
    make_rule(service, for_seconds=300, aggregation="last", window_seconds=60)
    for minute, value in enumerate([95, 95, 10, 95, 95]):
        sample(service.team, value, minute)
        evaluate_rules(now=at(minute) + timedelta(seconds=1))
    assert alert_kinds() == []
    state = AlertRuleState.objects.get()
    assert state.pending_since == at(3) + timedelta(seconds=1)  # the timer restarted


@pytest.mark.parametrize(
    ("comparison", "threshold", "fires"),
    [
        (">", 10, False),
        (">", 9, True),
        (">=", 10, True),
        (">=", 11, False),
        ("<", 10, False),
        ("<", 11, True),
        ("<=", 10, True),
        ("<=", 9, False),
        ("==", 10, True),
        ("==", 10.5, False),
        ("!=", 10, False),
        ("!=", 11, True),
    ],
)
def test_each_comparison(service, comparison, threshold, fires):
    make_rule(service, comparison=comparison, threshold=threshold, aggregation="last")
    sample(service.team, 10, 0)
    evaluate_rules(now=at(0.5))
    assert Alert.objects.filter(status="firing").exists() is fires


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    # rate: +20, then 30 → 20 reads as a restart (+20), over two minutes
    [("avg", 20.0), ("min", 10.0), ("max", 30.0), ("last", 20.0), ("rate", 40 / 120)],
)
def test_each_aggregation(service, aggregation, expected):
    make_rule(service, aggregation=aggregation, window_seconds=300)
    sample(service.team, 10, -10)  # outside the window
    for minute, value in [(1, 10), (2, 30), (3, 20)]:
        sample(service.team, value, minute)
    sample(service.team, 99, 5)  # after "now"
    evaluation = preview_rule(AlertRule.objects.get(), now=at(4))
    [series] = evaluation.series
    assert series.value == pytest.approx(expected)


def test_rate_counts_a_counter_reset_as_a_restart(service):
    make_rule(service, aggregation="rate", metric="requests_total", window_seconds=600)
    for minute, value in [(0, 100), (1, 160), (2, 20), (3, 80)]:  # restarted between 1 and 2
        sample(service.team, value, minute, name="requests_total")
    [series] = preview_rule(AlertRule.objects.get(), now=at(3.5)).series
    assert series.value == pytest.approx((60 + 20 + 60) / 180)


def test_rate_needs_two_samples(service):
    make_rule(service, aggregation="rate", metric="requests_total")
    sample(service.team, 100, 0, name="requests_total")
    assert preview_rule(AlertRule.objects.get(), now=at(0.5)).series == []


def test_matchers_choose_series_and_each_series_alerts_on_its_own(service):
    make_rule(
        service,
        aggregation="last",
        matchers=['host=~"web-.*"'],
        summary_template="{{ labels.host }} at {{ value }}% (over {{ threshold }}%)",
    )
    sample(service.team, 95, 0, host="web-1")
    sample(service.team, 97.5, 0, host="web-2")
    sample(service.team, 99, 0, host="db-1")
    counts = evaluate_rules(now=at(0.5))
    assert counts["fired"] == 2
    summaries = sorted(Alert.objects.values_list("summary", flat=True))
    assert summaries == ["web-1 at 95% (over 90%)", "web-2 at 97.5% (over 90%)"]
    assert len(set(Alert.objects.values_list("fingerprint", flat=True))) == 2


def test_other_teams_series_are_not_watched(service, crew):
    make_rule(service, aggregation="last")
    sample(crew.other_team, 99, 0)
    evaluate_rules(now=at(0.5))
    assert not Alert.objects.exists()


def test_a_series_that_stops_reporting_resolves(service):
    make_rule(service, aggregation="last", window_seconds=60)
    sample(service.team, 95, 0)
    evaluate_rules(now=at(0.5))
    evaluate_rules(now=at(5))  # nothing in the last minute
    assert alert_kinds() == ["alert.firing", "alert.resolved"]
    assert not AlertRuleState.objects.exists()


def test_a_second_evaluation_moments_later_is_skipped(service):
    rule = make_rule(service, aggregation="last")
    sample(service.team, 95, 0)
    assert evaluate_rules(now=at(0.5))["evaluated"] == 1
    assert evaluate_rules(now=at(0.6))["skipped"] == 1
    assert evaluate_rule(rule, now=at(0.6)) is None
    assert alert_kinds() == ["alert.firing"]


def test_disabling_a_rule_resolves_its_alerts(service):
    rule = make_rule(service, aggregation="last")
    sample(service.team, 95, 0)
    evaluate_rules(now=at(0.5))
    update_rule(rule, enabled=False)
    assert alert_kinds() == ["alert.firing", "alert.resolved"]
    evaluate_rules(now=at(2))
    assert alert_kinds() == ["alert.firing", "alert.resolved"]


def test_a_rule_disabled_behind_the_services_back_is_retired_by_the_loop(service):
    rule = make_rule(service, aggregation="last")
    sample(service.team, 95, 0)
    evaluate_rules(now=at(0.5))
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert evaluate_rules(now=at(2))["retired"] == 1
    assert Alert.objects.get().status == "resolved"


def test_deleting_a_rule_resolves_its_alerts(service):
    rule = make_rule(service, aggregation="last")
    sample(service.team, 95, 0)
    evaluate_rules(now=at(0.5))
    delete_rule(rule)
    assert Alert.objects.get().status == "resolved"
    assert list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    )[-2:] == [
        "alert.resolved",
        "alert_rule.deleted",
    ]


def test_preview_changes_nothing(service):
    rule = make_rule(service, aggregation="last")
    sample(service.team, 95, 0)
    before = Event.objects.count()
    evaluation = preview_rule(rule, now=at(0.5))
    [series] = evaluation.series
    assert (series.breaching, series.change, series.state) == (True, "fired", "firing")
    assert Event.objects.count() == before
    assert not AlertRuleState.objects.exists()
    assert not Alert.objects.exists()


def test_a_failing_rule_does_not_stop_the_others(service, monkeypatch):
    broken = make_rule(service, name="broken", aggregation="last")
    make_rule(service, name="fine", aggregation="last")
    sample(service.team, 95, 0)
    import monitoring.metrics.rules as module

    real = module.measure

    def measure(rule, now):
        if rule.pk == broken.pk:
            raise RuntimeError("boom")
        return real(rule, now)

    monkeypatch.setattr(module, "measure", measure)
    counts = evaluate_rules(now=at(0.5))
    assert (counts["failed"], counts["fired"]) == (1, 1)


def test_rules_record_their_changes(service):
    rule = make_rule(service)
    update_rule(rule, threshold=80)
    kinds = list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == ["alert_rule.created", "alert_rule.updated"]
    assert Event.objects.order_by("id").last().payload["changes"] == {"threshold": [90, 80]}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"metric": "bad-name"}, "metric"),
        ({"matchers": ["host=~(unclosed"]}, "matchers"),
        ({"window_seconds": 5}, "window_seconds"),
        ({"summary_template": "{{ value.__class__ }}"}, "summary_template"),
        ({"labels": {"bad-label": "x"}}, "labels"),
        ({"comparison": "=>"}, "comparison"),
    ],
)
def test_invalid_rules_are_refused(service, overrides, field):
    with pytest.raises(ServiceError) as caught:
        make_rule(service, **overrides)
    assert caught.value.field == field
    assert not AlertRule.objects.exists()


def test_a_rule_cannot_raise_on_another_teams_service(service, other_service):
    with pytest.raises(ServiceError) as caught:
        create_rule(service.team, name="x", service=other_service, metric="cpu", threshold=1)
    assert caught.value.field == "service"


def test_rule_names_are_unique_per_team(service):
    make_rule(service)
    with pytest.raises(ServiceError) as caught:
        make_rule(service)
    assert caught.value.code == "duplicate"


def test_templates_only_look_values_up(service):
    rule = make_rule(
        service,
        summary_template="{{ rule }}: {{metric}} {{ labels.host }}={{ value }} {{ labels.nope }}!",
        description_template="threshold {{ threshold }}",
    )
    summary, description = rule.render(91.25, {"host": "web-1"})
    assert summary == "CPU high: cpu web-1=91.25 !"
    assert description == "threshold 90"
    assert rule.expression == "avg(cpu[2m]) > 90"


# --- admin --------------------------------------------------------------------------------------


def test_the_admin_lists_rules_and_tests_them_now(client, crew, service):
    rule = make_rule(service, aggregation="last", matchers=['host="web-1"'])
    # "Test now" reads the last 2 minutes of the real clock, not this module's T0 (imported
    # minutes ago in a long run).
    now = timezone.now()
    record_samples(service.team, SampleInput("cpu", 95, {"host": "web-1"}, time=now), now=now)
    client.force_login(crew.manager)
    listing = client.get("/admin/monitoring/alertrule/")
    assert listing.status_code == 200
    assert b"last(cpu{host=&quot;web-1&quot;}[2m]) &gt; 90" in listing.content
    response = client.post(
        "/admin/monitoring/alertrule/",
        {"action": "test_now", "_selected_action": [rule.pk]},
        follow=True,
    )
    assert b"1 series, 1 breaching" in response.content
    assert not Alert.objects.exists()
    assert client.get(f"/admin/monitoring/alertrule/{rule.pk}/change/").status_code == 200
    assert client.get("/admin/monitoring/metricseries/").status_code == 200


def test_the_admin_creates_rules_through_the_service(client, crew, service):
    client.force_login(crew.manager)
    form = {
        "team": crew.team.pk,
        "service": service.pk,
        "name": "Load",
        "metric": "host_load1",
        "matchers": 'host="web-1"',
        "aggregation": "avg",
        "window_seconds": 300,
        "comparison": ">",
        "threshold": 4,
        "for_seconds": 60,
        "severity": "warning",
        "labels": "{}",
        "summary_template": "{{ nope }}",
        "description_template": "",
        "enabled": "on",
    }
    response = client.post("/admin/monitoring/alertrule/add/", form)
    assert response.status_code == 200  # the unknown placeholder is refused on the form
    assert b"unknown placeholder" in response.content
    assert not AlertRule.objects.exists()
    form["summary_template"] = "load {{ value }}"
    response = client.post("/admin/monitoring/alertrule/add/", form)
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.matchers == [{"name": "host", "op": "=", "value": "web-1"}]
    assert Event.objects.get(kind__startswith="alert_rule").kind == "alert_rule.created"
    form["threshold"] = 5
    response = client.post(f"/admin/monitoring/alertrule/{rule.pk}/change/", form)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 5
    assert Event.objects.order_by("id").last().payload["changes"] == {"threshold": [4, 5]}
