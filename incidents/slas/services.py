"""Response SLAs: due times on incidents, breaches recorded once, an alert about each.

Due times are rows (``Incident.ack_due_at``/``resolve_due_at``), set from the team's
``ResponseTarget`` whenever a clock starts: the incident triggers (``incident.triggered``), is
reopened (both clocks again), its acknowledgement times out (``incident.unacknowledged``: the
acknowledge clock again) or its priority changes (due times re-counted from when the clocks
started; a recorded breach stays recorded). That happens in ``on_incident_event``, subscribed
to those events (``incidents.apps``) and run in the same transaction as the change, so every way an
incident changes
(grouping, the services, escalation, the admin) is covered by one piece of code.

``record_due_breaches`` (every minute, from any number of workers) finds running clocks past
their due time and claims each with a conditional UPDATE of the breach marker: a second
worker's UPDATE matches nothing. The claim, the ``incident.sla_breached`` event and the alert
commit together. An acknowledgement or resolution after the due time that the loop has not
seen yet (workers down, or within the minute) records the breach when it happens, so the rows
say the same thing however late the workers are; that breach raises no alert, it is over.

The alert goes to the team's internal "Tocsin SLAs" service, not the incident's: give that
service an escalation policy that pages whoever should hear about breaches (a duty manager).
Incidents of that service have no targets, so a breach alert can never breach in turn.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from incidents.models import (
    OPEN_STATUSES,
    Incident,
    IncidentStatus,
    ResponseTarget,
)
from monitoring.models import Service
from tocsin.events import record
from tocsin.models import Event
from tocsin.services import ServiceError

log = logging.getLogger(__name__)

BATCH = 200
ACTOR = "sla"
SLA_SERVICE_NAME = "Tocsin SLAs"
SLA_SERVICE_SLUG = "tocsin-slas"

# The two targets: (name in events and the API, Incident field prefix).
ACK = "acknowledge"
RESOLVE = "resolve"
TARGETS = (ACK, RESOLVE)
_PREFIX = {ACK: "ack", RESOLVE: "resolve"}

BREACH_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info", "P5": "info"}

TARGET_FIELDS = ("service", "priority", "ack_minutes", "resolve_minutes")

__all__ = [
    "ACK",
    "RESOLVE",
    "SLA_SERVICE_SLUG",
    "create_target",
    "delete_target",
    "is_sla_service",
    "record_breach",
    "record_due_breaches",
    "state",
    "target_for",
    "update_target",
]


def due_field(target: str) -> str:
    return f"{_PREFIX[target]}_due_at"


def breached_field(target: str) -> str:
    return f"{_PREFIX[target]}_breached_at"


def is_sla_service(service: Service) -> bool:
    return service.slug == SLA_SERVICE_SLUG


# --- Targets and due times ---------------------------------------------------------------------


def target_for(incident: Incident) -> ResponseTarget | None:
    """The service's own target for the incident's priority, else the team's; one query."""
    if is_sla_service(incident.service):
        return None  # breach alerts are not held to targets: no breach about a breach
    return (
        ResponseTarget.objects.filter(team_id=incident.team_id, priority=incident.priority)
        .filter(Q(service_id=incident.service_id) | Q(service__isnull=True))
        .order_by(F("service_id").asc(nulls_last=True))
        .first()
    )


def _clocks(incident: Incident, *, ack: bool, resolve: bool, restart: bool) -> None:
    target = target_for(incident)
    before = {f: getattr(incident, f) for f in _SLA_FIELDS}
    incident.set_response_due(
        target.ack_minutes if target else None,
        target.resolve_minutes if target else None,
        ack=ack,
        resolve=resolve,
        restart=restart,
    )
    changed = {f: getattr(incident, f) for f in _SLA_FIELDS if getattr(incident, f) != before[f]}
    if changed:  # no target, nothing was set: no write
        # Only these columns: the caller's own copy of the row may be about to save others.
        Incident.objects.filter(pk=incident.pk).update(**changed)


