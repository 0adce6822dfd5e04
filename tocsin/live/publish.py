"""Commit notices over Redis pub/sub: how every web process hears of new events, whichever
process (web or worker) committed them, without polling the event log.

After each committed transaction that recorded events, ``tocsin.events.on_committed`` hands the
team ids and the last event id to ``publish_committed``. A thread of the committing process
publishes them on the ``live`` channel layer (Redis pub/sub) to the group that every web
process's hub listens on; each hub then reads the new events from the log by id. Only ids travel:
the event log stays the one truth, and a reconnecting browser replays from it.

Publishing never delays or fails the commit: notices are handed to the thread and coalesced (one
publish covers every commit since the last), a failed publish is retried until Redis answers
(and sent once more shortly after, for hubs still re-subscribing), and a process that exits
flushes what is pending. A notice lost anyway (a process killed between commit and publish) is
repaired by the next one, since a hub reads everything past what it has seen, or else by the
hub's slow safety read (``TOCSIN_LIVE_SAFETY_INTERVAL``).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time

from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger(__name__)

LAYER = "live"  # the CHANNEL_LAYERS alias; configured only with Redis
GROUP = "events"
PUBLISH_TIMEOUT = 2.0
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0)
# After Redis comes back, hubs re-subscribe within about a second; say it again for them.
REPEAT_AFTER_RECOVERY = 2.0
FLUSH_AT_EXIT = 2.0


def redis_fanout() -> bool:
    """Whether web processes hear of commits by pub/sub (Redis) or poll the log (embedded)."""
    return LAYER in settings.CHANNEL_LAYERS


class Publisher:
    """One per process: a daemon thread with its own event loop (and so one Redis connection)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._team_ids: set[int | None] = set()
        self._last_id = 0
        self._busy = False
        self._pid = 0

    def notify(self, team_ids: set[int | None], last_event_id: int) -> None:
        with self._lock:
            self._team_ids |= team_ids
            self._last_id = max(self._last_id, last_event_id)
            if self._pid != os.getpid():  # first notice in this process
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="live-publisher", daemon=True).start()
            self._lock.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every notice handed over so far is published (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._last_id or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def _take(self) -> tuple[set[int | None], int]:
        with self._lock:
            while not self._last_id:
                self._lock.wait()
            taken = (self._team_ids, self._last_id)
            self._team_ids, self._last_id, self._busy = set(), 0, True
            return taken

    def _done(self, unsent: tuple[set[int | None], int] | None) -> None:
        with self._lock:
            if unsent is not None:
                self._team_ids |= unsent[0]
                self._last_id = max(self._last_id, unsent[1])
            self._busy = False
            self._lock.notify_all()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()  # the layer keeps one Redis connection per loop
        layer = get_channel_layer(LAYER)
        failures = 0
        while True:
            team_ids, last_id = notice = self._take()
            message = {"type": "events.committed", "teams": list(team_ids), "last": last_id}
            try:
                loop.run_until_complete(
                    asyncio.wait_for(layer.group_send(GROUP, message), PUBLISH_TIMEOUT)
                )
            except Exception as error:  # Redis away: keep the notice and try again
                self._done(notice)
                if not failures:
                    log.warning("live: publishing a commit notice failed (%s); retrying", error)
                time.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1
                continue
            self._done(None)
            if failures:
                log.warning("live: commit notices published again after %d failures", failures)
                failures = 0
                repeat = threading.Timer(REPEAT_AFTER_RECOVERY, self.notify, notice)
                repeat.daemon = True
                repeat.start()


_publisher = Publisher()
os.register_at_fork(after_in_child=_publisher._reset)  # django-q2 forks its workers
atexit.register(_publisher.flush, FLUSH_AT_EXIT)


def publish_committed(team_ids: set[int | None], last_event_id: int) -> None:
    """The ``on_committed`` callback: hand the notice to this process's publisher thread."""
    _publisher.notify(team_ids, last_event_id)


def flush(timeout: float = FLUSH_AT_EXIT) -> bool:
    return _publisher.flush(timeout)


def connect_publisher() -> None:
    """Called from ``TocsinConfig.ready``: with Redis, every process publishes its commits."""
    if redis_fanout():
        from tocsin.events import on_committed

        on_committed(publish_committed)
