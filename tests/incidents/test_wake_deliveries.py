"""Deliveries under the due-work loop: short individual claims, the e-mail hand-over, wake-ups.

Real SMTP servers (aiosmtpd) on 127.0.0.1, some of them misbehaving on purpose; a worker that
"dies" is what its death leaves in the row (a claim whose lease runs out).
"""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from incidents.models import Delivery, DeliveryStatus, Incident
from incidents.notifications import outbox as notify
from incidents.notifications import sending
from tests.incidents.notify_support import make_incident
from tests.live import free_port
from tocsin import scheduling, wake
from tocsin.models import Event


class SlowInbox:
    """Accepts every message, but answers the end of data only after ``answer_after`` s."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.answer_after = 0.0
        self.answer = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.keys.append(email.message_from_bytes(envelope.content)["X-Tocsin-Delivery"])
        await asyncio.sleep(self.answer_after)
        return self.answer


@pytest.fixture
def mail() -> Iterator[SlowInbox]:
    inbox = SlowInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_TIMEOUT=1,
        ):
            yield inbox
    finally:
        controller.stop()


def page(crew, key: str = "page-1") -> Delivery:
    incident = Incident.objects.filter(team=crew.team).first() or make_incident(crew.team)
    (delivery,) = notify.page_user(crew.responder, incident, dedup_key=key, reason="r")
    return delivery


def test_deliveries_are_claimed_one_at_a_time_under_a_short_lease(crew, mail):
    first, second = page(crew, "a"), page(crew, "b")
    now = timezone.now()
    (claimed,) = notify._claim(now)
    assert claimed.pk == first.pk
    assert claimed.status == DeliveryStatus.SENDING and claimed.attempts == 1
    assert claimed.claimed_until - timezone.now() <= notify.LEASE <= timedelta(seconds=10)
    second.refresh_from_db()
    assert second.status == DeliveryStatus.PENDING  # not held by a worker that only sends one


def test_a_page_handed_to_the_mail_server_before_its_worker_died_is_not_mailed_again(crew, mail):
    delivery = page(crew)
    now = timezone.now()
    (claimed,) = notify._claim(now)
    # The worker got as far as the end of data, then died: the row says so, nothing more.
    Delivery.objects.filter(pk=claimed.pk).update(handed_over_at=now)

    later = now + notify.LEASE + timedelta(seconds=1)
    assert notify.send_due_deliveries(now=later) == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert (delivery.attempts, delivery.claimed_by, delivery.handed_over_at) == (1, "", None)
    assert delivery.response_excerpt.startswith("handed over")
    assert mail.keys == []  # not sent again
    assert Event.objects.filter(kind="notification.sent").count() == 1


def test_a_page_whose_worker_died_before_the_hand_over_is_sent_once_more(crew, mail):
    delivery = page(crew)
    now = timezone.now()
    notify._claim(now)  # claimed, then the worker died before the end of data

    assert notify.send_due_deliveries(now=now + notify.LEASE + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert delivery.handed_over_at is None
    assert mail.keys == ["page-1:account-email"]


def test_a_mail_server_that_never_confirms_the_end_of_data_gets_the_page_once(crew, mail):
    mail.answer_after = 3  # longer than EMAIL_TIMEOUT: the answer never reaches us
    delivery = page(crew)
    assert notify.send_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.response_excerpt.startswith("handed over; no answer")
    assert notify.send_due_deliveries(now=timezone.now() + timedelta(hours=2)) == 0
    assert mail.keys == ["page-1:account-email"]


def test_a_refused_end_of_data_is_retried_later(crew, mail):
    mail.answer = "451 try again later"
    delivery = page(crew)
    assert notify.send_due_deliveries() == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.handed_over_at) == (DeliveryStatus.PENDING, None)
    assert delivery.next_attempt_at > timezone.now()
    mail.answer = "250 OK"
    assert notify.send_due_deliveries(now=timezone.now() + timedelta(hours=1)) == 1
    assert mail.keys == ["page-1:account-email"] * 2  # refused, then accepted


@pytest.mark.django_db(transaction=True)  # the sender threads have connections of their own
def test_the_loop_sends_due_pages_from_its_thread_pool(crew, mail):
    pages = [page(crew, f"p{i}") for i in range(3)]
    assert sending.dispatch_due(timezone.now()) == 3
    sending.drain()
    assert sorted(mail.keys) == sorted(f"p{i}:account-email" for i in range(3))
    assert {d.status for d in Delivery.objects.filter(pk__in=[p.pk for p in pages])} == {
        DeliveryStatus.SENT
    }
    assert sending.next_due() is None


@pytest.mark.django_db(transaction=True)
def test_run_soon_hints_once_per_function_per_transaction(django_capture_on_commit_callbacks):
    with transaction.atomic(), django_capture_on_commit_callbacks() as callbacks:
        for _ in range(100):
            scheduling.run_soon("incidents.escalation.engine.advance_escalations")
            scheduling.run_soon("incidents.notifications.outbox.send_due_deliveries")
    assert len(callbacks) == 2


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_that_cannot_be_sent_is_logged_not_raised(caplog):
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL hints travel by NOTIFY on the database itself, not Redis")
    wake._redis_client = None
    try:
        dead = f"redis://127.0.0.1:{free_port()}/0"
        with override_settings(REDIS_URL=dead), transaction.atomic():
            scheduling.run_soon("incidents.escalation.engine.advance_escalations")
        # The commit went through; the hint was logged as lost.
    finally:
        wake._redis_client = None
        wake._redis_down_until = 0.0
    assert "wake-up hints not sent" in caplog.text


@pytest.mark.django_db(transaction=True)  # a NOTIFY is delivered when its transaction commits
def test_the_listener_wakes_on_a_hint():
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    listener = wake.Listener()
    try:
        assert listener.wait(0.05) is False  # connects and listens
        wake.send("incidents.escalation.engine.advance_escalations")
        assert listener.wait(5) is True
        assert listener.wait(0.05) is False  # one wake for everything that queued up
    finally:
        listener.close()
