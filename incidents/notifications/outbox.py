"""Notifications that never get lost: enqueue deliveries (the outbox), and send them.

Callers (escalation, incident services, the API's "test" actions) only enqueue rows:
``page_user`` for people, ``notify_channel`` for team channels. ``send_due_deliveries`` is the
worker loop body, scheduled every minute and kicked right after an enqueue. It claims due rows
with a lease (conditional UPDATE; ``SELECT … FOR UPDATE SKIP LOCKED`` where the database has
it), so any number of workers is safe and a killed worker's claim expires and is taken over.

Failures retry with exponential backoff and jitter up to ``Delivery.MAX_ATTEMPTS``; a channel
that fails ``BREAKER_THRESHOLD`` times in a row opens its breaker for ``BREAKER_COOLDOWN``:
its deliveries wait (they are not dropped) and an alert is raised through the monitoring
pipeline on the team's internal "Tocsin notifications" service, resolved on recovery.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from incidents.models import (
    ChannelKind,
    ContactMethod,
    Delivery,
    DeliveryStatus,
    Incident,
    NotificationChannel,
)
from incidents.notifications import channels
from incidents.notifications.breaker import channel_failed, channel_succeeded
from incidents.notifications.channels import ConfigError, Message, SendResult, get_sender
from incidents.notifications.leases import LEASE, keeper
from incidents.notifications.render import render, reseal, seal, unseal
from tocsin.events import record
from tocsin.scheduling import run_soon

logger = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(minutes=30)
RATE_WINDOW = timedelta(minutes=1)

__all__ = [
    "backoff",
    "message_user",
    "notify_channel",
    "page_user",
    "retry_now",
    "send_due_deliveries",
    "send_test",
]
WAKE = "incidents.notifications.outbox.send_due_deliveries"


# --- Enqueueing ---------------------------------------------------------------------------------


def _enqueue(dedup_key: str, **fields: Any) -> Delivery:
    """Insert one outbox row, or return the one already there for ``dedup_key``."""
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(dedup_key=dedup_key, **fields)
            run_soon(WAKE)
            return delivery
    except IntegrityError:
        existing = Delivery.objects.filter(dedup_key=dedup_key).first()
        if existing is None:
            raise
        return existing


def page_user(
    user: Any,
    incident: Incident,
    *,
    dedup_key: str,
    reason: str,
    links: dict[str, str] | None = None,
    now: datetime | None = None,
) -> list[Delivery]:
    """Enqueue a page to ``user`` following their notification rules; idempotent per key.

    Each applicable rule becomes one row due ``delay_minutes`` from now. A user without any
    rule is mailed at their account address, so nobody goes unpaged for want of setup.
    """
    now = now or timezone.now()
    # The links act as ``user``: stored sealed, put back only into the copy sent (render.seal).
    placeholders, sealed = seal(links)
    subject, body, payload = render(incident, event_kind="page", reason=reason, links=placeholders)
    common = {
        "team_id": incident.team_id,
        "incident": incident,
        "recipient": user,
        "event_kind": "page",
        "subject": subject,
        "body": body,
        "payload": payload,
        "sealed_links": sealed,
    }
    rules = list(user.notification_rules.select_related("contact_method").order_by("id"))
    if not rules:
        if not user.email:
            logger.warning("user %s has no notification rules and no email", user.pk)
            return []
        return [
            _enqueue(
                f"{dedup_key}:account-email",
                kind=ChannelKind.EMAIL,
                next_attempt_at=now,
                **common,
            )
        ]
    deliveries = []
    for rule in rules:
        if not rule.applies_to(incident.urgency):
            continue
        deliveries.append(
            _enqueue(
                f"{dedup_key}:rule-{rule.pk}",
                kind=rule.contact_method.kind,
                contact_method=rule.contact_method,
                next_attempt_at=now + timedelta(minutes=rule.delay_minutes),
                **common,
            )
        )
    return deliveries


def notify_channel(
    channel: NotificationChannel,
    incident: Incident | None,
    *,
    dedup_key: str,
    event_kind: str,
    links: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Delivery | None:
    """Enqueue a message about ``incident`` to a team channel; None if the channel is off."""
    if not channel.enabled:
        return None
    subject, body, payload = render(incident, event_kind=event_kind, links=links)
    return _enqueue(
        dedup_key,
        team_id=channel.team_id,
        incident=incident,
        channel=channel,
        kind=channel.kind,
        event_kind=event_kind,
        subject=subject,
        body=body,
        payload=payload,
        next_attempt_at=now or timezone.now(),
    )


# Kinds that can carry a personal, non-incident message. PagerDuty is left out: everything
# sent there becomes a PagerDuty incident, and a shift swap is not one.
PERSONAL_KINDS = frozenset(kind for kind, _ in channels.choices(personal_only=True))


def message_user(
    user: Any,
    *,
    team_id: int,
    dedup_key: str,
    event_kind: str,
    subject: str,
    body: str,
    links: dict[str, str] | None = None,
    now: datetime | None = None,
) -> list[Delivery]:
    """Enqueue a personal message that is not a page (a shift-swap request, say).

    It goes at once to the contact methods of the user's immediate notification rules (the
    ones they want to hear from first), or to their account address when they have none: no
    escalating follow-ups, because nobody has to be woken for it. Idempotent per key.
    """
    now = now or timezone.now()
    links = {k: v for k, v in (links or {}).items() if v}
    text = "\n".join([body, *(f"{name.title()}: {href}" for name, href in links.items())])
    common = {
        "team_id": team_id,
        "recipient": user,
        "event_kind": event_kind,
        "subject": subject[:300],
        "body": text,
        "payload": {"incident": {}, "links": links, "reason": body, "event": event_kind},
        "next_attempt_at": now,
    }
    methods = {
        rule.contact_method_id: rule.contact_method
        for rule in user.notification_rules.select_related("contact_method").order_by("id")
        if rule.delay_minutes == 0 and rule.contact_method.kind in PERSONAL_KINDS
    }
    if methods:
        return [
            _enqueue(
                f"{dedup_key}:method-{method.pk}",
                kind=method.kind,
                contact_method=method,
                **common,
            )
            for method in methods.values()
        ]
    if not user.email:
        logger.warning("user %s has no immediate contact method and no email", user.pk)
        return []
    return [_enqueue(f"{dedup_key}:account-email", kind=ChannelKind.EMAIL, **common)]


def send_test(
    *,
    channel: NotificationChannel | None = None,
    contact_method: ContactMethod | None = None,
    actor: Any = None,
) -> Delivery:
    """Send a test message now (bypassing nothing: breaker and rate limit still apply)."""
    target = channel or contact_method
    assert target is not None
    subject, body, payload = render(None, reason=f"Test requested by {actor or 'Tocsin'}.")
    if channel is not None:
        team_id = channel.team_id
    else:
        membership = contact_method.user.memberships.order_by("id").first()
        team_id = membership.team_id if membership else None
    if team_id is None:
        raise ConfigError("a contact method's owner must belong to a team to test it")
    delivery = Delivery.objects.create(
        dedup_key=f"test:{uuid.uuid4().hex}",
        team_id=team_id,
        channel=channel,
        contact_method=contact_method,
        recipient=contact_method.user if contact_method else None,
        kind=target.kind,
        event_kind="test",
        subject=subject,
        body=body,
        payload=payload,
    )
    _send_claimed(_claim(timezone.now(), ids=[delivery.pk]), timezone.now())
    delivery.refresh_from_db()
    return delivery


def retry_now(deliveries: Any, now: datetime | None = None) -> int:
    """Put failed or waiting deliveries back in line, due now, with a fresh attempt budget."""
    now = now or timezone.now()
    return deliveries.filter(
        status__in=[DeliveryStatus.FAILED, DeliveryStatus.PENDING, DeliveryStatus.SUPPRESSED]
    ).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        attempts=0,
        claimed_by="",
        claimed_until=None,
    )


# --- Sending ------------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with full jitter on the upper half (no thundering herds)."""
    base = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)
    return base / 2 + base / 2 * random.random()


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _claim(now: datetime, *, limit: int = 1, ids: list[int] | None = None) -> list[Delivery]:
    """Take due rows (and rows whose lease expired) for this call; returns what it got.

    Each claim marks the row before anything is sent: ``sending``, one more attempt, a lease
    of seconds under a fresh claim id. The idempotency key (``dedup_key``) travels with every
    attempt, so a receiver can tell a resend after a crash from a new page.
    """
    worker = _worker_id()
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, claimed_until__lt=now
    )
    if ids is None and not Delivery.objects.filter(due).exists():
        return []  # the common case for a loop that looks often: no write transaction at all
    with transaction.atomic():
        candidates = Delivery.objects.filter(due)
        if ids is not None:
            candidates = Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        picked = list(
            candidates.order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit]
        )
        if not picked:
            return []
        # Conditional: a row another worker took meanwhile no longer matches and is skipped.
        still = Delivery.objects.filter(pk__in=picked)
        still = (
            still.filter(status=DeliveryStatus.PENDING) if ids is not None else still.filter(due)
        )
        still.update(
            status=DeliveryStatus.SENDING,
            claimed_by=worker,
            claimed_until=timezone.now() + LEASE,
            handed_over_at=None,
            attempts=F("attempts") + 1,
        )
    return list(
        Delivery.objects.filter(claimed_by=worker, status=DeliveryStatus.SENDING)
        .select_related("channel", "contact_method", "recipient", "incident")
        .order_by("next_attempt_at", "id")
    )


