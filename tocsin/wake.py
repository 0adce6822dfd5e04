"""Wake-up hints for the due-work loop: cheap, best-effort, never an error for the sender.

The rows (``next_step_at``, ``next_attempt_at``, …) are the truth and the loop polls them at
least once a second; a hint only makes it look sooner. Which channel carries the hint follows
the database, so that no extra moving part can fail between a commit and a page:

- PostgreSQL: ``NOTIFY`` on the database itself (``LISTEN`` in the loop). No Redis involved, so a
  Redis outage delays nothing.
- SQLite with Redis configured: Redis pub/sub.
- SQLite alone (the embedded default, one machine): no hint; the loop polls every quarter second.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

log = logging.getLogger(__name__)

CHANNEL = "tocsin_due_work"
# How long the loop sleeps at most without a hint, by how the hint travels.
POLL_WITH_HINTS = 1.0
POLL_WITHOUT_HINTS = 0.25
# Publishing must never hold a request up for long, even with Redis unreachable.
REDIS_TIMEOUT = 0.5

# After a failed publish, hints skip Redis this long (seconds): an outage costs each commit
# nothing, and the log says so once rather than once per commit.
REDIS_RETRY = 2.0

_redis_client: Any = None
_redis_down_until = 0.0
_redis_lock = threading.Lock()


def _is_postgresql() -> bool:
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


def _redis_channel() -> str:
    return f"{settings.REDIS_PREFIX}:{CHANNEL}"


def _redis() -> Any:
    global _redis_client
    with _redis_lock:
        if _redis_client is None:
            import redis

            _redis_client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        return _redis_client


def send(topic: str) -> None:
    """Tell every listening loop that ``topic`` has new due work; logs instead of raising."""
    global _redis_down_until
    try:
        if _is_postgresql():
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, topic])
        elif settings.REDIS_URL:
            if time.monotonic() < _redis_down_until:
                return  # Redis just failed: don't make every commit wait for it again
            _redis().publish(_redis_channel(), topic)
    except Exception as exc:  # a hint: the next poll finds the rows anyway
        if time.monotonic() >= _redis_down_until:
            log.warning("wake-up hints not sent (%s); the loops poll meanwhile", exc)
        _redis_down_until = time.monotonic() + REDIS_RETRY


class Listener:
    """What the loop sleeps on: ``wait(timeout)`` returns early when a hint arrives."""

    def __init__(self) -> None:
        self._conn: Any = None
        self._pubsub: Any = None
        self._retry_at = 0.0
        self.kind = "postgresql" if _is_postgresql() else ("redis" if settings.REDIS_URL else "")
        self.poll = POLL_WITH_HINTS if self.kind else POLL_WITHOUT_HINTS

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if woken by a hint."""
        if timeout <= 0:
            return False
        try:
            if self.kind == "postgresql" and self._connected():
                return self._wait_postgresql(timeout)
            if self.kind == "redis" and self._connected():
                return self._wait_redis(timeout)
        except Exception as exc:  # the connection died (e.g. pg_terminate_backend): poll
            log.warning("wake-up listener lost (%s); polling until it is back", exc)
            self.close()
            self._retry_at = time.monotonic() + 1.0
        time.sleep(min(timeout, POLL_WITHOUT_HINTS) if self.kind else timeout)
        return False

    def _connected(self) -> bool:
        if self._conn is not None or self._pubsub is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            if self.kind == "postgresql":
                self._conn = _listen_postgresql()
            else:
                pubsub = _redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(_redis_channel())
                self._pubsub = pubsub
            return True
        except Exception as exc:
            log.warning("wake-up listener not connected (%s); polling", exc)
            self.close()
            self._retry_at = time.monotonic() + 1.0
            return False

    def _wait_postgresql(self, timeout: float) -> bool:
        # Everything that queued up arrives together: one wake for many hints.
        woke = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
        if woke:
            for _ in self._conn.notifies(timeout=0):
                pass
        return woke

    def _wait_redis(self, timeout: float) -> bool:
        message = self._pubsub.get_message(timeout=timeout)
        if message is None:
            return False
        while self._pubsub.get_message(timeout=0) is not None:
            pass
        return True

    def close(self) -> None:
        for resource in (self._conn, self._pubsub):
            if resource is not None:
                with contextlib.suppress(Exception):
                    resource.close()
        self._conn = self._pubsub = None


def _listen_postgresql() -> Any:
    """A connection of its own (outside Django's pool): LISTEN needs one session to stay."""
    import psycopg

    db = settings.DATABASES[DEFAULT_DB_ALIAS]
    conn = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,
        connect_timeout=5,
        application_name="tocsin-due-work-listener",
    )
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


class Sleeper:
    """A listener for a loop with nothing to listen for."""

    kind = ""
    poll = POLL_WITH_HINTS

    def wait(self, timeout: float) -> bool:
        time.sleep(max(timeout, 0))
        return False

    def close(self) -> None:
        pass
