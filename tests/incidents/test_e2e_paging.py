"""An alert pages people end to end, with nothing faked.

A real daphne web server takes the Alertmanager webhook, a real django-q2 worker runs the
escalation and sends the pages: email to an aiosmtpd SMTP server, a signed webhook to an HTTP
receiver, both on 127.0.0.1. Time passing is simulated the only way it shows in the database:
the incident's ``next_step_at`` moves into the past.

The helpers here (``run_in_worker``, ``signature_verifies``, …) are shared with
``test_escalation_worker_kill``; the webhook receiver is tests/incidents/conftest.py's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message as MailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.utils import timezone
from django_q.models import Task
from django_q.tasks import async_task

from incidents.escalation import engine as escalation
from incidents.escalation import services as policies
from incidents.lifecycle import services, timeline
from incidents.models import (
    ContactMethod,
    Delivery,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    NotificationRule,
    ServiceIncidentSettings,
)
from monitoring.models import IntegrationKind, Service
from tests.conftest import make_user
from tests.incidents.notify_support import Received, Smtp, smtp_server
from tests.live import (
    Proc,
    queued_tasks,
    start_web,
    start_worker,
    wait_for,
)
from tests.monitoring.conftest import make_integration
from tocsin.models import Membership, Role

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager-webhook-v4.json"
WEBHOOK_SECRET = "e2e-shared-secret-0123456789abcdef"


# --- Real receivers -----------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    """Out of process: the web and worker processes get its address from ``Smtp.env()``."""
    with smtp_server() as server:
        yield server


def body_of(message: MailMessage) -> str:
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def signature_verifies(secret: str, hit: Received) -> bool:
    """What incidents/channels/webhook.py tells receivers to do, done independently."""
    timestamp = hit.headers["X-Tocsin-Timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + hit.body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), hit.headers["X-Tocsin-Signature"])


# --- Workers ------------------------------------------------------------------------------------


def run_in_worker(func: str, proc: Proc, timeout: float = 20) -> None:
    """Queue ``func`` as the on-commit kicks do and wait until a worker has finished it."""
    name = f"test-kick-{uuid.uuid4().hex[:12]}"
    async_task(func, task_name=name)
    try:
        wait_for(lambda: Task.objects.filter(name=name).exists(), timeout, f"{func} to run", proc)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n({queued_tasks()} tasks still queued)") from None
    task = Task.objects.get(name=name)
    assert task.success, f"{func} failed in the worker: {task.result}\n{proc.log()}"


def stop_all(*procs: Proc | None) -> None:
    for proc in procs:
        if proc is not None:
            proc.stop(signal.SIGINT, timeout=10)


def move_time(incident: Incident) -> None:
    """What waiting for the next step does to the row: the step is now due."""
    Incident.objects.filter(pk=incident.pk).update(
        next_step_at=timezone.now() - timedelta(seconds=1)
    )


# --- The scenario -------------------------------------------------------------------------------


@dataclass
class Setup:
    service: Service
    key: str
    oncall: Any
    backup: Any
    email_rule: NotificationRule
    webhook_rule: NotificationRule


@pytest.fixture
def setup(crew, receiver) -> Setup:
    service = Service.objects.create(team=crew.team, name="Checkout API")
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    oncall, backup = make_user("oncall"), make_user("backup")
    for user in (oncall, backup):
        Membership.objects.create(team=crew.team, user=user, role=Role.RESPONDER)
    mail = ContactMethod.objects.create(
        user=oncall, kind="email", label="work mail", config={"to": [oncall.email]}
    )
    hook = ContactMethod.objects.create(
        user=backup,
        kind="webhook",
        label="pager bridge",
        config={"url": receiver.url, "secret": WEBHOOK_SECRET},
    )
    email_rule = NotificationRule.objects.create(user=oncall, contact_method=mail)
    webhook_rule = NotificationRule.objects.create(user=backup, contact_method=hook)
    policy = policies.create_policy(
        crew.team,
        actor=crew.manager,
        name="Checkout on call",
        # One more round after the last step, so "escalation stops" has something to stop.
        repeat_times=1,
        repeat_after_minutes=5,
        steps=[
            {"delay_minutes": 0, "user_ids": [oncall.pk]},
            {"delay_minutes": 1, "user_ids": [backup.pk]},
        ],
    )
    ServiceIncidentSettings.objects.create(service=service, escalation_policy=policy)
    return Setup(service, door.key, oncall, backup, email_rule, webhook_rule)


@pytest.fixture
def live(setup, smtp, live_log_dir) -> Iterator[tuple[Any, Proc]]:
    """This test's own web server and worker, both pointed at the SMTP server."""
    web = start_web(live_log_dir, **smtp.env())
    worker = None
    try:
        # Links in the pages lead to this web server.
        worker = start_worker(
            live_log_dir, name="e2e-worker", TOCSIN_BASE_URL=web.url, **smtp.env()
        )
        yield web, worker
    finally:
        stop_all(worker, web.proc)


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def test_an_alert_pages_escalates_and_is_acknowledged_from_the_email(setup, live, smtp, receiver):
    web, worker = live
    body = json.loads(FIXTURE.read_text())

    # The alert arrives through the real web server.
    response = httpx.post(f"{web.url}/ingest/alertmanager/{setup.key}/", json=body, timeout=30)
    assert response.status_code == 200, response.text
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    assert incident.title == "Probe failure: https://api.example.org"

    # Step 1 (no delay): the on-call person's email, sent by the worker on the commit kick.
    wait_for(lambda: smtp.messages, 30, "step 1's email", worker)
    ((to, message),) = smtp.messages
    assert to == ["oncall@example.org"]
    assert message["Subject"] == f"[P1] #{incident.pk} {incident.title} (triggered)"
    step1_key = escalation.dedup_key(incident.pk, 0, 0, setup.oncall.pk)
    assert message["X-Tocsin-Delivery"] == f"{step1_key}:rule-{setup.email_rule.pk}"
    text = body_of(message)
    assert incident.title in text
    assert "Service: Checkout API" in text
    assert "escalation step 1" in text
    assert f"Open: {web.url}/incidents/{incident.pk}" in text
    ack = re.search(r"^Acknowledge: (\S+)$", text, re.M)
    assert ack and ack.group(1).startswith(f"{web.url}/"), text
    ack_url = ack.group(1)
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 1,
        10,
        "step 1's delivery to be recorded as sent",
        worker,
    )
    assert receiver.hits == []

    # Step 2 is scheduled a minute after step 1; nobody acknowledged, so a minute passes.
    incident.refresh_from_db()
    assert incident.current_step == 1
    assert timedelta(seconds=30) < incident.next_step_at - timezone.now() <= timedelta(minutes=1)
    move_time(incident)
    run_in_worker("incidents.escalation.engine.advance_escalations", worker)
    wait_for(lambda: receiver.hits, 20, "step 2's webhook", worker)
    (hit,) = receiver.hits
    assert hit.path == urlsplit(receiver.url).path  # the URL the contact method names
    assert signature_verifies(WEBHOOK_SECRET, hit)
    assert not signature_verifies("not-the-secret-at-all-0123456789", hit)
    step2_key = escalation.dedup_key(incident.pk, 0, 1, setup.backup.pk)
    assert hit.delivery == f"{step2_key}:rule-{setup.webhook_rule.pk}"
    payload = hit.json()
    assert payload["event"] == "page"
    assert payload["incident"]["id"] == incident.pk
    assert "escalation step 2" in payload["reason"]
    assert set(payload["links"]) == {"acknowledge", "resolve"}
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 2,
        10,
        "step 2's delivery to be recorded as sent",
        worker,
    )
    assert len(smtp.messages) == 1  # step 1 was not paged again

    # The acknowledge link from the email: GET only asks, POST acts.
    with httpx.Client(timeout=30) as browser:
        page = browser.get(ack_url)
        assert page.status_code == 200
        assert f"Acknowledge incident #{incident.pk}?" in page.text
        assert "Acknowledge as oncall" in page.text
        incident.refresh_from_db()
        assert incident.status == IncidentStatus.TRIGGERED
        token = CSRF_INPUT.search(page.text)
        assert token, page.text
        form = {"csrfmiddlewaretoken": token.group(1)}
        done = browser.post(ack_url, data=form, headers={"Origin": web.url}, follow_redirects=True)
        assert done.status_code == 200, done.text
        assert done.history and done.history[0].status_code == 303  # POST -> redirect -> GET
        assert "Done" in done.text and "acknowledged" in done.text
        incident.refresh_from_db()
        assert incident.status == IncidentStatus.ACKNOWLEDGED
        assert incident.assignee == setup.oncall
        assert incident.next_step_at is None

        # The link is single use.
        again = browser.post(ack_url, data=form, headers={"Origin": web.url})
        assert again.status_code == 410
        assert "already been used" in again.text
        assert "Already used" in browser.get(ack_url).text

    # Escalation stopped: even with the next round's time come, nobody is paged again.
    deliveries = Delivery.objects.count()
    move_time(incident)
    run_in_worker("incidents.escalation.engine.advance_escalations", worker)
    run_in_worker("incidents.notifications.outbox.send_due_deliveries", worker)
    assert Delivery.objects.count() == deliveries == 2
    assert len(smtp.messages) == 1 and len(receiver.hits) == 1

    assert services.resolve(incident, actor=setup.oncall, via="api")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED

    story = []
    for event in timeline.for_incident(incident):
        p = event.payload
        if event.kind == "alert.firing":
            story.append("alert fired")
        elif event.kind == "incident.triggered":
            story.append("incident triggered")
        elif event.kind == "incident.escalated":
            story.append(f"escalated to step {p['step'] + 1} (round {p['round'] + 1})")
        elif event.kind in ("notification.sent", "notification.failed"):
            story.append(f"{event.kind} ({p['kind']} to user {p['recipient_id']})")
        elif event.kind == "incident.acknowledged":
            story.append(f"acknowledged via {p['via']} by {event.actor}")
        elif event.kind == "incident.resolved":
            story.append("resolved")
    assert story == [
        "alert fired",
        "incident triggered",
        "escalated to step 1 (round 1)",
        f"notification.sent (email to user {setup.oncall.pk})",
        "escalated to step 2 (round 1)",
        f"notification.sent (webhook to user {setup.backup.pk})",
        "acknowledged via link by oncall",
        "resolved",
    ]
