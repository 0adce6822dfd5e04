"""The due-work loop pages when work is due, not on a minute boundary (a real worker).

The worker runs with its django-q schedules off (``TOCSIN_SCHEDULER=0``) and nothing queues an
escalation task: the only thing that can run a step here is the loop of ``manage.py worker``.
Time passing is simulated the only way it shows in the database: a step's ``next_step_at`` is
set a few seconds ahead, and the page must arrive once that moment has come, well before any
minute schedule (which is off anyway) could have run it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Task

from incidents.lifecycle import services
from incidents.models import Delivery, DeliveryStatus, Incident, IncidentStatus
from monitoring.models import Service, Severity
from monitoring.pipeline import AlertInput, process
from tests.incidents.notify_support import Receiver
from tests.incidents.test_escalation_worker_kill import Pager, escalated_steps, fire, pager
from tests.live import Proc, start_worker, wait_for

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
]

__all__ = ["pager"]  # the fixture, shared with the worker-kill tests

# Design bound: a step due at T pages by T + 2 s. The assertion leaves room for a loaded CI
# machine; what it rules out is waiting for a minute boundary (or forever: no schedules run).
DUE_BOUND = 8.0
AHEAD = timedelta(seconds=3)


@pytest.fixture
def loop_worker(pager: Pager, live_log_dir) -> Iterator[Proc]:
    proc = start_worker(live_log_dir, name="wake-worker", TOCSIN_SCHEDULER="0")
    yield proc
    proc.stop(signal.SIGINT, timeout=10)


def wait_for_page(receiver: Receiver, key: str, proc: Proc) -> float:
    """Seconds since the epoch when the receiver got the page with idempotency key ``key``."""
    wait_for(lambda: receiver.for_key(key), 30, f"the page {key}", proc)
    return time.time()


def fire_named(service: Service, name: str) -> Incident:
    [outcome] = process(
        service,
        [AlertInput(labels={"alertname": name}, severity=Severity.CRITICAL)],
        source="test",
    )
    return Incident.objects.get(alert_links__alert=outcome.alert)


def no_escalation_tasks_ran() -> bool:
    return not Task.objects.filter(func__contains="advance_escalations").exists()


def test_a_due_step_pages_without_waiting_for_a_minute_boundary(pager, receiver, loop_worker):
    # A first incident warms the worker up: the page we time measures the loop, not start-up.
    warmup = fire_named(pager.service, "Warmup")
    wait_for_page(receiver, pager.step_key(warmup, 0), loop_worker)
    alerted = time.time()
    incident = fire_named(pager.service, "CheckoutDown")
    step1 = pager.step_key(incident, 0)
    first_page = wait_for_page(receiver, step1, loop_worker)
    assert first_page - alerted < DUE_BOUND, f"first page {first_page - alerted:.1f}s after"

    # Step 2 is a minute away; bring it to a few seconds from now.
    incident.refresh_from_db()
    assert incident.current_step == 1
    assert incident.next_step_at - timezone.now() > timedelta(seconds=30)
    due = timezone.now() + AHEAD
    Incident.objects.filter(pk=incident.pk).update(next_step_at=due)
    step2 = pager.step_key(incident, 1)
    arrived = wait_for_page(receiver, step2, loop_worker)
    late = arrived - due.timestamp()
    assert late >= 0, "the step ran before it was due"
    assert late < DUE_BOUND, f"step 2 paged {late:.1f}s after it was due"
    print(f"first page {first_page - alerted:.2f}s after the alert; step 2 {late:.2f}s late")

    wait_for(
        lambda: (
            Delivery.objects.filter(
                dedup_key__in=[step1, step2], status=DeliveryStatus.SENT
            ).count()
            == 2
        ),
        10,
        "both deliveries to be recorded as sent",
        loop_worker,
    )
    assert escalated_steps(incident) == [0, 1]
    assert [len(receiver.for_key(k)) for k in (step1, step2)] == [1, 1]
    assert no_escalation_tasks_ran()


def test_an_expired_acknowledgement_pages_again_when_due(pager, receiver, loop_worker):
    incident = fire(pager.service)
    step1 = pager.step_key(incident, 0)
    wait_for_page(receiver, step1, loop_worker)
    incident.refresh_from_db()
    assert services.acknowledge(incident, actor=pager.first, via="api")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED

    # The acknowledgement times out a few seconds from now: triggered again, round 2 pages.
    due = timezone.now() + AHEAD
    Incident.objects.filter(pk=incident.pk).update(ack_timeout_at=due)
    wait_for(
        lambda: Incident.objects.get(pk=incident.pk).status == IncidentStatus.TRIGGERED,
        30,
        "the acknowledgement to expire",
        loop_worker,
    )
    expired = time.time()
    assert expired - due.timestamp() < DUE_BOUND
    incident.refresh_from_db()
    assert incident.repeat_round == 1
    from incidents.escalation import engine

    rule = pager.rules[pager.first.pk]
    again = f"{engine.dedup_key(incident.pk, 1, 0, pager.first.pk)}:rule-{rule.pk}"
    arrived = wait_for_page(receiver, again, loop_worker)
    assert arrived - due.timestamp() < DUE_BOUND
    assert len(receiver.for_key(step1)) == 1
    assert no_escalation_tasks_ran()
