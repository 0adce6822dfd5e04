"""Incident operations: one way to acknowledge, resolve, reassign… called from every surface.

Each operation locks the incident row, applies the model's state transition and records an
``incident.*`` event about the incident in the same transaction, so the timeline (the event
log, see ``incidents.lifecycle.timeline``) is complete. Permission checks belong to the callers
(API, UI,
admin, action links), which ask ``tocsin.permissions``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.models import (
    OPEN_STATUSES,
    Incident,
    IncidentAlert,
    IncidentStatus,
    Priority,
)
from monitoring.models import Alert
from tocsin.events import record
from tocsin.permissions import Action, can, members_who_may
from tocsin.services import ServiceError

MAX_NOTE_LENGTH = 10_000


def _locked(incident: Incident) -> Incident:
    """The row, locked for this transaction; the caller's instance is refreshed from it."""
    fresh = Incident.objects.select_for_update().get(pk=incident.pk)
    for field in Incident._meta.concrete_fields:
        setattr(incident, field.attname, getattr(fresh, field.attname))
    return incident


def _event(
    kind: str,
    incident: Incident,
    *,
    actor: Any = None,
    actor_label: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    record(
        kind,
        team=incident.team_id,
        subject=incident,
        actor=actor,
        actor_label=actor_label,
        payload={"incident_id": incident.pk, **(payload or {})},
    )


def acknowledge(
    incident: Incident,
    *,
    actor: Any = None,
    via: str = "web",
    actor_label: str = "",
    now: datetime | None = None,
) -> bool:
    """Someone is on it: escalation stops. False when it was already acknowledged."""
    now = now or timezone.now()
    with transaction.atomic():
        _locked(incident)
        if not incident.mark_acknowledged(actor, now):
            return False
        incident.save()
        _event(
            "incident.acknowledged",
            incident,
            actor=actor,
            actor_label=actor_label,
            payload={
                "via": via,
                "ack_timeout_at": incident.ack_timeout_at and incident.ack_timeout_at.isoformat(),
            },
        )
    return True


def acknowledgement_expired(
    incident: Incident, *, actor_label: str, now: datetime | None = None
) -> Incident:
    """The acknowledgement ran out (the policy's ack timeout): triggered again, escalation from
    the start. The caller has claimed the expiry (a conditional UPDATE), so this runs once."""
    from incidents.escalation import engine as escalation

    now = now or timezone.now()
    with transaction.atomic():
        _locked(incident)
        incident.mark_triggered(now)
        incident.save()
        _event(
            "incident.unacknowledged",
            incident,
            actor_label=actor_label,
            payload={"reason": "ack timeout"},
        )
        escalation.restart(incident, now=now)
    return incident


def resolve(
    incident: Incident,
    *,
    actor: Any = None,
    via: str = "web",
    actor_label: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> bool:
    """Done. False when it was already resolved."""
    now = now or timezone.now()
    with transaction.atomic():
        _locked(incident)
        if not incident.mark_resolved(now):
            return False
        incident.save()
        _event(
            "incident.resolved",
            incident,
            actor=actor,
            actor_label=actor_label,
            payload={"via": via, "reason": reason[:500]},
        )
    return True


def open_incident(
    service: Any,
    *,
    title: str,
    priority: str,
    urgency: str,
    group_key: str,
    policy: Any,
    alert_id: int,
    summary: str = "",
    actor: Any = None,
    actor_label: str = "",
    now: datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> Incident:
    """The one way an incident is born (grouping, split): the row, its ``incident.triggered``
    event and the start of its escalation, in the caller's transaction — ``open_incident_batch``
    with one. An IntegrityError means another open incident holds this group already; the caller
    decides what to do then."""
    from incidents.lifecycle.opening import NewIncident, open_incident_batch

    spec = NewIncident(title, priority, urgency, group_key, alert_id, summary)
    [incident] = open_incident_batch(
        service,
        [spec],
        policy=policy,
        actor=actor,
        actor_label=actor_label,
        now=now,
        payload=payload,
    )
    return incident


def reopen(
    incident: Incident,
    *,
    actor: Any = None,
    actor_label: str = "",
    reason: str = "manual",
    now: datetime | None = None,
) -> Incident:
    """Back to triggered, escalation from the start (with a fresh round, so pages go out).

    The one way to reopen: from the page, the API, and grouping (an alert fired again within
    the reopen window)."""
    from incidents.escalation import engine as escalation

    now = now or timezone.now()
    try:
        with transaction.atomic():
            _locked(incident)
            if incident.status != IncidentStatus.RESOLVED:
                raise ServiceError("only a resolved incident can be reopened", None, "not_resolved")
            incident.mark_triggered(now)
            incident.save()  # the unique constraint decides whether another open incident won
            _event(
                "incident.reopened",
                incident,
                actor=actor,
                actor_label=actor_label,
                payload={"reason": reason},
            )
            escalation.restart(incident, now=now)
    except IntegrityError:
        incident.refresh_from_db()
        raise ServiceError(
            "another open incident already holds this group of alerts; work on that one",
            None,
            "duplicate",
        ) from None
    return incident


def _require_responder(incident: Incident, user: Any, field: str) -> None:
    if user is None:
        return
    if not user.is_active:
        raise ServiceError("this user account is deactivated", field)
    if not can(user, Action.RESPOND, incident):
        raise ServiceError(
            f"{user.get_username()} is not a responder in {incident.team}", field, "not_member"
        )


def reassign(
    incident: Incident, user: Any, *, actor: Any, actor_label: str = "", via: str = ""
) -> Incident:
    """Make ``user`` (a responder of the team, or None) the assignee. ``via="escalation"``:
    a policy step reassigns to whom it pages (the policy chose them, so no role check)."""
    return _set_person(
        incident, "assignee", user, "incident.reassigned", actor, actor_label, via=via
    )


def set_commander(incident: Incident, user: Any, *, actor: Any) -> Incident:
    """Make ``user`` (a responder of the team, or None) the incident commander."""
    return _set_person(incident, "commander", user, "incident.commander_set", actor, "")


def _set_person(
    incident: Incident,
    field: str,
    user: Any,
    kind: str,
    actor: Any,
    actor_label: str,
    *,
    via: str = "",
) -> Incident:
    if not via:
        _require_responder(incident, user, "user")
    with transaction.atomic():
        _locked(incident)
        before = getattr(incident, f"{field}_id")
        if before == (user.pk if user else None):
            return incident
        setattr(incident, field, user)
        incident.save(update_fields=[field])
        _event(
            kind,
            incident,
            actor=actor,
            actor_label=actor_label,
            payload={
                field: [before, user.pk if user else None],
                "username": user.get_username() if user else "",
                **({"via": via} if via else {}),
            },
        )
    return incident


def set_priority(incident: Incident, priority: str, *, actor: Any) -> Incident:
    if priority not in Priority.values:
        raise ServiceError(f"one of {', '.join(Priority.values)}", "priority")
    with transaction.atomic():
        _locked(incident)
        if incident.priority == priority:
            return incident
        before = incident.priority
        incident.priority = priority
        incident.save(update_fields=["priority"])
        _event(
            "incident.priority_changed",
            incident,
            actor=actor,
            payload={"priority": [before, priority]},
        )
    return incident


def _clean_text(text: str, field: str = "text") -> str:
    text = (text or "").strip()
    if not text:
        raise ServiceError("write something", field, "required")
    if len(text) > MAX_NOTE_LENGTH:
        raise ServiceError(f"at most {MAX_NOTE_LENGTH} characters", field)
    return text


def add_note(incident: Incident, text: str, *, actor: Any) -> None:
    """A note lives only in the timeline: the event is the note."""
    text = _clean_text(text)
    with transaction.atomic():
        _event("incident.note", incident, actor=actor, payload={"text": text})


def post_status_update(incident: Incident, text: str, *, actor: Any) -> None:
    """A status update for stakeholders (status pages and subscribers read these events)."""
    text = _clean_text(text)
    with transaction.atomic():
        _locked(incident)
        _event(
            "incident.status_update",
            incident,
            actor=actor,
            payload={"text": text, "status": incident.status},
        )


def merge(target: Incident, sources: Iterable[Incident], *, actor: Any) -> Incident:
    """Move the sources' alerts into ``target`` and resolve the sources as merged into it."""
    sources = list(sources)
    if not sources:
        raise ServiceError("name at least one incident to merge", "sources", "required")
    if any(s.pk == target.pk for s in sources):
        raise ServiceError("an incident cannot be merged into itself", "sources")
    if any(s.team_id != target.team_id for s in sources):
        raise ServiceError("only incidents of the same team can be merged", "sources")
    with transaction.atomic():
        # Lock in id order so two merges touching the same incidents cannot deadlock.
        locked = {
            i.pk: i
            for i in Incident.objects.select_for_update()
            .filter(pk__in=[target.pk, *(s.pk for s in sources)])
            .order_by("pk")
        }
        _locked(target)
        if not target.is_open:
            raise ServiceError("merge into an open incident", "target", "resolved")
        moved: list[int] = []
        for source in sources:
            source = locked[source.pk]
            if source.merged_into_id is not None:
                raise ServiceError(f"incident #{source.pk} was already merged", "sources")
            alert_ids = list(
                IncidentAlert.objects.filter(incident=source).values_list("alert_id", flat=True)
            )
            IncidentAlert.objects.filter(incident=source).update(incident=target)
            moved.extend(alert_ids)
            source.mark_resolved(timezone.now(), merged_into=target)
            source.save()
            _event(
                "incident.merged_into",
                source,
                actor=actor,
                payload={"target_id": target.pk, "alert_ids": alert_ids},
            )
        _event(
            "incident.merged",
            target,
            actor=actor,
            payload={"source_ids": [s.pk for s in sources], "alert_ids": moved},
        )
    return target


def split(incident: Incident, alerts: Iterable[Alert], *, actor: Any) -> Incident:
    """Move some of the incident's alerts into a new incident of their own, which triggers."""
    from incidents.models import ServiceIncidentSettings

    alert_ids = sorted({a.pk for a in alerts})
    if not alert_ids:
        raise ServiceError("choose the alerts to split off", "alerts", "required")
    now = timezone.now()
    with transaction.atomic():
        _locked(incident)
        if not incident.is_open:
            raise ServiceError("only an open incident can be split", None, "resolved")
        links = IncidentAlert.objects.filter(incident=incident)
        own = set(links.values_list("alert_id", flat=True))
        if not set(alert_ids) <= own:
            raise ServiceError("these alerts are not all part of this incident", "alerts")
        if set(alert_ids) == own:
            raise ServiceError("leave at least one alert in the incident", "alerts")
        first = Alert.objects.get(pk=alert_ids[0])
        settings = ServiceIncidentSettings.for_service(incident.service)
        new = open_incident(
            incident.service,
            title=first.summary or incident.title,
            priority=incident.priority,
            urgency=incident.urgency,
            group_key=f"split:{incident.pk}:{alert_ids[0]}",
            policy=settings.escalation_policy,
            alert_id=alert_ids[0],
            actor=actor,
            now=now,
            payload={"split_from": incident.pk, "alert_ids": alert_ids},
        )
        links.filter(alert_id__in=alert_ids).update(incident=new)
        _event(
            "incident.split",
            incident,
            actor=actor,
            payload={"new_id": new.pk, "alert_ids": alert_ids},
        )
    return new


def responders(incident: Incident) -> list[Any]:
    """The team's members who may act on the incident (reassign choices)."""
    return list(members_who_may(Action.RESPOND, incident.team_id))


def open_incidents() -> Any:
    return Incident.objects.filter(status__in=OPEN_STATUSES)
