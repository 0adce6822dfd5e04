"""The timeline is the event log about the incident and its alerts, in order, immutable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.lifecycle import services, timeline
from incidents.models import Incident
from tests.incidents.core_support import NOON, clear, fire, settings_for
from tocsin.models import EventLogIsAppendOnly


def test_timeline_has_alert_and_incident_events_in_order(crew, service):
    settings_for(service, auto_resolve=True)
    fire(service, NOON)
    incident = Incident.objects.get()
    services.acknowledge(incident, actor=crew.responder)
    services.add_note(incident, "rolling back", actor=crew.responder)
    clear(service, NOON + timedelta(minutes=3))
    events = list(timeline.for_incident(incident))
    assert [e.kind for e in events] == [
        "alert.firing",
        "incident.triggered",
        "incident.acknowledged",
        "incident.note",
        "alert.resolved",
        "incident.resolved",
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[3].payload["text"] == "rolling back"
    assert events[2].actor == crew.responder


def test_other_incidents_events_stay_out(crew, service):
    fire(service, NOON, alertname="A")
    fire(service, NOON, alertname="B")
    a, b = Incident.objects.order_by("id")
    services.add_note(b, "about b", actor=crew.responder)
    assert "incident.note" not in [e.kind for e in timeline.for_incident(a)]


def test_timeline_entries_cannot_be_changed(crew, service):
    fire(service, NOON)
    incident = Incident.objects.get()
    event = timeline.for_incident(incident).first()
    with pytest.raises(EventLogIsAppendOnly):
        event.delete()
    with pytest.raises(EventLogIsAppendOnly):
        timeline.for_incident(incident).update(kind="x")
