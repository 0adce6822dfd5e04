"""Short delivery leases, renewed while a send is in flight.

A claimed delivery belongs to its sender until ``claimed_until``. The lease is short (seconds),
so a worker that dies mid-send holds up only that delivery, and only for seconds; a send that
takes longer than the lease (a slow SMTP server) keeps its claim because this process renews
the leases of whatever it is still sending, every ``RENEW_EVERY`` seconds, from one thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from incidents.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

# A dead worker's page waits this long before another worker takes it over: well inside the
# 10 s a page may be late, with room for the loop's wake-up and the send itself.
LEASE = timedelta(seconds=5)
RENEW_EVERY = 1.5  # seconds: three renewals fit in one lease, so one missed one is harmless


class LeaseKeeper:
    def __init__(self) -> None:
        self._held: dict[int, tuple[str, float]] = {}  # delivery id → (claimed_by, since)
        self._lock = threading.Lock()
        self._pid = 0

    @contextmanager
    def hold(self, delivery: Delivery) -> Iterator[None]:
        """Keep ``delivery``'s lease for as long as the block runs."""
        with self._lock:
            self._ensure_thread()
            self._held[delivery.pk] = (delivery.claimed_by, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(delivery.pk, None)

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():  # first use, or a forked child: its own thread
            self._pid = os.getpid()
            self._held = {}
            threading.Thread(target=self._run, name="delivery-leases", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(RENEW_EVERY)
            # Only sends that have run for a while need it (most finish well within a lease).
            cutoff = time.monotonic() - RENEW_EVERY
            with self._lock:
                due = [(pk, by) for pk, (by, since) in self._held.items() if since <= cutoff]
            if not due:
                continue
            try:
                renew(due)
            except Exception as exc:  # the next round tries again, well within the lease
                log.warning("delivery leases not renewed (%s)", exc)
            finally:
                connection.close()


def renew(held: list[tuple[int, str]]) -> int:
    """Extend the leases of ``held`` (id, claimed_by) pairs that are still ours: one UPDATE."""
    mine = reduce(or_, (Q(pk=pk, claimed_by=by) for pk, by in held))
    return Delivery.objects.filter(mine, status=DeliveryStatus.SENDING).update(
        claimed_until=timezone.now() + LEASE
    )


keeper = LeaseKeeper()
