"""Silences: time bounds, scope, the pipeline storing suppressed alerts, re-evaluation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import suppression
from monitoring.models import Alert, Silence, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import (
    create_silence,
    expire_silence,
    find_suppression,
    reevaluate_suppressions,
    silence_alert,
)
from tocsin.models import Event
from tocsin.services import ServiceError

LABELS = {"alertname": "HighLatency", "instance": "api-1", "severity": "critical"}


def fire(service, labels=None, now=None, **kw):
    item = AlertInput(labels=dict(labels or LABELS), **kw)
    return process(service, [item], source="test", now=now)[0]


def kinds():
    return list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    )


@pytest.fixture
def now():
    return timezone.now()


def test_silence_state_follows_its_time_bounds(crew, now):
    silence = Silence(
        team=crew.team,
        matchers=[{"name": "a", "op": "=", "value": "b"}],
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
    )
    assert silence.state(now) == "pending" and not silence.is_active(now)
    assert silence.is_active(now + timedelta(hours=1))  # starts_at is inclusive
    assert silence.is_active(now + timedelta(minutes=119))
    assert silence.state(now + timedelta(hours=2)) == "expired"  # ends_at is exclusive


def test_a_pending_silence_does_not_suppress_yet(service, crew, now):
    create_silence(
        team=crew.team,
        matchers='alertname="HighLatency"',
        starts_at=now + timedelta(hours=1),
        duration=timedelta(hours=1),
        now=now,
    )
    outcome = fire(service, now=now)
    assert outcome.alert.suppression == ""
    later = now + timedelta(hours=1, minutes=1)
    assert find_suppression(outcome.alert, later).kind == Suppression.SILENCED
    assert find_suppression(outcome.alert, now + timedelta(hours=3)) is None


def test_the_pipeline_stores_a_silenced_alert_and_records_why(service, crew):
    silence = create_silence(
        team=crew.team,
        matchers='alertname="HighLatency", severity=~"crit.*"',
        duration=timedelta(hours=1),
        comment="deploying",
        actor=crew.responder,
    )
    outcome = fire(service)
    alert = Alert.objects.get()
    assert alert.suppression == Suppression.SILENCED
    assert alert.suppressed_by == {"kind": "silenced", "id": silence.pk, "label": silence.label}
    event = Event.objects.get(kind="alert.firing")
    assert event.payload["suppression"] == "silenced"
    assert event.payload["suppressed_by"]["id"] == silence.pk
    assert outcome.alert.pk == alert.pk


def test_a_silence_created_event_is_recorded(crew):
    silence = create_silence(
        team=crew.team, matchers="alertname=X", duration=timedelta(minutes=30), actor=crew.manager
    )
    event = Event.objects.get(kind="silence.created")
    assert event.team_id == crew.team.pk and event.actor == crew.manager
    assert event.payload["matchers"] == [{"name": "alertname", "op": "=", "value": "X"}]
    assert silence.created_by == crew.manager


def test_non_matching_labels_are_not_silenced(service, crew):
    create_silence(team=crew.team, matchers='alertname="Other"', duration=timedelta(hours=1))
    assert fire(service).alert.suppression == ""


def test_silences_of_another_team_do_not_apply(service, crew):
    create_silence(team=crew.other_team, matchers="alertname=HighLatency", duration=timedelta(1))
    assert fire(service).alert.suppression == ""


def test_a_service_scoped_silence_spares_other_services(service, crew):
    from monitoring.models import Service

    sibling = Service.objects.create(team=crew.team, name="Billing")
    create_silence(
        team=crew.team, service=sibling, matchers="alertname=HighLatency", duration=timedelta(1)
    )
    assert fire(service).alert.suppression == ""
    assert fire(sibling).alert.suppression == Suppression.SILENCED


def test_a_new_silence_suppresses_firing_alerts_at_once(service, crew):
    fire(service)
    silence = create_silence(
        team=crew.team, matchers="instance=api-1", duration=timedelta(hours=1), actor=crew.responder
    )
    alert = Alert.objects.get()
    assert alert.suppression == Suppression.SILENCED and alert.suppressed_by["id"] == silence.pk
    event = Event.objects.get(kind="alert.suppressed")
    assert event.actor == crew.responder
    assert event.payload["suppressed_by"]["kind"] == "silenced"
    assert event.payload["previous"] == {"suppression": "", "suppressed_by": {}}


def test_expiring_early_unsuppresses_at_once(service, crew):
    silence = create_silence(team=crew.team, matchers="instance=api-1", duration=timedelta(1))
    fire(service)
    expire_silence(silence, actor=crew.responder)
    silence.refresh_from_db()
    assert silence.expired_by == crew.responder and silence.expired_at is not None
    assert silence.state() == "expired"
    assert Alert.objects.get().suppression == ""
    assert kinds()[-2:] == ["silence.expired", "alert.unsuppressed"]
    unsuppressed = Event.objects.get(kind="alert.unsuppressed")
    assert unsuppressed.payload["previous"]["suppressed_by"]["id"] == silence.pk


def test_expiring_an_ended_silence_is_refused(crew):
    silence = create_silence(team=crew.team, matchers="a=b", duration=timedelta(1))
    expire_silence(silence)
    with pytest.raises(ServiceError, match="already ended"):
        expire_silence(silence)


def test_expiring_a_pending_silence_keeps_it_consistent(crew, now):
    silence = create_silence(
        team=crew.team, matchers="a=b", starts_at=now + timedelta(hours=1), duration=timedelta(1)
    )
    expire_silence(silence, now=now)
    silence.refresh_from_db()
    assert silence.starts_at == silence.ends_at == now


def test_the_periodic_task_unsuppresses_when_a_silence_runs_out(service, crew, now):
    create_silence(team=crew.team, matchers="instance=api-1", duration=timedelta(hours=1), now=now)
    fire(service, now=now)
    assert reevaluate_suppressions(now + timedelta(minutes=59)) == 0
    assert reevaluate_suppressions(now + timedelta(hours=1)) == 1
    assert Alert.objects.get().suppression == ""
    assert kinds()[-1] == "alert.unsuppressed"
    assert reevaluate_suppressions(now + timedelta(hours=1)) == 0  # nothing twice


def test_the_periodic_task_suppresses_when_a_pending_silence_starts(service, crew, now):
    start = now + timedelta(minutes=10)
    create_silence(
        team=crew.team, matchers="instance=api-1", starts_at=start, duration=timedelta(1), now=now
    )
    fire(service, now=now)
    assert Alert.objects.get().suppression == ""
    reevaluate_suppressions(start)
    assert Alert.objects.get().suppression == Suppression.SILENCED


def test_resolved_alerts_are_left_alone(service, crew):
    fire(service)
    fire(service, status="resolved")
    create_silence(team=crew.team, matchers="instance=api-1", duration=timedelta(1))
    assert Alert.objects.get().suppression == ""
    assert "alert.suppressed" not in kinds()


def test_one_click_silence_uses_the_alerts_labels_exactly(service, crew):
    alert = fire(service).alert
    silence = silence_alert(alert, timedelta(hours=2), crew.responder, "looking into it")
    assert silence.matchers == [
        {"name": name, "op": "=", "value": value} for name, value in sorted(LABELS.items())
    ]
    assert silence.service_id == service.pk and silence.team_id == crew.team.pk
    assert silence.ends_at - silence.starts_at == timedelta(hours=2)
    alert.refresh_from_db()
    assert alert.suppression == Suppression.SILENCED
    # A sibling with one more label is not the same alert, and stays loud.
    assert fire(service, {**LABELS, "instance": "api-2"}).alert.suppression == ""


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"matchers": 'a=~"("', "duration": timedelta(1)}, "matchers"),
        ({"matchers": "", "duration": timedelta(1)}, "matchers"),
        ({"matchers": 'a=~".*"', "duration": timedelta(1)}, "matchers"),  # would mute everything
        ({"matchers": "a=b"}, "ends_at"),
        ({"matchers": "a=b", "duration": timedelta(0)}, "duration"),
        ({"matchers": "a=b", "ends_at": timezone.now() - timedelta(1)}, "ends_at"),
    ],
)
def test_bad_silences_are_refused_naming_the_field(crew, kwargs, field):
    with pytest.raises(ServiceError) as info:
        create_silence(team=crew.team, **kwargs)
    assert info.value.field == field
    assert not Silence.objects.exists() and not Event.objects.exists()


def test_a_service_of_another_team_is_refused(crew, other_service):
    with pytest.raises(ServiceError) as info:
        create_silence(team=crew.team, service=other_service, matchers="a=b", duration=timedelta(1))
    assert info.value.field == "service"


def test_finding_costs_few_queries(service, crew, django_assert_max_num_queries):
    for i in range(5):
        create_silence(team=crew.team, matchers=f"alertname=X{i}", duration=timedelta(1))
    alert = fire(service).alert
    with django_assert_max_num_queries(3):  # windows, silences, rules
        assert find_suppression(alert, timezone.now()) is None


def test_reevaluation_queries_do_not_grow_with_alerts(service, crew, django_assert_max_num_queries):
    for i in range(10):
        fire(service, {"alertname": f"A{i}"})
    with django_assert_max_num_queries(6):
        assert suppression.reevaluate_suppressions() == 0
