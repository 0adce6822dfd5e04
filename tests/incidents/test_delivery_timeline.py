"""What became of each page, on the incident's timeline and escalation panel (issue #13, item 4).

Real outbox, real SMTP (aiosmtpd) or a real closed port, real webhook receiver on 127.0.0.1.
"""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from incidents.escalation import engine as escalation
from incidents.escalation.engine import advance_escalations
from incidents.lifecycle import deliveries
from incidents.models import ContactMethod, Delivery, DeliveryStatus, Incident, NotificationRule
from incidents.notifications import outbox
from tests.incidents.core_support import NOON, fire, policy, settings_for
from tests.live import free_port


@pytest.fixture
def paged_incident(crew, service):
    settings_for(service, escalation_policy=policy(crew.team, {"user_ids": [crew.responder.pk]}))
    fire(service, NOON)
    incident = Incident.objects.get()
    assert advance_escalations(NOON) == 1
    return incident


def page_text(crew, incident) -> str:
    client = Client()
    client.force_login(crew.viewer)
    response = client.get(incident.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def timeline_line(text: str, kind: str) -> str:
    """The text of the timeline entry of this kind, tags stripped, spaces squeezed."""
    match = re.search(
        rf'data-kind="{re.escape(kind)}".*?</li>\s*</ul>|data-kind="{kind}".*?</li>', text, re.S
    )
    assert match, f"no {kind} entry"
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split()))


def test_smtp_down_then_up_the_timeline_says_retrying_then_sent(crew, paged_incident, smtp):
    incident = paged_incident
    with override_settings(EMAIL_PORT=free_port()):  # nothing listens there
        assert outbox.send_due_deliveries() == 0
    (delivery,) = Delivery.objects.filter(incident=incident)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1

    line = timeline_line(page_text(crew, incident), "incident.escalated")
    assert "Escalation step 1 paged responder" in line
    assert "retrying responder via account e-mail" in line
    assert "attempt 2 at" in line
    assert "refused" in line.lower() or "connect" in line.lower()
    assert "sent" not in line.split("paged responder", 1)[1]

    outbox.retry_now(Delivery.objects.filter(pk=delivery.pk))
    assert outbox.send_due_deliveries() == 1
    assert len(smtp.messages) == 1
    line = timeline_line(page_text(crew, incident), "incident.escalated")
    assert "sent responder via account e-mail" in line
    assert "retrying" not in line and "refused" not in line.lower()


def test_a_failed_webhook_page_shows_the_error_without_the_secret_url(crew, service, receiver):
    receiver.codes = [404]  # not retryable: failed at once
    method = ContactMethod.objects.create(
        user=crew.responder,
        kind="webhook",
        label="My hook",
        config={"url": receiver.url, "secret": "x" * 32},
    )
    NotificationRule.objects.create(user=crew.responder, contact_method=method)
    settings_for(service, escalation_policy=policy(crew.team, {"user_ids": [crew.responder.pk]}))
    fire(service, NOON)
    incident = Incident.objects.get()
    advance_escalations(NOON)
    outbox.send_due_deliveries()
    (delivery,) = Delivery.objects.filter(incident=incident)
    assert delivery.status == DeliveryStatus.FAILED
    text = page_text(crew, incident)
    line = timeline_line(text, "incident.escalated")
    assert "failed responder via My hook" in line
    assert "gave up after 1 attempt" in line
    assert "404" in line
    assert "s3cr3t-token" not in text
    assert "Page to responder failed by webhook: HTTP 404" in timeline_line(
        text, "notification.failed"
    )
    # The escalation panel lists the page too.
    panel = text.split('id="escalation-head"', 1)[1].split('id="timeline-head"', 1)[0]
    assert f'data-delivery="{delivery.pk}"' in panel
    assert 'data-delivery-status="failed"' in panel


def test_errors_are_short_and_lose_their_urls():
    error = "POST https://hooks.example.com/services/T0/B0/s3cr3t failed\nTraceback: …"
    short = deliveries.short_error(error)
    assert short == "POST <hooks.example.com> failed"
    assert len(deliveries.short_error("x" * 1000)) == deliveries.ERROR_LENGTH
    assert (
        deliveries.short_error("to https://u:pa55@h.example.org:8443/k?t=1") == "to <h.example.org>"
    )


def test_the_page_reads_deliveries_in_one_query_however_many(
    crew, service, django_assert_num_queries
):
    settings_for(
        service,
        escalation_policy=policy(
            crew.team, {"user_ids": [crew.responder.pk, crew.manager.pk, crew.viewer.pk]}
        ),
    )
    fire(service, NOON)
    incident = Incident.objects.get()
    advance_escalations(NOON)
    client = Client()
    client.force_login(crew.viewer)
    url = incident.get_absolute_url()
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    n_three = len(few.captured_queries)
    for user in (crew.responder, crew.manager):
        for i in range(3):
            m = ContactMethod.objects.create(user=user, kind="email", config={"to": [f"{i}@x.org"]})
            NotificationRule.objects.create(user=user, contact_method=m)
    Delivery.objects.filter(incident=incident).delete()
    incident.refresh_from_db()
    for user in (crew.responder, crew.manager):
        outbox.page_user(
            user, incident, dedup_key=escalation.dedup_key(incident.pk, 0, 0, user.pk), reason="r"
        )
    assert Delivery.objects.filter(incident=incident).count() == 6
    with django_assert_num_queries(n_three):
        response = client.get(url)
    assert response.content.decode().count("data-delivery=") == 12  # timeline + panel


def test_the_outbox_records_read_as_sentences(crew, paged_incident, smtp):
    outbox.send_due_deliveries()
    text = page_text(crew, paged_incident)
    line = timeline_line(text, "notification.sent")
    assert "Page to responder sent by email" in line
