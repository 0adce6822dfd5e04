"""“It's over”: when an incident resolves, everyone who was paged for it hears so.

Subscribed to ``incident.resolved`` (``incidents.apps``), so it runs inside the transaction
that resolved the incident, whatever resolved it (the web, the API, an action link, the
sender, auto-resolve), and writes outbox rows: the notice is as durable as a page and is
sent, retried and shown on the timeline the same way.

Who hears: every user with a page delivery for the incident, unless they opted out. Through
what: the contact methods of their first notification rules that apply to the incident's
urgency and have ``notify_on_resolve`` on (those with the shortest delay: where the page reached
them first), or their account address when they have no rules at all. A rule with the option
off is skipped (a later rule that has it on then speaks for it); a user whose applying rules all
have it off hears nothing, and does not fall back to the account address: that fallback is for
people who chose no rules, not for people who chose silence. One notice per resolution, user
and destination:
the dedup key is ``incident:<id>:resolved:<event id>:user:<id>:…``, so a retried
transaction or a second subscriber run never sends twice, and a reopened incident that
resolves again says so again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model

from incidents.models import ChannelKind, Delivery, Incident, NotificationRule
from incidents.notifications.outbox import _enqueue
from incidents.notifications.render import render
from tocsin.models import Event

__all__ = ["notice_rules", "notify_paged", "resolved_key"]


def notice_rules(rules: Iterable[NotificationRule], urgency: str) -> list[NotificationRule]:
    """The rules whose contact methods carry the resolved notice for an incident of ``urgency``.

    Empty when rules exist but none both applies and has ``notify_on_resolve`` on: nothing is
    sent (the account-address fallback is only for users without any rule). Also what the
    notification settings page explains, so the page and the sending agree.
    """
    telling = [rule for rule in rules if rule.applies_to(urgency) and rule.notify_on_resolve]
    first = min((rule.delay_minutes for rule in telling), default=0)
    return sorted(
        (rule for rule in telling if rule.delay_minutes == first), key=lambda rule: rule.pk
    )


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
        rules = list(user.notification_rules.all())
        methods = {
            rule.contact_method_id: rule.contact_method
            for rule in notice_rules(rules, incident.urgency)
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
