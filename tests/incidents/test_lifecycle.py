"""Incident state transitions through the services, each recorded as an event."""

from __future__ import annotations

import pytest

from incidents.lifecycle import services
from incidents.models import Incident, IncidentAlert, IncidentStatus
from tests.incidents.core_support import NOON, fire, kinds
from tocsin.services import ServiceError


@pytest.fixture
def incident(service):
    fire(service, NOON)
    return Incident.objects.get()


def test_acknowledge_then_resolve(crew, incident):
    assert services.acknowledge(incident, actor=crew.responder) is True
    assert incident.status == IncidentStatus.ACKNOWLEDGED
    assert incident.assignee == crew.responder
    assert services.acknowledge(incident, actor=crew.manager) is False  # a repeat is harmless
    assert services.resolve(incident, actor=crew.responder) is True
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED and incident.resolved_at
    assert kinds(incident) == ["incident.triggered", "incident.acknowledged", "incident.resolved"]


def test_a_resolved_incident_cannot_be_acknowledged(crew, incident):
    services.resolve(incident, actor=crew.responder)
    with pytest.raises(ServiceError):
        services.acknowledge(incident, actor=crew.responder)


def test_reopen(crew, incident):
    services.resolve(incident, actor=crew.responder)
    services.reopen(incident, actor=crew.responder)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED and incident.resolved_at is None
    with pytest.raises(ServiceError):
        services.reopen(incident, actor=crew.responder)


def test_reassign_only_to_responders(crew, incident):
    services.reassign(incident, crew.manager, actor=crew.responder)
    assert Incident.objects.get().assignee == crew.manager
    with pytest.raises(ServiceError) as exc:
        services.reassign(incident, crew.viewer, actor=crew.responder)
    assert exc.value.field == "user"
    with pytest.raises(ServiceError):
        services.reassign(incident, crew.outsider, actor=crew.responder)


def test_commander_priority_note_status_update(crew, incident):
    services.set_commander(incident, crew.manager, actor=crew.manager)
    services.set_priority(incident, "P2", actor=crew.manager)
    services.add_note(incident, "looking at the DB", actor=crew.responder)
    services.post_status_update(incident, "Degraded checkout", actor=crew.manager)
    with pytest.raises(ServiceError):
        services.add_note(incident, "   ", actor=crew.responder)
    with pytest.raises(ServiceError):
        services.set_priority(incident, "P9", actor=crew.manager)
    incident.refresh_from_db()
    assert (incident.commander, incident.priority) == (crew.manager, "P2")
    assert kinds(incident)[1:] == [
        "incident.commander_set",
        "incident.priority_changed",
        "incident.note",
        "incident.status_update",
    ]


def test_merge_moves_alerts_and_resolves_sources(crew, service):
    fire(service, NOON, alertname="A")
    fire(service, NOON, alertname="B")
    target, source = Incident.objects.order_by("id")
    services.merge(target, [source], actor=crew.responder)
    source.refresh_from_db()
    assert source.status == IncidentStatus.RESOLVED and source.merged_into == target
    assert IncidentAlert.objects.filter(incident=target).count() == 2
    assert "incident.merged" in kinds(target) and "incident.merged_into" in kinds(source)
    with pytest.raises(ServiceError):
        services.merge(target, [target], actor=crew.responder)
    with pytest.raises(ServiceError):  # merged incidents cannot be reopened
        services.reopen(source, actor=crew.responder)


def test_split_moves_alerts_into_a_new_incident(crew, service):
    fire(service, NOON, alertname="A")
    fire(service, NOON, alertname="B")
    target, source = Incident.objects.order_by("id")
    services.merge(target, [source], actor=crew.responder)
    b = IncidentAlert.objects.get(alert__labels__alertname="B").alert
    new = services.split(target, [b], actor=crew.responder)
    assert new.status == IncidentStatus.TRIGGERED
    assert IncidentAlert.objects.get(alert=b).incident == new
    assert IncidentAlert.objects.filter(incident=target).count() == 1
    with pytest.raises(ServiceError):  # the last alert stays
        services.split(new, [b], actor=crew.responder)