def settle_handed_over(now: datetime) -> None:
    """Rows whose sender stopped after handing the message over: sent, never sent again.

    The destination may well have it (an e-mail server that received the end of data), and a
    second e-mail for the same page is what we promise never to send.
    """
    stranded = Delivery.objects.filter(
        status=DeliveryStatus.SENDING, claimed_until__lt=now, handed_over_at__isnull=False
    ).select_related("channel", "contact_method", "recipient", "incident")
    for delivery in stranded[:100]:
        note = "handed over before its worker stopped; counted as sent, not sent again"
        _finish(delivery, DeliveryStatus.SENT, SendResult(True, excerpt=note), now)


def claim_one(now: datetime) -> Delivery | None:
    claimed = _claim(now)
    return claimed[0] if claimed else None


def send_one(delivery: Delivery, now: datetime | None = None) -> bool:
    """Send a claimed delivery, keeping its lease while the send runs; True if it went out."""
    with keeper.hold(delivery):
        return _send_claimed([delivery], now or timezone.now()) == 1


def send_due_deliveries(now: datetime | None = None, limit: int = 100) -> int:
    """Claim due deliveries one at a time and send each; how many were sent successfully.

    The due-work loop sends concurrently (``incidents.notifications.sending``); this is the
    one-minute safety net and the way to drain the outbox by hand. Claiming one row at a time
    means a crash strands at most the one in flight, for one short lease.
    """
    now = now or timezone.now()
    settle_handed_over(now)
    sent = 0
    for _ in range(limit):
        delivery = claim_one(now)
        if delivery is None:
            break
        sent += send_one(delivery, now)
    return sent


