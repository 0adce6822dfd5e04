"""The outbox against real HTTP receivers: retries, breaker, signatures, dedup, leases, rate."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Delivery, DeliveryStatus, NotificationChannel
from incidents.notifications import breaker
from incidents.notifications import outbox as notify
from monitoring.models import Alert, AlertStatus, Service
from tests.incidents.notify_support import make_channel, make_incident
from tocsin.models import Event

SECRET = "a-shared-secret-of-some-length"


def webhook(crew, receiver, **extra):
    return make_channel(crew.team, "webhook", {"url": receiver.url, "secret": SECRET}, **extra)


def later(now, seconds):
    return now + timedelta(seconds=seconds)


def test_a_500_then_200_gets_exactly_one_successful_delivery(crew, receiver):
    receiver.codes = [500, 200]
    incident = make_incident(crew.team)
    delivery = notify.notify_channel(
        webhook(crew, receiver), incident, dedup_key="inc-1:trigger", event_kind="trigger"
    )
    now = timezone.now()

    assert notify.send_due_deliveries(now=now) == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.response_code == 500
    assert delivery.last_error == "HTTP 500"
    assert delivery.response_excerpt == "boom"
    assert delivery.next_attempt_at > now

    assert notify.send_due_deliveries(now=now) == 0  # not due yet: backoff holds
    assert notify.send_due_deliveries(now=later(now, 3600)) == 1
    assert notify.send_due_deliveries(now=later(now, 7200)) == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 2
    assert delivery.response_code == 200
    assert delivery.last_error == ""
    assert len(receiver.requests) == 2
    events = Event.objects.filter(kind="notification.sent")
    assert events.count() == 1
    event = events.get()
    assert (event.team_id, event.subject_type, event.subject_id) == (
        crew.team.pk,
        "incident",
        str(incident.pk),
    )
    assert receiver.url not in str(event.payload)


def test_it_gives_up_after_max_attempts_and_records_failure(crew, receiver):
    receiver.codes = [503]
    channel = webhook(crew, receiver)
    incident = make_incident(crew.team)
    delivery = notify.notify_channel(channel, incident, dedup_key="k", event_kind="trigger")
    now = timezone.now()
    for i in range(Delivery.MAX_ATTEMPTS):
        # Reset the breaker so this test watches the retry budget only.
        NotificationChannel.objects.filter(pk=channel.pk).update(
            consecutive_failures=0, open_until=None
        )
        notify.send_due_deliveries(now=later(now, 7200 * (i + 1)))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == Delivery.MAX_ATTEMPTS
    assert Event.objects.filter(kind="notification.failed").count() == 1
    assert len(receiver.requests) == Delivery.MAX_ATTEMPTS


def test_a_client_error_is_not_retried(crew, receiver):
    receiver.codes = [400]
    incident = make_incident(crew.team)
    d = notify.notify_channel(webhook(crew, receiver), incident, dedup_key="k", event_kind="x")
    notify.send_due_deliveries()
    d.refresh_from_db()
    assert (d.status, d.attempts, d.response_code) == (DeliveryStatus.FAILED, 1, 400)


def test_a_failing_receiver_trips_the_breaker_and_recovery_resolves_the_alert(
    crew,
    receiver,
):
    receiver.codes = [500]
    channel = webhook(crew, receiver, rate_limit_per_minute=0)
    incident = make_incident(crew.team)
    for i in range(breaker.BREAKER_THRESHOLD):
        notify.notify_channel(channel, incident, dedup_key=f"k{i}", event_kind="trigger")
    now = timezone.now()
    notify.send_due_deliveries(now=now)
    channel.refresh_from_db()
    assert channel.consecutive_failures == breaker.BREAKER_THRESHOLD
    assert channel.is_open(now)
    assert channel.breaker_state == "open"

    service = Service.objects.get(team=crew.team, slug=breaker.INTERNAL_SERVICE_SLUG)
    assert service.name == "Tocsin notifications"
    assert service.integrations.filter(kind="internal").exists()
    alert = Alert.objects.get(service=service, fingerprint=breaker.breaker_fingerprint(channel))
    assert alert.status == AlertStatus.FIRING

    # While open, new and retried deliveries are deferred, not attempted and not lost.
    held = notify.notify_channel(channel, incident, dedup_key="held", event_kind="trigger")
    calls = len(receiver.requests)
    # (Retries of the failed ones are not due for 15 s; a loaded machine may take seconds.)
    notify.send_due_deliveries(now=later(now, 10))
    assert len(receiver.requests) == calls
    held.refresh_from_db()
    assert held.status == DeliveryStatus.PENDING
    assert held.attempts == 0
    assert held.last_error == "circuit breaker open"
    assert held.next_attempt_at == channel.open_until

    # The receiver recovers; after the cool-down everything is delivered and the alert resolves.
    receiver.codes = [200]
    after = channel.open_until + timedelta(hours=2)
    notify.send_due_deliveries(now=after)
    notify.send_due_deliveries(now=after + timedelta(hours=2))
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    channel.refresh_from_db()
    assert (channel.consecutive_failures, channel.open_until) == (0, None)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_the_webhook_signature_verifies_on_the_receiver(crew, receiver):
    incident = make_incident(crew.team)
    notify.notify_channel(
        webhook(crew, receiver),
        incident,
        dedup_key="sig",
        event_kind="trigger",
        links={"acknowledge": "http://x/ack"},
    )
    assert notify.send_due_deliveries() == 1
    (request,) = receiver.requests
    timestamp = request.headers["X-Tocsin-Timestamp"]
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-Tocsin-Signature"], f"sha256={expected}")
    assert abs(int(timestamp) - timezone.now().timestamp()) < 60
    assert request.headers["X-Tocsin-Delivery"] == "sig"
    body = request.json()
    assert body["incident"]["id"] == incident.pk
    assert body["links"] == {"acknowledge": "http://x/ack"}
    # A tampered body does not verify.
    forged = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body + b" ", "sha256")
    assert f"sha256={forged.hexdigest()}" != request.headers["X-Tocsin-Signature"]


def test_the_same_dedup_key_enqueues_one_delivery(crew, receiver):
    channel = webhook(crew, receiver)
    incident = make_incident(crew.team)
    first = notify.notify_channel(channel, incident, dedup_key="same", event_kind="trigger")
    second = notify.notify_channel(channel, incident, dedup_key="same", event_kind="trigger")
    assert first.pk == second.pk
    pages = notify.page_user(crew.responder, incident, dedup_key="p1", reason="on call")
    again = notify.page_user(crew.responder, incident, dedup_key="p1", reason="on call")
    assert [d.pk for d in pages] == [d.pk for d in again]
    assert Delivery.objects.count() == 2
    notify.send_due_deliveries()
    assert len(receiver.requests) == 1


def test_a_killed_workers_claim_expires_and_is_sent_once(crew, receiver):
    incident = make_incident(crew.team)
    delivery = notify.notify_channel(
        webhook(crew, receiver), incident, dedup_key="lease", event_kind="trigger"
    )
    now = timezone.now()
    # A worker claims the row and dies before sending.
    claimed = notify._claim(now)
    assert [d.pk for d in claimed] == [delivery.pk]
    assert notify.send_due_deliveries(now=now) == 0  # the lease still holds
    assert receiver.requests == []
    assert notify.send_due_deliveries(now=now + notify.LEASE + timedelta(seconds=1)) == 1
    assert notify.send_due_deliveries(now=now + notify.LEASE * 3) == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert len(receiver.requests) == 1


def test_rate_limit_defers_instead_of_dropping(crew, receiver):
    channel = webhook(crew, receiver, rate_limit_per_minute=2)
    incident = make_incident(crew.team)
    for i in range(3):
        notify.notify_channel(channel, incident, dedup_key=f"r{i}", event_kind="trigger")
    now = timezone.now()
    assert notify.send_due_deliveries(now=now) == 2
    deferred = Delivery.objects.get(status=DeliveryStatus.PENDING)
    assert deferred.last_error == "rate limited"
    assert deferred.attempts == 0
    assert deferred.next_attempt_at > now
    assert notify.send_due_deliveries(now=now + timedelta(minutes=2)) == 1
    assert len(receiver.requests) == 3


def test_page_user_follows_rules_and_delays(crew, receiver):
    from incidents.models import ContactMethod, NotificationRule

    hook = ContactMethod.objects.create(
        user=crew.responder, kind="webhook", config={"url": receiver.url, "secret": SECRET}
    )
    NotificationRule.objects.create(user=crew.responder, contact_method=hook, delay_minutes=0)
    NotificationRule.objects.create(user=crew.responder, contact_method=hook, delay_minutes=5)
    NotificationRule.objects.create(
        user=crew.responder, contact_method=hook, delay_minutes=0, urgency="low"
    )
    incident = make_incident(crew.team, urgency="high")
    now = timezone.now()
    deliveries = notify.page_user(crew.responder, incident, dedup_key="p", reason="r", now=now)
    assert sorted(d.next_attempt_at - now for d in deliveries) == [
        timedelta(0),
        timedelta(minutes=5),
    ]
    assert notify.send_due_deliveries(now=now) == 1
    assert notify.send_due_deliveries(now=now + timedelta(minutes=5)) == 1
    assert all(r.json()["event"] == "page" for r in receiver.requests)


def test_a_user_without_rules_gets_account_email(crew):
    incident = make_incident(crew.team)
    (delivery,) = notify.page_user(crew.viewer, incident, dedup_key="e", reason="r")
    assert delivery.kind == "email"
    assert delivery.contact_method is None
    assert delivery.recipient == crew.viewer


@pytest.mark.parametrize("kind", ["slack", "webhook"])
def test_secrets_never_reach_the_error_text(crew, kind):
    # Nothing listens on port 9: connection refused, and the token must not be quoted.
    url = "http://127.0.0.1:9/hook/very-secret-token"
    config = {"url": url, "secret": SECRET} if kind == "webhook" else {"url": url}
    channel = make_channel(crew.team, kind, config)
    d = notify.notify_channel(channel, make_incident(crew.team), dedup_key="x", event_kind="t")
    notify.send_due_deliveries()
    d.refresh_from_db()
    assert d.last_error
    assert "very-secret-token" not in d.last_error
