"""Email deliveries through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

from email.message import Message as MailMessage

from django.test import override_settings

from incidents.models import ContactMethod, DeliveryStatus, NotificationRule
from incidents.notifications import outbox as notify
from tests.incidents.notify_support import make_channel, make_incident
from tests.live import free_port


def body_of(message: MailMessage) -> str:
    return message.get_payload(decode=True).decode()


def test_a_page_arrives_with_subject_body_and_links(crew, smtp):
    incident = make_incident(crew.team, priority="P1")
    links = {"acknowledge": "https://tocsin.example.org/a/1", "resolve": "https://x/r/1"}
    (delivery,) = notify.page_user(
        crew.responder, incident, dedup_key="page-1", reason="You are on call", links=links
    )
    assert notify.send_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    ((to, message),) = smtp.messages
    assert to == ["responder@example.org"]
    assert message["Subject"] == f"[P1] #{incident.pk} Checkout is down (triggered)"
    assert message["X-Tocsin-Delivery"] == "page-1:account-email"
    body = body_of(message)
    assert "Checkout is down" in body
    assert "Service: Checkout" in body
    assert "You are on call" in body
    assert f"https://tocsin.example.org/incidents/{incident.pk}" in body
    assert "Acknowledge: https://tocsin.example.org/a/1" in body
    assert "Resolve: https://x/r/1" in body


def test_a_contact_method_and_a_channel_mail_their_addresses(crew, smtp):
    method = ContactMethod.objects.create(
        user=crew.manager, kind="email", config={"to": ["pager@example.net"]}
    )
    NotificationRule.objects.create(user=crew.manager, contact_method=method)
    channel = make_channel(crew.team, "email", {"to": ["ops@example.net", "sre@example.net"]})
    incident = make_incident(crew.team)
    notify.page_user(crew.manager, incident, dedup_key="p", reason="r")
    notify.notify_channel(channel, incident, dedup_key="c", event_kind="trigger")
    assert notify.send_due_deliveries() == 2
    assert sorted(tuple(to) for to, _ in smtp.messages) == [
        ("ops@example.net", "sre@example.net"),
        ("pager@example.net",),
    ]


def test_an_unreachable_smtp_server_is_retried(crew):
    port = free_port()  # nothing listens there
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
    ):
        (delivery,) = notify.page_user(
            crew.viewer, make_incident(crew.team), dedup_key="u", reason=""
        )
        assert notify.send_due_deliveries() == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert "Connection" in delivery.last_error or "refused" in delivery.last_error.lower()