_SLA_FIELDS = ("ack_due_at", "resolve_due_at", "ack_breached_at", "resolve_breached_at")

# Which clocks an incident event starts.
_STARTS = {
    "incident.triggered": (True, True),
    "incident.reopened": (True, True),
    "incident.unacknowledged": (True, False),
}
_ENDS = frozenset({"incident.acknowledged", "incident.resolved", "incident.merged_into"})


# Every event that starts, re-counts or ends a response clock; apps.py subscribes to them.
CLOCK_EVENTS = (*_STARTS, *sorted(_ENDS), "incident.priority_changed")


def on_incident_events(pairs: list[tuple[Event, Incident]]) -> None:
    """Batch subscriber (``on_events``): a batch of incidents opened together (a storm) starts
    their clocks with one read of the targets and one write; anything else goes one by one."""
    triggered = [
        incident
        for event, incident in pairs
        if event.kind == "incident.triggered" and isinstance(incident, Incident)
    ]
    if not triggered or len(triggered) != len(pairs):
        for event, incident in pairs:
            on_incident_event(event, incident)
        return
    targets = _targets_for(triggered)
    changed = []
    for incident in triggered:
        target = None  # breach alerts are not held to targets (as in ``target_for``)
        if not is_sla_service(incident.service):
            team, priority = incident.team_id, incident.priority
            target = targets.get((team, incident.service_id, priority)) or targets.get(
                (team, None, priority)
            )
        before = [getattr(incident, f) for f in _SLA_FIELDS]
        incident.set_response_due(
            target.ack_minutes if target else None,
            target.resolve_minutes if target else None,
            ack=True,
            resolve=True,
            restart=True,
        )
        if [getattr(incident, f) for f in _SLA_FIELDS] != before:
            changed.append(incident)
    if changed:
        Incident.objects.bulk_update(changed, _SLA_FIELDS)


def _targets_for(incidents: list[Incident]) -> dict[tuple, ResponseTarget]:
    """The targets of these incidents' teams, by (team, service or None, priority); one query."""
    rows = ResponseTarget.objects.filter(team_id__in={i.team_id for i in incidents})
    return {(row.team_id, row.service_id, row.priority): row for row in rows}


def on_incident_event(event: Event, incident: Incident) -> None:
    """Subscriber (``on_event``): keep the incident's due times in step with its lifecycle.

    Runs in the transaction of the change, on the emitter's own Incident instance."""
    kind = event.kind
    if not isinstance(incident, Incident):  # recorded without the instance at hand
        found = Incident.objects.select_related("service", "team").filter(pk=event.subject_id)
        incident = found.first() if str(event.subject_id).isdecimal() else None
        if incident is None:
            return
    if kind in _STARTS:
        ack, resolve = _STARTS[kind]
        _clocks(incident, ack=ack, resolve=resolve, restart=True)
    elif kind == "incident.priority_changed":
        # Only clocks still running: a target already met or missed stays as it was judged.
        _clocks(
            incident,
            ack=incident.status == IncidentStatus.TRIGGERED,
            resolve=incident.status in OPEN_STATUSES,
            restart=False,
        )
    else:
        # Merged into another incident: a duplicate closed, not the work done late.
        _clocks_ended(incident, record_late=kind != "incident.merged_into")


def _clocks_ended(incident: Incident, *, record_late: bool = True) -> None:
    """Acknowledged or resolved: a late one is a breach (if not recorded yet); a breach alert
    whose clock has stopped is resolved."""
    ended = {ACK: incident.ack_ended_at(), RESOLVE: incident.resolved_at}
    for target in TARGETS:
        end = ended[target]
        if end is None:
            continue
        due = getattr(incident, due_field(target))
        late = due is not None and end > due
        if late and record_late and getattr(incident, breached_field(target)) is None:
            record_breach(incident.pk, target, end, alert=False)
        elif getattr(incident, breached_field(target)) is not None:
            _resolve_breach_alert(incident, target)


