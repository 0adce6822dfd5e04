"""Deliveries for the due-work loop: claimed one by one when due, sent by a small thread pool.

The loop (``tocsin.duework``) calls ``dispatch_due`` whenever it wakes. Each free sender thread
gets one delivery, claimed on its own under a short lease (``leases.LEASE``, renewed while the
send runs), so one slow receiver never holds up the pages behind it, and a worker that dies
holds up only what its threads had in flight, for seconds.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from incidents.models import Delivery, DeliveryStatus
from incidents.notifications import outbox
from tocsin.env import env_int

log = logging.getLogger(__name__)

SENDERS = env_int("TOCSIN_SENDER_THREADS", 4, minimum=1)
# While every sender is busy the loop looks again this soon (a slot frees within a send).
BUSY_RECHECK = timedelta(milliseconds=50)

_pool: ThreadPoolExecutor | None = None
_in_flight: set[int] = set()
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="sender")
    return _pool


def free_senders() -> int:
    with _lock:
        return SENDERS - len(_in_flight)


def dispatch_due(now: datetime) -> int:
    """Claim due deliveries for the free sender threads; how many were handed to them."""
    outbox.settle_handed_over(now)
    started = 0
    while free_senders() > 0:
        delivery = outbox.claim_one(now)
        if delivery is None:
            break
        with _lock:
            _in_flight.add(delivery.pk)
        _executor().submit(_send, delivery)
        started += 1
    return started


def _send(delivery: Delivery) -> None:
    try:
        outbox.send_one(delivery)
    except Exception:  # the lease runs out and another pass retries it
        log.exception("delivery %s: sending failed", delivery.pk)
    finally:
        with _lock:
            _in_flight.discard(delivery.pk)
        connection.close()  # this thread's; a pooled one goes back to the pool


def next_due() -> datetime | None:
    """When the loop should look again: the next due row, or soon when all senders are busy."""
    if free_senders() <= 0:
        return timezone.now() + BUSY_RECHECK
    pending = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    with _lock:
        ours = list(_in_flight)
    # Another worker's lease running out makes its delivery ours to retry.
    lease = (
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_until__isnull=False)
        .exclude(pk__in=ours)
        .order_by("claimed_until")
        .values_list("claimed_until", flat=True)
        .first()
    )
    return min((t for t in (pending, lease) if t is not None), default=None)


def drain() -> None:
    """On shutdown: let the sends in flight finish (each is bounded by its timeouts)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
