"""An incident's timeline: the event log about the incident and its alerts, oldest first.

Nothing keeps a second history: notes, acknowledgements, escalation steps and the alerts'
own state changes are all events, and this is the one query that reads them back.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from incidents.models import Incident, IncidentAlert
from tocsin.models import Event


def for_incident(incident: Incident) -> QuerySet[Event]:
    alert_ids = [
        str(pk)
        for pk in IncidentAlert.objects.filter(incident=incident).values_list("alert_id", flat=True)
    ]
    about = Q(subject_type="incident", subject_id=str(incident.pk))
    if alert_ids:
        about |= Q(subject_type="alert", subject_id__in=alert_ids)
    return Event.objects.filter(about).select_related("actor").order_by("id")


def user_name(user_id: Any, users: dict[int, str]) -> str:
    return users.get(user_id) or f"user #{user_id}"


def describe(event: Event, users: dict[int, str]) -> str:
    """One readable sentence for a timeline event (the note's own text is shown apart)."""
    p = event.payload or {}
    kind = event.kind
    if kind == "incident.triggered":
        if p.get("split_from"):
            return f"Triggered, split off from incident #{p['split_from']}"
        return "Triggered" + (f" with priority {p['priority']}" if p.get("priority") else "")
    if kind == "incident.alert_added":
        first = p.get("summary") or p.get("alert_id")
        count = int(p.get("count") or 1)
        if count > 1:
            more = count - 1
            return f"{count} alerts joined the incident: “{first}” and {more} more"
        return f"Alert “{first}” joined the incident"
    if kind == "incident.acknowledged":
        via = p.get("via")
        if via == "sender":
            return f"Acknowledged by the sender ({event.actor_label or 'integration'})"
        return "Acknowledged" + (f" (via {via})" if via and via != "web" else "")
    if kind == "incident.unacknowledged":
        return f"Triggered again: {p.get('reason') or 'the acknowledgement ran out'}"
    if kind == "incident.resolved":
        reason = p.get("reason")
        return "Resolved" + (f": {reason}" if reason else "")
    if kind == "incident.reopened":
        return "Reopened" + (f": {p['reason']}" if p.get("reason") else "")
    if kind == "incident.reassigned":
        who = p.get("username")
        text = f"Assigned to {who}" if who else "Unassigned"
        return text + (" by the escalation policy" if p.get("via") == "escalation" else "")
    if kind == "incident.commander_set":
        who = p.get("username")
        return f"{who} is now the incident commander" if who else "The commander was removed"
    if kind == "incident.priority_changed":
        before, after = (p.get("priority") or ["?", "?"])[:2]
        return f"Priority changed from {before} to {after}"
    if kind == "incident.note":
        return "Added a note"
    if kind == "incident.status_update":
        return "Posted a status update"
    if kind == "incident.merged":
        ids = ", ".join(f"#{i}" for i in p.get("source_ids") or [])
        return f"Merged {ids} into this incident"
    if kind == "incident.merged_into":
        return f"Merged into incident #{p.get('target_id')}"
    if kind == "incident.split":
        count = len(p.get("alert_ids") or [])
        plural = "s" if count != 1 else ""
        return f"Split {count} alert{plural} off into incident #{p.get('new_id')}"
    if kind == "incident.escalated":
        step = int(p.get("step") or 0) + 1
        where = f"Escalation step {step}" + (
            f" (round {int(p['round']) + 1})" if p.get("round") else ""
        )
        if p.get("skipped"):
            return f"{where} skipped: {p.get('why') or 'its condition did not hold'}"
        paged = [user_name(u, users) for u in p.get("user_ids") or []]
        return f"{where} paged {', '.join(paged)}" if paged else f"{where} found nobody to page"
    if kind in ("notification.sent", "notification.failed"):
        return _describe_notification(kind, p, users)
    if kind.startswith("postmortem."):
        return _describe_postmortem(kind, p)
    if kind == "incident.sla_breached":
        verb = "acknowledged" if p.get("target") == "acknowledge" else "resolved"
        late = int(p.get("late_seconds") or 0) // 60
        return f"Not {verb} within the {p.get('target_minutes')} min target" + (
            f" ({late} min late)" if late else ""
        )
    if kind.startswith("alert."):
        label = event.subject_label or f"alert #{event.subject_id}"
        verb = kind.split(".", 1)[1].replace("_", " ")
        return f"Alert “{label}” {verb}"
    return kind.replace(".", " ").replace("_", " ").capitalize()


_POSTMORTEM_VERBS = {
    "postmortem.created": "Started the postmortem",
    "postmortem.updated": "Edited the postmortem",
    "postmortem.submitted": "Sent the postmortem for review",
    "postmortem.published": "Published the postmortem",
    "postmortem.reopened": "Reopened the postmortem for editing",
}


def _describe_postmortem(kind: str, p: dict[str, Any]) -> str:
    if kind in _POSTMORTEM_VERBS:
        text = _POSTMORTEM_VERBS[kind]
        changed = [c.replace("_", " ") for c in p.get("changed") or []]
        return text + (f" ({', '.join(changed)})" if changed else "")
    title = p.get("title") or "?"
    if kind == "postmortem.action_item_added":
        owner = f", owner {p['owner']}" if p.get("owner") else ""
        due = f", due {p['due_date']}" if p.get("due_date") else ""
        return f"Action item “{title}” added{owner}{due}"
    if kind == "postmortem.action_item_done":
        return f"Action item “{title}” done"
    if kind == "postmortem.action_item_reopened":
        return f"Action item “{title}” reopened"
    if kind == "postmortem.action_item_deleted":
        return f"Action item “{title}” removed"
    return f"Action item “{title}” changed"


_NOTICES = {"page": "Page", "resolved": "Resolved notice"}


def _describe_notification(kind: str, p: dict[str, Any], users: dict[int, str]) -> str:
    """The outbox's record of one delivery: who, how, and the short error when it failed."""
    from incidents.lifecycle.deliveries import short_error

    what = _NOTICES.get(p.get("event") or "", "Notification")
    who = f" to {user_name(p['recipient_id'], users)}" if p.get("recipient_id") else ""
    how = f" by {p['kind']}" if p.get("kind") else ""
    if kind == "notification.sent":
        return f"{what}{who} sent{how}"
    error = short_error(p.get("error") or "")
    return f"{what}{who} failed{how}" + (f": {error}" if error else "")