# --- Breaches ----------------------------------------------------------------------------------


def _running(target: str, now: datetime) -> Q:
    """The clock is running, past due, and its breach is not recorded (the partial index)."""
    status = Q(status=IncidentStatus.TRIGGERED) if target == ACK else Q(status__in=OPEN_STATUSES)
    return status & Q(
        **{f"{due_field(target)}__lte": now, f"{breached_field(target)}__isnull": True}
    )


def due_breaches(now: datetime | None = None) -> list[tuple[int, str]]:
    """(incident id, target) of every running clock past due with no breach recorded."""
    now = now or timezone.now()
    due: list[tuple[int, str]] = []
    for target in TARGETS:
        pks = (
            Incident.objects.filter(_running(target, now))
            .order_by(due_field(target))
            .values_list("pk", flat=True)[:BATCH]
        )
        due.extend((pk, target) for pk in pks)
    return due


def record_due_breaches(now: datetime | None = None) -> int:
    """The worker loop body: record every due breach; returns how many this call recorded."""
    now = now or timezone.now()
    return sum(record_breach(pk, target, now) for pk, target in due_breaches(now))


def record_breach(pk: int, target: str, now: datetime, *, alert: bool = True) -> bool:
    """Claim and record one breach; False when there is none, or another worker recorded it.

    ``alert=False`` when the clock has already stopped (a late acknowledgement): the breach
    is history, nobody needs paging about it.
    """
    marker = breached_field(target)
    condition = (
        _running(target, now)
        if alert
        else Q(**{f"{due_field(target)}__lt": now, f"{marker}__isnull": True})
    )
    with transaction.atomic():
        claimed = Incident.objects.filter(condition, pk=pk).update(**{marker: now})
        if not claimed:
            return False
        incident = Incident.objects.select_related("team", "service").get(pk=pk)
        due = getattr(incident, due_field(target))
        start = (
            incident.ack_clock_started_at if target == ACK else incident.resolve_clock_started_at
        )
        minutes = round((due - start).total_seconds() / 60)
        late = int((now - due).total_seconds())
        record(
            "incident.sla_breached",
            team=incident.team_id,
            subject=incident,
            actor_label=ACTOR,
            payload={
                "incident_id": incident.pk,
                "target": target,
                "priority": incident.priority,
                "target_minutes": minutes,
                "due_at": due.isoformat(),
                "late_seconds": late,
                "service_id": incident.service_id,
                "alerted": alert,
            },
        )
        if alert:
            _raise_breach_alert(incident, target, minutes)
    log.info("incident %s: %s target of %s min breached", pk, target, minutes)
    return True


def breach_fingerprint(incident: Incident | int, target: str) -> str:
    pk = incident if isinstance(incident, int) else incident.pk
    return f"sla-incident-{pk}-{target}"


def _sla_service(team_id: int) -> Service:
    from monitoring.services import ensure_internal_service

    return ensure_internal_service(
        team_id,
        slug=SLA_SERVICE_SLUG,
        name=SLA_SERVICE_NAME,
        integration_name="SLAs",
        description="Alerts Tocsin raises when incidents miss response targets.",
    )


def _raise_breach_alert(incident: Incident, target: str, minutes: int) -> None:
    from incidents.notifications.render import incident_url
    from monitoring.pipeline import AlertInput, raise_alert

    verb = "acknowledged" if target == ACK else "resolved"
    url = incident_url(incident)
    raise_alert(
        _sla_service(incident.team_id),
        AlertInput(
            labels={
                "alertname": "IncidentResponseTargetMissed",
                "incident": str(incident.pk),
                "target": target,
                "priority": incident.priority,
                "service": incident.service.name,
            },
            fingerprint=breach_fingerprint(incident, target),
            severity=BREACH_SEVERITY.get(incident.priority, "warning"),
            summary=(
                f"{incident.priority} incident #{incident.pk} not {verb} within {minutes} min"
            )[:500],
            description=f"{incident.title}\n{url}",
            links=[{"href": url, "text": f"Incident #{incident.pk}"}],
        ),
        source=ACTOR,
    )