def _send_claimed(deliveries: list[Delivery], now: datetime) -> int:
    sent = 0
    channels: dict[int, NotificationChannel] = {}
    used: dict[int, int] = {}  # channel id → sends in the current minute (database + this batch)
    for delivery in deliveries:
        channel = None
        if delivery.channel_id:
            channel = channels.setdefault(delivery.channel_id, delivery.channel)
            if not channel.enabled:
                _finish(delivery, DeliveryStatus.SUPPRESSED, SendResult(False, error="disabled"))
                continue
            if channel.is_open(now):
                _defer(delivery, channel.open_until, "circuit breaker open")
                continue
            if channel.rate_limit_per_minute:
                if channel.pk not in used:
                    used[channel.pk] = Delivery.objects.filter(
                        channel_id=channel.pk, sent_at__gt=now - RATE_WINDOW
                    ).count()
                if used[channel.pk] >= channel.rate_limit_per_minute:
                    _defer(delivery, now + RATE_WINDOW / 4, "rate limited")
                    continue
                used[channel.pk] += 1
        result = _attempt(delivery)
        if result.ok:
            _finish(delivery, DeliveryStatus.SENT, result, now)
            sent += 1
            if channel is not None:
                channel_succeeded(channel)
        else:
            exhausted = not result.retryable or delivery.attempts >= Delivery.MAX_ATTEMPTS
            if exhausted:
                _finish(delivery, DeliveryStatus.FAILED, result, now)
            else:
                _retry_later(delivery, result, now + backoff(delivery.attempts))
            if channel is not None:
                channel_failed(channel, result, now)
    return sent


