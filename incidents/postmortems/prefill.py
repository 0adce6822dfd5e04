"""A new postmortem starts from what the incident's timeline already knows.

Summary, impact and the key moments (triggered, acknowledged, escalated, resolved…) are written
from the event log, so the authors edit a draft instead of retyping history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.lifecycle import timeline
from incidents.models import (
    Incident,
)
from tocsin.models import Event

# --- prefill ----------------------------------------------------------------------------------

KEY_KINDS = frozenset(
    {
        "incident.triggered",
        "incident.alert_added",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.escalated",
        "incident.reassigned",
        "incident.commander_set",
        "incident.priority_changed",
        "incident.note",
        "incident.status_update",
        "incident.resolved",
        "incident.reopened",
        "incident.merged",
        "incident.merged_into",
        "incident.split",
        "alert.resolved",
    }
)

_BY_WHOM = frozenset(
    {
        "incident.acknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.priority_changed",
        "incident.merged",
        "incident.split",
    }
)

MAX_ROW_TEXT = 2_000  # per timeline row


def duration_text(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    parts.append(f"{minutes} min" if minutes or not (days or hours) else "")
    return " ".join(p for p in parts if p)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _iso(value: datetime) -> str:
    """Timeline row times: UTC, whole seconds (what people read and type back)."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def timeline_line(event: Event, users: dict[int, str], title: str = "") -> str:
    """One line for a postmortem reader: what happened, by whom, and what was written."""
    sentence = timeline.describe(event, users)
    if event.kind == "incident.triggered" and title and not event.payload.get("split_from"):
        return f"{sentence}: “{title}”"
    who = event.actor.get_username() if event.actor else (event.actor_label or "")
    text = " ".join(str((event.payload or {}).get("text") or "").split())
    if event.kind == "incident.note":
        return f"Note by {who or 'someone'}: {text}"
    if event.kind == "incident.status_update":
        return f"Status update by {who or 'someone'}: {text}"
    if event.kind in _BY_WHOM and event.actor is not None:
        head, colon, reason = sentence.partition(": ")
        return f"{head} by {who}{colon}{reason}"
    return sentence


def prefill_timeline(incident: Incident) -> list[dict[str, Any]]:
    """The incident's key events as editable rows, oldest first."""
    events = [e for e in timeline.for_incident(incident) if e.kind in KEY_KINDS]
    events = [
        e for e in events if not (e.kind == "incident.escalated" and e.payload.get("skipped"))
    ]
    user_ids = {
        u for e in events if e.kind == "incident.escalated" for u in e.payload.get("user_ids") or []
    }
    User = get_user_model()
    users = dict(User.objects.filter(pk__in=user_ids).values_list("pk", User.USERNAME_FIELD))
    return [
        {
            "at": _iso(e.created_at),
            "text": timeline_line(e, users, incident.title)[:MAX_ROW_TEXT],
            "event_id": e.pk,
            "kind": e.kind,
        }
        for e in events
    ]


def prefill_summary(incident: Incident) -> str:
    service = incident.service.name
    opened = _when(incident.created_at)
    if incident.resolved_at:
        took = duration_text(incident.resolved_at - incident.created_at)
        line = (
            f"“{incident.title}” on {service}: triggered {opened} UTC, "
            f"resolved {_when(incident.resolved_at)} UTC after {took}."
        )
    else:
        line = f"“{incident.title}” on {service}: triggered {opened} UTC, still open."
    return line + (f"\n\n{incident.summary.strip()}" if incident.summary.strip() else "")


def prefill_impact(incident: Incident) -> str:
    end = incident.resolved_at or timezone.now()
    took = duration_text(end - incident.created_at)
    alerts = incident.alert_links.count()
    until = f"until {_when(incident.resolved_at)} UTC" if incident.resolved_at else "and counting"
    return (
        f"{incident.service.name} was affected for {took} (from {_when(incident.created_at)} UTC "
        f"{until}). Priority {incident.get_priority_display()}, "
        f"{incident.get_urgency_display().lower()} urgency; "
        f"{alerts} alert{'s' if alerts != 1 else ''}."
    )