def _resolve_breach_alert(incident: Incident, target: str) -> None:
    from monitoring.pipeline import resolve_alert

    service = Service.objects.filter(team_id=incident.team_id, slug=SLA_SERVICE_SLUG).first()
    if service is not None:
        resolve_alert(service, breach_fingerprint(incident, target), source=ACTOR)


# --- What the incident page shows --------------------------------------------------------------


def state(incident: Incident, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per target with a due time: due, met, breached (recorded) or missed (not yet recorded)."""
    now = now or timezone.now()
    ended = {ACK: incident.ack_ended_at(), RESOLVE: incident.resolved_at}
    rows = []
    for target in TARGETS:
        due = getattr(incident, due_field(target))
        breached = getattr(incident, breached_field(target))
        if due is None and breached is None:
            continue
        end = ended[target]
        if breached is not None:
            status = "breached"
        elif end is not None:
            status = "met" if due is None or end <= due else "missed"
        elif due <= now:
            status = "missed"
        else:
            status = "due"
        start = (
            incident.ack_clock_started_at if target == ACK else incident.resolve_clock_started_at
        )
        rows.append(
            {
                "target": target,
                "label": "Acknowledge" if target == ACK else "Resolve",
                "minutes": round((due - start).total_seconds() / 60) if due else None,
                "due_at": due,
                "breached_at": breached,
                "status": status,
                "seconds_left": int((due - now).total_seconds()) if due else None,
            }
        )
    return rows


# --- Managing targets (API and admin call these) -----------------------------------------------


def _check(target: ResponseTarget) -> None:
    from django.core.exceptions import ValidationError

    try:
        target.full_clean()
    except ValidationError as exc:
        field, errors = next(iter(exc.error_dict.items()))
        error = errors[0]
        message = " ".join(error.messages)
        code = "duplicate" if error.code == "duplicate" else "invalid"
        raise ServiceError(message, None if field == "__all__" else field, code) from None


def _snapshot(target: ResponseTarget) -> dict[str, Any]:
    return {
        "id": target.pk,
        "service_id": target.service_id,
        "priority": target.priority,
        "ack_minutes": target.ack_minutes,
        "resolve_minutes": target.resolve_minutes,
    }


def create_target(team: Any, *, actor: Any, **fields: Any) -> ResponseTarget:
    unknown = set(fields) - set(TARGET_FIELDS)
    if unknown:
        raise ServiceError("unknown field", sorted(unknown)[0])
    target = ResponseTarget(team=team, **fields)
    return _save(target, "response_target.created", actor)


def update_target(target: ResponseTarget, *, actor: Any, **changes: Any) -> ResponseTarget:
    """Change a target; incidents already running keep the due times they got."""
    for key, value in changes.items():
        if key not in TARGET_FIELDS:
            raise ServiceError("unknown field", key)
        setattr(target, key, value)
    target.updated_at = timezone.now()
    return _save(target, "response_target.updated", actor)


def _save(target: ResponseTarget, kind: str, actor: Any) -> ResponseTarget:
    """Validate, save and record; a second target for the same priority is a conflict."""
    _check(target)
    try:
        with transaction.atomic():
            target.save()
            record(
                kind, team=target.team_id, subject=target, actor=actor, payload=_snapshot(target)
            )
    except IntegrityError:
        raise ServiceError("a target for this priority already exists", None, "duplicate") from None
    return target


def delete_target(target: ResponseTarget, *, actor: Any) -> None:
    with transaction.atomic():
        record(
            "response_target.deleted",
            team=target.team_id,
            subject=target,
            actor=actor,
            payload=_snapshot(target),
        )
        target.delete()
