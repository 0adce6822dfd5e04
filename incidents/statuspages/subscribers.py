"""Status page subscribers: e-mail with double opt-in, webhooks, one-click unsubscribe, and the
durable outbox that tells them of public updates and maintenance.

- ``subscribe_email`` stores an unconfirmed subscriber and queues the confirmation mail; only
  the link in it (a signed token, valid a week) confirms. Asking again for an address resends
  the mail at most every ``RESEND_AFTER`` (so the form cannot be used to flood an inbox).
- Every mail carries a signed unsubscribe link and ``List-Unsubscribe``/``List-Unsubscribe-Post``
  headers (RFC 8058: mail clients unsubscribe with one POST, no page in between).
- Webhooks are added by the team's managers (the editor or the API), not by the public: an
  anonymous form must not make Tocsin send requests to addresses of someone's choosing.
- ``notify_update``/``notify_maintenance`` write one ``StatusDelivery`` row per confirmed
  subscriber of the affected components, in the poster's transaction. ``send_due`` (every
  minute, and woken after each post) claims rows with a conditional UPDATE, sends them, and
  retries failures with backoff; after ``MAX_ATTEMPTS`` a row is kept as ``failed`` and logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.core.mail.utils import DNS_NAME
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from incidents.notifications.channels import post_json
from incidents.notifications.channels.webhook import sign
from incidents.statuspages.links import page_path, page_url
from incidents.statuspages.models import (
    DeliveryState,
    MaintenanceNotice,
    PublicIncident,
    PublicUpdate,
    StatusDelivery,
    StatusPage,
    StatusSubscriber,
    SubscriberKind,
)
from tocsin import outbound
from tocsin.events import record
from tocsin.scheduling import run_soon
from tocsin.services import ServiceError

log = logging.getLogger(__name__)

SALT = "tocsin.statuspages.subscriber"
CONFIRM_MAX_AGE = timedelta(days=7)
RESEND_AFTER = timedelta(minutes=10)
LEASE = timedelta(minutes=2)
BACKOFF = timedelta(seconds=60)
WAKE = "incidents.statuspages.subscribers.send_due"


# --- links -------------------------------------------------------------------------------------


def token_for(subscriber: StatusSubscriber, action: str) -> str:
    # The creation time ties the token to this row: a new subscription is a new token.
    return signing.dumps(
        {"s": subscriber.pk, "a": action, "c": int(subscriber.created_at.timestamp())}, salt=SALT
    )


def subscriber_for(token: str, action: str, max_age: timedelta | None = None) -> StatusSubscriber:
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise ServiceError("this link has expired; subscribe again", "token", "expired") from None
    except signing.BadSignature:
        raise ServiceError("this link is not valid", "token", "invalid") from None
    found = StatusSubscriber.objects.select_related("page").filter(pk=data.get("s")).first()
    if (
        found is None
        or data.get("a") != action
        or data.get("c") != int(found.created_at.timestamp())
    ):
        raise ServiceError("this subscription no longer exists", "token", "gone")
    return found


def unsubscribe_url(subscriber: StatusSubscriber) -> str:
    """On Tocsin's own host, never the page's domain: that serves published pages only, and
    its DNS may move on, but leaving must keep working for as long as mail was sent."""
    path = page_path(subscriber.page, f"unsubscribe/{token_for(subscriber, 'leave')}/")
    return settings.TOCSIN_BASE_URL.rstrip("/") + path


# --- subscribing -------------------------------------------------------------------------------


def subscribe_email(
    page: StatusPage, email: str, *, component_ids: list[int] | None = None
) -> StatusSubscriber:
    """Store an unconfirmed subscription and queue the confirmation mail."""
    from django.core.validators import validate_email

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except Exception:
        raise ServiceError("enter a valid e-mail address", "email") from None
    components = list(page.components.filter(pk__in=component_ids or []))
    if component_ids and len(components) != len(set(component_ids)):
        raise ServiceError("choose components of this page", "components")
    now = timezone.now()
    with transaction.atomic():
        found = StatusSubscriber.objects.filter(page=page, kind="email", email=email).first()
        if found is not None and found.is_confirmed:
            return found  # already subscribed: say nothing more (no address probing)
        if found is not None and now - found.created_at < RESEND_AFTER:
            return found
        if found is not None:
            found.delete()
        try:
            with transaction.atomic():
                subscriber = StatusSubscriber.objects.create(
                    page=page, kind=SubscriberKind.EMAIL, email=email, created_at=now
                )
        except IntegrityError:  # the same address at the same moment
            return StatusSubscriber.objects.get(page=page, kind="email", email=email)
        subscriber.components.set(components)
        record(
            "status_subscriber.created",
            team=page.team_id,
            subject=subscriber,
            subject_label=f"subscriber #{subscriber.pk}",
            payload={"page_id": page.pk, "kind": "email", "component_ids": component_ids or []},
        )
        confirm = page_url(page, f"confirm/{token_for(subscriber, 'confirm')}/")
        body = (
            f"Someone (hopefully you) asked to be told about {page.title}'s status.\n\n"
            f"Confirm your subscription:\n{confirm}\n\n"
            f"If it was not you, ignore this mail: nothing will be sent without confirmation."
        )
        _enqueue(
            page,
            [subscriber],
            "confirm",
            f"confirm:{subscriber.pk}",
            f"Confirm your subscription to {page.title}",
            body,
            {},
        )
    return subscriber


def add_webhook(
    page: StatusPage,
    url: str,
    *,
    secret: str = "",
    component_ids: list[int] | None = None,
    actor: Any,
) -> StatusSubscriber:
    """A manager adds a webhook subscriber (confirmed at once: the manager vouches for it)."""
    from incidents.notifications.channels import HttpUrlField

    try:
        url = HttpUrlField().run_validation(url)
    except Exception:
        raise ServiceError("enter an http(s) URL", "url") from None
    components = list(page.components.filter(pk__in=component_ids or []))
    if component_ids and len(components) != len(set(component_ids)):
        raise ServiceError("choose components of this page", "components")
    with transaction.atomic():
        subscriber = StatusSubscriber.objects.create(
            page=page,
            kind=SubscriberKind.WEBHOOK,
            webhook={"url": url, "secret": secret or ""},
            confirmed_at=timezone.now(),
        )
        subscriber.components.set(components)
        record(
            "status_subscriber.created",
            team=page.team_id,
            subject=subscriber,
            actor=actor,
            payload={"page_id": page.pk, "kind": "webhook", "component_ids": component_ids or []},
        )
    return subscriber


def confirm(token: str) -> StatusSubscriber:
    subscriber = subscriber_for(token, "confirm", CONFIRM_MAX_AGE)
    if subscriber.confirmed_at is None:
        with transaction.atomic():
            subscriber.confirmed_at = timezone.now()
            subscriber.save(update_fields=["confirmed_at"])
            record(
                "status_subscriber.confirmed",
                team=subscriber.page.team_id,
                subject=subscriber,
                subject_label=f"subscriber #{subscriber.pk}",
                payload={"page_id": subscriber.page_id},
            )
    return subscriber


def unsubscribe(token: str) -> StatusPage:
    subscriber = subscriber_for(token, "leave")
    page = subscriber.page
    remove(subscriber, actor=None)
    return page


def remove(subscriber: StatusSubscriber, *, actor: Any) -> None:
    with transaction.atomic():
        record(
            "status_subscriber.deleted",
            team=subscriber.page.team_id,
            subject=subscriber,
            subject_label=f"subscriber #{subscriber.pk}",
            actor=actor,
            payload={"page_id": subscriber.page_id, "kind": subscriber.kind},
        )
        subscriber.delete()


# --- notifying ---------------------------------------------------------------------------------


def audience(page: StatusPage, component_ids: list[int]) -> list[StatusSubscriber]:
    """Confirmed subscribers of the page who follow every component or one of these; none
    while the page is private (unpublished: what is posted there is not public)."""
    if not page.published:
        return []
    match = Q(components__isnull=True)
    if component_ids:
        match |= Q(components__in=component_ids)
    return list(
        StatusSubscriber.objects.filter(page=page, confirmed_at__isnull=False)
        .filter(match)
        .distinct()
        .order_by("id")
    )


def _enqueue(
    page: StatusPage,
    subscribers: list[StatusSubscriber],
    topic: str,
    key: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
) -> int:
    rows = [
        StatusDelivery(
            page=page,
            subscriber=s,
            topic=topic,
            dedup_key=f"{key}:s{s.pk}",
            subject=subject[:300],
            body=body,
            payload=payload,
        )
        for s in subscribers
    ]
    StatusDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        run_soon(WAKE)
    return len(rows)


def notify_update(public_incident: PublicIncident, update: PublicUpdate) -> int:
    from incidents.statuspages import summary

    page = public_incident.page
    ids = [c.pk for c in public_incident.components.all()]
    label = update.get_status_display()
    subject = f"[{page.title}] {public_incident.title}: {label}"
    link = page_url(page, f"incidents/{public_incident.pk}/")
    body = f"{label} — {public_incident.title}\n\n{update.body}\n\nDetails: {link}\n"
    payload = {"incident": summary.incident_json(public_incident, [update])}
    return _enqueue(page, audience(page, ids), "incident", f"u{update.pk}", subject, body, payload)


def notify_maintenance(notice: MaintenanceNotice) -> int:
    from incidents.statuspages import maintenance

    page = notice.page
    window = notice.window
    occurrence = maintenance.occurrence_of(window, timezone.now())
    ids = list(page.components.filter(service=window.service_id).values_list("pk", flat=True))
    when = ""
    if occurrence is not None:
        start, end = occurrence.starts_at, occurrence.ends_at
        when = f"From {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC.\n\n"
    subject = f"[{page.title}] {notice.title}"
    body = f"{notice.title}\n\n{when}{notice.note}\n\n{page_url(page)}\n"
    version = int(notice.updated_at.timestamp())
    payload = {"maintenance": {"id": notice.pk, "title": notice.title, "note": notice.note}}
    key = f"m{notice.pk}v{version}"
    return _enqueue(page, audience(page, ids), "maintenance", key, subject, body, payload)


# --- sending -----------------------------------------------------------------------------------


def claim_one(now: datetime) -> StatusDelivery | None:
    """The next due delivery, claimed for ``LEASE`` by a conditional UPDATE (another worker's
    UPDATE then matches nothing and it moves on)."""
    for pk in (
        StatusDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:10]
    ):
        won = (
            StatusDelivery.objects.filter(pk=pk, state=DeliveryState.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=now + LEASE)
        )
        if won:
            found = StatusDelivery.objects.select_related("subscriber", "page").filter(pk=pk)
            delivery = found.first()
            if delivery is not None:  # else unsubscribed just now: its deliveries went too
                return delivery
    return None


def send_due(now: datetime | None = None, limit: int = 200) -> int:
    """Send what is due; how many went out."""
    sent = 0
    for _ in range(limit):
        delivery = claim_one(now or timezone.now())
        if delivery is None:
            break
        sent += send_one(delivery)
    return sent


def send_one(delivery: StatusDelivery) -> int:
    subscriber = delivery.subscriber
    try:
        if subscriber.kind == SubscriberKind.EMAIL:
            error = _send_mail(delivery, subscriber)
        else:
            error = _send_webhook(delivery, subscriber)
    except Exception as exc:  # a bug in sending must not strand the row: retry, then fail
        log.exception("status delivery %s failed", delivery.pk)
        error = f"{type(exc).__name__}: {exc}"
    now = timezone.now()
    delivery.attempts += 1
    delivery.claimed_until = None
    if error is None:
        delivery.state = DeliveryState.SENT
        delivery.sent_at = now
        delivery.last_error = ""
    elif delivery.attempts >= StatusDelivery.MAX_ATTEMPTS or outbound.is_refusal(error):
        delivery.state = DeliveryState.FAILED
        delivery.last_error = error[:2000]
        log.error(
            "status delivery %s given up after %s attempts: %s",
            delivery.pk,
            delivery.attempts,
            error,
        )
    else:
        delivery.last_error = error[:2000]
        delivery.next_attempt_at = now + BACKOFF * (2 ** (delivery.attempts - 1))
    # An UPDATE, not save(): the subscriber may have unsubscribed meanwhile (its deliveries go
    # with it), and a vanished row must not stop the sender.
    StatusDelivery.objects.filter(pk=delivery.pk).update(
        attempts=delivery.attempts,
        claimed_until=None,
        state=delivery.state,
        sent_at=delivery.sent_at,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
    )
    return int(error is None)


def _send_mail(delivery: StatusDelivery, subscriber: StatusSubscriber) -> str | None:
    leave = unsubscribe_url(subscriber)
    digest = hashlib.sha256(delivery.dedup_key.encode()).hexdigest()[:40]
    headers = {
        "Message-ID": f"<{digest}@{DNS_NAME}>",
        "X-Tocsin-Delivery": delivery.dedup_key,
        "Auto-Submitted": "auto-generated",
    }
    body = delivery.body
    if delivery.topic != "confirm":
        headers["List-Unsubscribe"] = f"<{leave}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body += f"\n--\nUnsubscribe: {leave}\n"
    message = EmailMessage(
        subject=" ".join(delivery.subject.split()),  # no line breaks in a header
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers=headers,
        connection=get_connection(timeout=getattr(settings, "EMAIL_TIMEOUT", 10)),
    )
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _send_webhook(delivery: StatusDelivery, subscriber: StatusSubscriber) -> str | None:
    from incidents.statuspages import summary

    config = subscriber.webhook or {}
    document = {
        "meta": {
            "unsubscribe": unsubscribe_url(subscriber),
            "generated_at": timezone.now().isoformat(),
        },
        "page": summary.page_status_json(delivery.page),
        **delivery.payload,
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"X-Tocsin-Delivery": delivery.dedup_key}
    if config.get("secret"):
        timestamp = str(int(timezone.now().timestamp()))
        headers["X-Tocsin-Timestamp"] = timestamp
        headers["X-Tocsin-Signature"] = sign(config["secret"], timestamp, body)
    result = post_json(
        config.get("url", ""), body, headers=headers, secrets=[config.get("secret", "")]
    )
    return None if result.ok else (result.error or f"HTTP {result.code}")
