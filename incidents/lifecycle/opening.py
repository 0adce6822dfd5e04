"""Opening incidents in bulk: a storm's batch of alerts opens its incidents with one INSERT.

``open_incident_batch`` is the one way incidents are born; ``services.open_incident`` opens one
through it. Grouping (``incidents.lifecycle.grouping``) calls it for a batch of alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from incidents.models import Incident
from tocsin.events import NewEvent, record_many
from tocsin.scheduling import run_soon

__all__ = ["NewIncident", "open_incident_batch"]


@dataclass
class NewIncident:
    """What ``open_incidents`` needs to open one incident."""

    title: str
    priority: str
    urgency: str
    group_key: str
    alert_id: int
    summary: str = ""


class _PolicyAsRead:
    """A policy read once for a batch: every incident of the batch snapshots the same steps."""

    def __init__(self, policy: Any) -> None:
        self._snapshot = policy.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot


def open_incident_batch(
    service: Any,
    new: list[NewIncident],
    *,
    policy: Any,
    actor: Any = None,
    actor_label: str = "",
    now: datetime | None = None,
    payload: dict[str, Any] | None = None,
    more_events: Callable[[list[Incident]], list[NewEvent]] | None = None,
) -> list[Incident]:
    """The one way incidents are born (grouping, split): the rows, their ``incident.triggered``
    events and the start of their escalation, in the caller's transaction — one INSERT for the
    rows and one for the events, however many. An IntegrityError (nothing stored) means another
    open incident holds one of these groups already; the caller decides what to do then.
    ``more_events(incidents)`` adds the caller's own events about them to the same INSERT."""
    from incidents.escalation import engine as escalation

    now = now or timezone.now()
    if policy is not None and len(new) > 1:
        policy = _PolicyAsRead(policy)
    incidents = [
        Incident(
            team_id=service.team_id,
            service=service,
            title=spec.title[:500],
            summary=spec.summary,
            priority=spec.priority,
            urgency=spec.urgency,
            created_at=now,
            group_key=spec.group_key[:255],
        )
        for spec in new
    ]
    due_now = [escalation.prepare_start(incident, policy, now=now) for incident in incidents]
    with transaction.atomic():  # a savepoint: the caller goes on after an IntegrityError
        Incident.objects.bulk_create(incidents)
    record_many(
        [
            NewEvent(
                "incident.triggered",
                incident.team_id,
                subject=incident,
                actor=actor,
                actor_label=actor_label,
                payload={
                    "incident_id": incident.pk,
                    "service_id": service.pk,
                    "alert_id": spec.alert_id,
                    "group_key": incident.group_key,
                    "priority": incident.priority,
                    "urgency": incident.urgency,
                    **(payload or {}),
                },
            )
            for incident, spec in zip(incidents, new, strict=True)
        ]
        + (more_events(incidents) if more_events else [])
    )
    if any(due_now):
        run_soon(escalation.WAKE)  # one hint for the batch; the due-work loop pages
    return incidents
