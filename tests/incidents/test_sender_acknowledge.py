"""An Events v2 ``acknowledge`` acknowledges the incident, as in PagerDuty: escalation stops
and the timeline says the sender did it."""

from __future__ import annotations

import json
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from incidents.escalation.engine import advance_escalations
from incidents.lifecycle import timeline
from incidents.models import Incident, IncidentStatus
from monitoring.models import Integration, IntegrationKind
from tests.incidents.core_support import policy, settings_for

URL = "/ingest/pagerduty/v2/enqueue"


def send(key: str, action: str, **extra) -> None:
    body = {"routing_key": key, "dedup_key": "db-1/disk", "event_action": action, **extra}
    response = Client().post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content


def test_a_sender_acknowledge_acknowledges_the_incident_and_stops_escalation(crew, service):
    settings_for(
        service,
        escalation_policy=policy(
            crew.team,
            {"delay_minutes": 0, "user_ids": [crew.responder.pk]},
            {"delay_minutes": 5, "user_ids": [crew.manager.pk]},
        ),
    )
    integration = Integration(service=service, kind=IntegrationKind.EVENTS_V2, name="Nagios")
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()

    send(key, "trigger", payload={"summary": "Disk full", "source": "db-1", "severity": "error"})
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    assert incident.next_step_at is not None

    send(key, "acknowledge")

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED
    assert incident.next_step_at is None
    assert advance_escalations(timezone.now() + timedelta(hours=1)) == 0
    events = [e for e in timeline.for_incident(incident) if e.kind == "incident.acknowledged"]
    assert len(events) == 1
    assert events[0].payload["via"] == "sender"
    text = timeline.describe(events[0], {})
    assert text == "Acknowledged by the sender (events_v2: Nagios)"

    send(key, "acknowledge")  # a repeat changes nothing
    assert sum(e.kind == "incident.acknowledged" for e in timeline.for_incident(incident)) == 1
