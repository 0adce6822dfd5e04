"""Fixtures and helpers for the incident core tests (grouping, lifecycle, escalation, links)."""

from __future__ import annotations

from datetime import UTC, datetime

from incidents.models import (
    EscalationPolicy,
    EscalationStep,
    GroupingMode,
    Incident,
    ServiceIncidentSettings,
)
from monitoring.models import Service, Severity
from monitoring.pipeline import AlertInput, process
from tocsin.models import Event

# A Wednesday, 12:00 UTC.
NOON = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def make_service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Checkout API")


def fire(service: Service, now: datetime = NOON, **labels: str):
    labels = labels or {"alertname": "HighLatency"}
    severity = labels.pop("_severity", Severity.CRITICAL)
    [outcome] = process(
        service, [AlertInput(labels=labels, severity=severity)], source="test", now=now
    )
    return outcome.alert


def clear(service: Service, now: datetime = NOON, **labels: str):
    labels = labels or {"alertname": "HighLatency"}
    [outcome] = process(
        service, [AlertInput(labels=labels, status="resolved")], source="test", now=now
    )
    return outcome.alert


def settings_for(service: Service, **fields) -> ServiceIncidentSettings:
    obj, _ = ServiceIncidentSettings.objects.update_or_create(service=service, defaults=fields)
    return obj


def settings_form(service: Service, **changes) -> dict:
    """What the admin's service incident settings form posts: the defaults, and ``changes``."""
    return {
        "service": service.pk,
        "grouping_mode": "fingerprint",
        "group_labels": "[]",
        "window_minutes": 10,
        "reopen_window_minutes": 0,
        "storm_threshold": 20,
        "storm_window_minutes": 5,
        "priority_map": "{}",
        "urgency_map": "{}",
        **changes,
    }


def policy(team, *steps: dict, **fields) -> EscalationPolicy:
    p = EscalationPolicy.objects.create(team=team, name=fields.pop("name", "Default"), **fields)
    for position, step in enumerate(steps):
        EscalationStep.objects.create(policy=p, position=position, **step)
    return p


def kinds(incident: Incident) -> list[str]:
    return list(
        Event.objects.filter(subject_type="incident", subject_id=str(incident.pk))
        .order_by("id")
        .values_list("kind", flat=True)
    )


__all__ = [
    "NOON",
    "GroupingMode",
    "clear",
    "fire",
    "kinds",
    "make_service",
    "policy",
    "settings_for",
]
