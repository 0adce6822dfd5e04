"""“It's over”: when an incident resolves, everyone who was paged for it hears so.

Subscribed to ``incident.resolved`` (``incidents.apps``), so it runs inside the transaction
that resolved the incident, whatever resolved it (the web, the API, an action link, the
sender, auto-resolve), and writes outbox rows: the notice is as durable as a page and is
sent, retried and shown on the timeline the same way.

Who hears: every user with a page delivery for the incident. Through what: the contact
methods of their first notification rules that apply to the incident's urgency (those with
the shortest delay: where the page reached them first), or their account address when they
have no rules. One notice per resolution, user and destination:
the dedup key is ``incident:<id>:resolved:<event id>:user:<id>:…``, so a retried
transaction or a second subscriber run never sends twice, and a reopened incident that
resolves again says so again.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from incidents.models import ChannelKind, Delivery, Incident
from incidents.notifications.outbox import _enqueue
from incidents.notifications.render import render
from tocsin.models import Event

__all__ = ["notify_paged", "resolved_key"]


def resolved_key(incident_id: int, event_id: int, user_id: int) -> str:
    return f"incident:{incident_id}:resolved:{event_id}:user:{user_id}"


def notify_paged(event: Event, incident: Any) -> list[Delivery]:
    """Enqueue the resolved notice to each person paged for ``incident``."""
    if not isinstance(incident, Incident):
        return []
    paged = set(
        Delivery.objects.filter(incident=incident, event_kind="page", recipient__isnull=False)
        .order_by()
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    if not paged:
        return []
    reason = (event.payload or {}).get("reason") or ""
    who = event.actor.get_username() if event.actor_id else (event.actor_label or "")
    text = "Resolved" + (f" by {who}" if who else "") + (f": {reason}" if reason else ".")
    subject, body, payload = render(incident, event_kind="resolved", reason=text)
    users = (
        get_user_model()
        .objects.filter(pk__in=paged, is_active=True)
        .prefetch_related("notification_rules__contact_method")
        .order_by("pk")
    )
    common = {
        "team_id": incident.team_id,
        "incident": incident,
        "event_kind": "resolved",
        "subject": subject,
        "body": body,
        "payload": payload,
        "next_attempt_at": event.created_at,
    }
    made: list[Delivery] = []
    for user in users:
        key = resolved_key(incident.pk, event.pk, user.pk)
        rules = sorted(user.notification_rules.all(), key=lambda r: r.pk)
        applying = [rule for rule in rules if rule.applies_to(incident.urgency)]
        first = min((rule.delay_minutes for rule in applying), default=0)
        methods = {
            rule.contact_method_id: rule.contact_method
            for rule in applying
            if rule.delay_minutes == first
        }
        for method in methods.values():
            made.append(
                _enqueue(
                    f"{key}:method-{method.pk}",
                    kind=method.kind,
                    contact_method=method,
                    recipient=user,
                    **common,
                )
            )
        if not rules and user.email:
            made.append(
                _enqueue(f"{key}:account-email", kind=ChannelKind.EMAIL, recipient=user, **common)
            )
    return made
