"""A worker killed mid-escalation is survived: the next step is sent once, on time.

Real django-q2 worker processes on the shared test database, killed with SIGKILL (no cleanup,
no goodbye), and a real HTTP receiver that counts what arrives. The rows are the truth: a
second worker started afterwards carries on from them.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from incidents.escalation import engine as escalation
from incidents.models import (
    ContactMethod,
    Delivery,
    DeliveryStatus,
    Incident,
    NotificationRule,
    ServiceIncidentSettings,
)
from incidents.notifications import outbox as notify
from monitoring.models import Service, Severity
from monitoring.pipeline import AlertInput, process
from tests.conftest import make_user
from tests.incidents.core_support import policy
from tests.incidents.notify_support import Receiver
from tests.incidents.test_e2e_paging import (
    WEBHOOK_SECRET,
    move_time,
    run_in_worker,
    signature_verifies,
)
from tests.live import Proc, start_worker, wait_for
from tocsin.models import Event, Membership, Role

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
]


# Becoming due → on the receiver, with a fresh worker to start in between (interpreter, Django
# and the cluster's processes), on a loaded CI machine.
ON_TIME = 15.0


@dataclass
class Pager:
    first: Any
    second: Any
    rules: dict[int, NotificationRule]
    service: Service

    def step_key(self, incident: Incident, step: int) -> str:
        user = (self.first, self.second)[step]
        return (
            f"{escalation.dedup_key(incident.pk, 0, step, user.pk)}:rule-{self.rules[user.pk].pk}"
        )


@pytest.fixture
def pager(crew, receiver) -> Pager:
    """Step 1 (at once) pages "first", step 2 (a minute later) "second", both by webhook."""
    service = Service.objects.create(team=crew.team, name="Checkout API")
    first, second = make_user("first"), make_user("second")
    rules = {}
    for user in (first, second):
        Membership.objects.create(team=crew.team, user=user, role=Role.RESPONDER)
        method = ContactMethod.objects.create(
            user=user, kind="webhook", config={"url": receiver.url, "secret": WEBHOOK_SECRET}
        )
        rules[user.pk] = NotificationRule.objects.create(user=user, contact_method=method)
    chain = policy(
        crew.team,
        {"delay_minutes": 0, "user_ids": [first.pk]},
        {"delay_minutes": 1, "user_ids": [second.pk]},
    )
    ServiceIncidentSettings.objects.create(service=service, escalation_policy=chain)
    return Pager(first, second, rules, service)


@pytest.fixture
def workers(pager, live_log_dir):
    """``workers("a")`` starts a worker process; whatever is still running is stopped after."""
    started: list[Proc] = []

    def start(name: str) -> Proc:
        proc = start_worker(live_log_dir, name=f"kill-worker-{name}")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(signal.SIGINT, timeout=10)


def fire(service: Service) -> Incident:
    process(
        service,
        [AlertInput(labels={"alertname": "CheckoutDown"}, severity=Severity.CRITICAL)],
        source="test",
    )
    return Incident.objects.get()


def kill(proc: Proc) -> None:
    assert proc.stop(signal.SIGKILL) == -signal.SIGKILL
    assert proc.popen.poll() is not None


def escalated_steps(incident: Incident) -> list[int]:
    return [
        e.payload["step"]
        for e in Event.objects.filter(
            kind="incident.escalated", subject_type="incident", subject_id=str(incident.pk)
        ).order_by("id")
    ]


def test_the_next_step_is_sent_once_and_on_time_by_another_worker(pager, receiver, workers):
    worker_a = workers("a")
    incident = fire(pager.service)
    step1 = pager.step_key(incident, 0)
    wait_for(lambda: receiver.for_key(step1), 30, "step 1's page", worker_a)
    wait_for(
        lambda: Delivery.objects.filter(dedup_key=step1, status=DeliveryStatus.SENT).exists(),
        10,
        "step 1's delivery to be recorded as sent",
        worker_a,
    )
    incident.refresh_from_db()
    assert incident.current_step == 1 and incident.next_step_at > timezone.now()

    kill(worker_a)

    # The minute passes while no worker runs; the scheduler's next beat (or a kick) is queued.
    move_time(incident)
    due_at = time.monotonic()
    worker_b = workers("b")
    run_in_worker("incidents.escalation.engine.advance_escalations", worker_b, timeout=30)
    step2 = pager.step_key(incident, 1)
    wait_for(lambda: receiver.for_key(step2), ON_TIME, "step 2's page", worker_b)
    late = time.monotonic() - due_at
    assert late < ON_TIME, f"step 2 arrived {late:.1f}s after it was due"

    # More passes of both loops change nothing: each step was run and sent exactly once.
    run_in_worker("incidents.escalation.engine.advance_escalations", worker_b)
    run_in_worker("incidents.notifications.outbox.send_due_deliveries", worker_b)
    (hit,) = receiver.for_key(step2)
    assert signature_verifies(WEBHOOK_SECRET, hit)
    assert len(receiver.for_key(step1)) == 1
    assert len(receiver.hits) == 2
    rows = {d.dedup_key: d for d in Delivery.objects.all()}
    assert set(rows) == {step1, step2}
    assert rows[step1].attempts == 1 and rows[step2].attempts == 1
    assert rows[step2].status == DeliveryStatus.SENT
    assert escalated_steps(incident) == [0, 1]
    assert Event.objects.filter(kind="notification.sent").count() == 2


def test_a_delivery_claimed_by_a_killed_worker_is_sent_once_after_its_lease(
    pager, receiver: Receiver, workers
):
    receiver.stall_next()  # worker A will be stuck mid-send, holding its claim
    worker_a = workers("a")
    incident = fire(pager.service)
    assert receiver.stalled.wait(30), f"worker A never sent step 1\n{worker_a.log()}"
    step1 = pager.step_key(incident, 0)
    delivery = Delivery.objects.get(dedup_key=step1)
    assert delivery.status == DeliveryStatus.SENDING
    assert delivery.attempts == 1
    assert delivery.claimed_by and delivery.claimed_until > timezone.now()
    claimed_by_a = delivery.claimed_by

    kill(worker_a)
    receiver.release()  # A's connection is gone; its request is never answered
    delivery.refresh_from_db()
    lease_end = delivery.claimed_until  # A renewed it while stuck; it ends seconds after
    assert lease_end - timezone.now() <= notify.LEASE
    assert delivery.claimed_by == claimed_by_a

    # Another worker takes it over once the lease has run out, on its own: no task, no kick.
    worker_b = workers("b")
    wait_for(lambda: receiver.for_key(step1), 30, "the retried page", worker_b)
    arrived = timezone.now()
    assert arrived >= lease_end, "taken over while A's lease still held"
    assert (arrived - lease_end).total_seconds() < ON_TIME
    wait_for(
        lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENT).exists(),
        10,
        "the delivery to be recorded as sent",
        worker_b,
    )
    run_in_worker("incidents.notifications.outbox.send_due_deliveries", worker_b)

    (hit,) = receiver.hits
    assert hit.delivery == step1
    assert signature_verifies(WEBHOOK_SECRET, hit)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 2
    assert (delivery.claimed_by, delivery.claimed_until) == ("", None)
    assert Delivery.objects.count() == 1
    sent = Event.objects.filter(kind="notification.sent")
    assert [e.payload["delivery_id"] for e in sent] == [delivery.pk]
    assert escalated_steps(incident) == [0]
