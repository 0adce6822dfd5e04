"""Alert events: one payload builder, the Alert itself handed to subscribers, the sender named.

Subscribers (``on_event``) receive the Alert instance the pipeline holds, up to date and with its
service loaded, so incidents reads nothing again; ``last_change_at`` is the pipeline's clock.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import create_silence
from tests.monitoring.ingest_support import post
from tocsin.events import on_event
from tocsin.events.kinds import ALERT_PAYLOAD
from tocsin.models import Event

pytestmark = pytest.mark.django_db

KINDS = [
    "alert.firing",
    "alert.refired",
    "alert.updated",
    "alert.resolved",
    "alert.acknowledged",
    "alert.suppressed",
    "alert.unsuppressed",
]
# (kind, subject, a copy of what the subject said when the handler ran); filled while a test
# listens. on_event has no "off", so the handler is registered once and idles between tests.
heard: list[tuple[str, object, dict]] | None = None


def _listen(event, subject) -> None:
    if heard is not None:
        heard.append(
            (
                event.kind,
                subject,
                {
                    "status": subject.status,
                    "suppression": subject.suppression,
                    "last_change_at": subject.last_change_at,
                    "service_cached": Alert.service.is_cached(subject),
                    "acknowledged_at": subject.acknowledged_at,
                },
            )
        )


on_event(KINDS, _listen)


@pytest.fixture
def listening():
    global heard
    heard = []
    yield heard
    heard = None


def item(**overrides) -> AlertInput:
    return AlertInput(labels={"alertname": "DiskFull", "host": "db-1"}, **overrides)


def test_subscribers_get_the_alert_itself_up_to_date_with_its_service(service, listening):
    now = timezone.now()
    [outcome] = process(service, [item()], source="generic", now=now)
    later = now + timedelta(minutes=1)
    process(service, [item(status="resolved")], source="generic", now=later)
    assert [kind for kind, _, _ in listening] == ["alert.firing", "alert.resolved"]
    (_, first, seen_first), (_, second, seen_second) = listening
    assert first.pk == second.pk == outcome.alert.pk
    assert isinstance(first, Alert)
    assert seen_first == {
        "status": "firing",
        "suppression": "",
        "last_change_at": now,
        "service_cached": True,
        "acknowledged_at": None,
    }
    assert seen_second["status"] == "resolved"
    assert seen_second["last_change_at"] == later
    assert seen_second["service_cached"]


def test_suppression_changes_hand_over_the_alert_and_carry_the_full_payload(
    service, crew, listening
):
    process(service, [item()], source="generic")
    listening.clear()
    silence = create_silence(
        team=service.team, matchers='host="db-1"', duration=timedelta(hours=1), actor=crew.manager
    )
    [(kind, subject, seen)] = listening
    assert kind == "alert.suppressed"
    assert isinstance(subject, Alert) and seen["service_cached"]
    assert seen["suppression"] == "silenced"
    event = Event.objects.get(kind="alert.suppressed")
    assert set(ALERT_PAYLOAD) <= set(event.payload)
    assert event.payload["previous"] == {"suppression": "", "suppressed_by": {}}
    assert event.payload["suppressed_by"]["id"] == silence.pk


def test_every_alert_event_carries_the_declared_payload(service):
    process(service, [item()], source="generic")
    process(service, [item(severity="critical")], source="generic")
    process(service, [item(status="resolved")], source="generic")
    process(service, [item()], source="generic")
    events = Event.objects.filter(kind__startswith="alert.").order_by("id")
    assert [e.kind for e in events] == [
        "alert.firing",
        "alert.updated",
        "alert.resolved",
        "alert.refired",
    ]
    for event in events:
        assert set(ALERT_PAYLOAD) <= set(event.payload), event.kind
    assert events[1].payload["before"]["severity"] == "error"


def test_an_events_v2_acknowledge_records_alert_acknowledged_naming_the_sender(doors, listening):
    door = doors["events_v2"]
    trigger = {
        "routing_key": door.key,
        "event_action": "trigger",
        "dedup_key": "disk-db-1",
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical"},
    }
    assert post("/ingest/pagerduty/v2/enqueue", trigger).status_code == 202
    ack = {"routing_key": door.key, "event_action": "acknowledge", "dedup_key": "disk-db-1"}
    assert post("/ingest/pagerduty/v2/enqueue", ack).status_code == 202

    event = Event.objects.get(kind="alert.acknowledged")
    alert = Alert.objects.get()
    assert (event.subject_type, event.subject_id) == ("alert", str(alert.pk))
    assert event.actor_label == f"events_v2: {door.integration.name}"
    assert alert.acknowledged_at is not None
    kind, subject, seen = listening[-1]
    assert kind == "alert.acknowledged"
    assert subject.pk == alert.pk and seen["acknowledged_at"] == alert.acknowledged_at
    assert seen["service_cached"]
