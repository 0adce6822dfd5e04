"""A real HTTP target whose answer the check tests change between runs, and the helpers that
drive checks through the scheduler one slot at a time (time is driven with ``now``).

Imported by the other ``test_check_*`` files; its own tests show the target answers as told.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from monitoring.models import Alert, Service
from probes.checks import scheduler, services
from probes.checks.models import Check, Slot
from tocsin.models import Event

T0 = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


class Target(ThreadingHTTPServer):
    """Answers every request with ``status`` and ``body``, or with the next queued answer."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        self.status, self.body = 200, "ok"
        self.queued: deque[tuple[int, str]] = deque()
        self.requests = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        ).start()

    def answer(self) -> tuple[int, str]:
        with self.lock:
            self.requests += 1
            return self.queued.popleft() if self.queued else (self.status, self.body)

    def set(self, status: int, body: str = "") -> None:
        self.status, self.body = status, body or f"status {status}"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, body = self.server.answer()  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def service(crew: Any) -> Service:
    return Service.objects.create(team=crew.team, name="Shop")


def make_check(service: Service, target: Target, **fields: Any) -> Check:
    fields.setdefault("name", "Shop front")
    fields.setdefault("kind", "http")
    fields.setdefault("config", {"url": target.url("/")})
    fields.setdefault("interval", 60)
    fields.setdefault("timeout", 2.0)
    return services.create_check(service=service, now=T0, **fields)


def due_at(check: Check) -> datetime:
    return min(s.next_run_at for s in Slot.objects.filter(probe=check) if s.next_run_at)


def step(check: Check, status: int | None = None, body: str = "", target: Target | None = None):
    """Set the target's answer (if given) and run the check's next slot exactly when due
    (only this check's: another check due by then waits for its own step)."""
    if target is not None and status is not None:
        target.set(status, body)
    now = due_at(check)
    ran = scheduler.run_batch(now, only=[check.pk])
    check.refresh_from_db()
    return ran, now


def down_alert(check: Check) -> Alert | None:
    return Alert.objects.filter(fingerprint=f"check:{check.pk}:down").first()


def events(kind: str) -> int:
    return Event.objects.filter(kind=kind).count()


def test_the_target_answers_as_told(target):
    target.set(503)
    assert httpx.get(target.url()).status_code == 503
    target.queued.append((200, "later"))
    assert httpx.get(target.url()).text == "later"
    assert httpx.get(target.url()).status_code == 503
