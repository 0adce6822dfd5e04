"""The due-work loop and the heartbeat of ``manage.py worker``.

Paging must not wait for a task queue or a minute boundary. The loop claims what apps
registered with ``tocsin.scheduling.register_due_work`` (escalation steps, acknowledgement
timeouts, deliveries) as soon as it is due: it sleeps until the earliest due time the rows name,
at most ``wake.POLL_*`` seconds, and a wake-up hint (``tocsin.wake``) cuts the sleep short. Every
claim is a conditional UPDATE on the rows, so any number of loops in any number of workers is
safe, and a loop killed half-way loses nothing the rows don't still say.

The heartbeat is a thread of the worker process itself, not a queued task: a busy queue no
longer makes a working worker look dead, and a worker that stops cleanly removes its row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.module_loading import import_string

from tocsin import wake
from tocsin.scheduling import DueWork, due_work

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 5.0  # seconds; settings.TOCSIN_WORKER_STALE_AFTER is several of these
# A loop that has not finished a pass for this long is stuck: the heartbeat stops vouching.
STUCK_AFTER = 60.0
# Floor on the sleep when something is due but nothing could be started (held elsewhere).
IDLE_FLOOR = 0.1


def _reset_connection() -> None:
    """After a database error (a restart, pg_terminate_backend): reconnect on next use."""
    with contextlib.suppress(Exception):
        connection.close()


class DueWorkLoop:
    def __init__(self, works: list[DueWork] | None = None, listener: Any = None) -> None:
        self.works = [
            (work, import_string(work.run), import_string(work.next_due))
            for work in (due_work() if works is None else works)
        ]
        self.drains = [import_string(w.drain) for w, _, _ in self.works if w.drain]
        self.listener = listener if listener is not None else wake.Listener()
        self.stopping = threading.Event()
        self.last_pass = time.monotonic()

    def run_once(self, now: datetime | None = None) -> tuple[int, datetime | None]:
        """One pass: start what is due; (how much started, the earliest next due time).

        Each kind of work is asked when it is next due first (an index lookup), and run only
        when that time has come, so an idle loop costs a few reads per wake-up.
        """
        now = now or timezone.now()
        started = 0
        earliest = None
        for work, run, next_due in self.works:
            due = self._next_due(work, next_due)
            if due is not None and due <= now:
                try:
                    started += run(now) or 0
                except DatabaseError as exc:
                    log.warning("due work %s: database error (%s); retrying", work.name, exc)
                    _reset_connection()
                except Exception:
                    log.exception("due work %s failed; retrying", work.name)
                # Asked again only after it ran (each question is a query, and a busy worker
                # asks many times a second). Work a later kind creates for an earlier one (a
                # check's alert opening an incident to escalate) is found by the next pass,
                # which comes at once: a pass that started something does not sleep.
                due = self._next_due(work, next_due)
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        return started, earliest

    def _next_due(self, work: DueWork, next_due: Callable[[], datetime | None]) -> Any:
        try:
            return next_due()
        except DatabaseError as exc:
            log.warning("due work %s: database error (%s)", work.name, exc)
            _reset_connection()
            return timezone.now()  # unknown: run it, and look again soon

    def sleep_for(self, started: int, earliest: datetime | None) -> float:
        if earliest is None:
            return self.listener.poll
        seconds = (earliest - timezone.now()).total_seconds()
        if seconds <= 0:
            return 0.0 if started else IDLE_FLOOR
        return min(seconds, self.listener.poll)

    def run(self) -> None:
        log.info(
            "due-work loop: %s (hints: %s)",
            ", ".join(w.name for w, _, _ in self.works),
            self.listener.kind or "none, polling",
        )
        try:
            while not self.stopping.is_set():
                started, earliest = self.run_once()
                self.last_pass = time.monotonic()
                self.listener.wait(self.sleep_for(started, earliest))
        finally:
            for drain in self.drains:
                try:
                    drain()
                except Exception:
                    log.exception("draining due work failed")
            self.listener.close()
            _reset_connection()

    def stop(self) -> None:
        self.stopping.set()

    def healthy(self) -> bool:
        return time.monotonic() - self.last_pass < STUCK_AFTER


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat(threading.Thread):
    """Writes this worker's heartbeat row every few seconds while ``healthy()`` holds."""

    def __init__(self, name: str, healthy: Callable[[], bool]) -> None:
        super().__init__(name="tocsin-heartbeat", daemon=True)
        self.worker = name
        self.healthy = healthy
        self.stopping = threading.Event()

    def beat(self) -> None:
        from tocsin.tasks import worker_heartbeat

        if not self.healthy():
            log.warning("worker %s is not healthy: no heartbeat", self.worker)
            return
        try:
            worker_heartbeat(self.worker)
        except DatabaseError as exc:
            log.warning("heartbeat not written (%s)", exc)
            _reset_connection()

    def run(self) -> None:
        try:
            self.beat()
            while not self.stopping.wait(HEARTBEAT_EVERY):
                self.beat()
        finally:
            _reset_connection()

    def stop(self) -> None:
        """Stop beating and remove the row: a cleanly stopped worker is gone at once."""
        from tocsin.tasks import worker_stopped

        self.stopping.set()
        self.join(timeout=10)
        try:
            worker_stopped(self.worker)
        except DatabaseError as exc:
            log.warning("heartbeat row not removed (%s); it goes stale instead", exc)
        finally:
            _reset_connection()