def _attempt(delivery: Delivery) -> SendResult:
    body, payload = unseal(delivery.body, delivery.payload or {}, delivery.sealed_links or {})
    message = Message(
        subject=delivery.subject,
        body=body,
        payload=payload,
        event_kind=delivery.event_kind,
        dedup_key=delivery.dedup_key,
        recipient_email=delivery.recipient.email if delivery.recipient else "",
        on_handover=lambda: _mark_handed_over(delivery),
    )
    if delivery.channel_id:
        config = delivery.channel.config
    elif delivery.contact_method_id:
        config = delivery.contact_method.config
    else:
        config = {}  # account email: the recipient's address
    try:
        result = get_sender(delivery.kind, config or {}).send(message)
    except ConfigError as exc:
        return SendResult(ok=False, error=str(exc), retryable=False)
    except Exception as exc:  # a sender bug must not kill the loop (nor leak the config)
        logger.exception("sender %s crashed on delivery %s", delivery.kind, delivery.pk)
        return SendResult(ok=False, error=f"internal error: {type(exc).__name__}")
    sealed = delivery.sealed_links or {}  # an answer echoing the message keeps them out of the row
    result.excerpt, result.error = reseal(result.excerpt, sealed), reseal(result.error, sealed)
    return result


def _mark_handed_over(delivery: Delivery) -> None:
    """Called by a sender right before its point of no return; raising aborts the send."""
    if not _mine(delivery).update(handed_over_at=timezone.now()):
        raise RuntimeError(f"delivery {delivery.pk}: the claim was lost, not handing it over")


def _mine(delivery: Delivery) -> Any:
    return Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_by=delivery.claimed_by
    )


def _defer(delivery: Delivery, until: datetime, why: str) -> None:
    """Not an attempt: give it back, due later."""
    _mine(delivery).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=until,
        attempts=F("attempts") - 1,
        claimed_by="",
        claimed_until=None,
        last_error=why,
    )


def _retry_later(delivery: Delivery, result: SendResult, when: datetime) -> None:
    _mine(delivery).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=when,
        claimed_by="",
        claimed_until=None,
        handed_over_at=None,
        last_error=result.error[:2000],
        response_code=result.code,
        response_excerpt=result.excerpt[:2000],
    )


def _finish(
    delivery: Delivery, status: str, result: SendResult, now: datetime | None = None
) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        changed = _mine(delivery).update(
            status=status,
            claimed_by="",
            claimed_until=None,
            handed_over_at=None,
            sent_at=now if status == DeliveryStatus.SENT else None,
            last_error="" if result.ok else result.error[:2000],
            response_code=result.code,
            response_excerpt=result.excerpt[:2000],
        )
        if not changed or status == DeliveryStatus.SUPPRESSED:
            return
        subject = delivery.incident or delivery.channel or delivery.contact_method
        record(
            "notification.sent" if status == DeliveryStatus.SENT else "notification.failed",
            team=delivery.team_id,
            subject=subject,
            actor_label="notifier",
            payload={
                "delivery_id": delivery.pk,
                "kind": delivery.kind,
                "event": delivery.event_kind,
                "to": delivery.destination_label,
                "recipient_id": delivery.recipient_id,
                "attempts": delivery.attempts,
                "response_code": result.code,
                "error": "" if result.ok else result.error[:300],
            },
        )
