"""Real receivers on 127.0.0.1 for notification tests: an HTTP server and an SMTP server."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message as MailMessage
from typing import Any

from aiosmtpd.controller import Controller

from incidents.models import Incident, NotificationChannel
from monitoring.models import Service
from tests.live import free_port


class Inbox:
    """An aiosmtpd handler keeping what the SMTP server accepted: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], MailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@dataclass
class Smtp:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, and what it accepted."""

    inbox: Inbox
    port: int

    @property
    def messages(self) -> list[tuple[list[str], MailMessage]]:
        return self.inbox.messages

    def env(self) -> dict[str, str]:
        """What a web or worker process needs to send to it."""
        return {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(self.port)}


@contextmanager
def smtp_server() -> Iterator[Smtp]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp(inbox, port)
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers.get("X-Tocsin-Delivery", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next status in ``codes`` (the last one repeats).

    After ``stall_next()`` the next POST hangs before its body is read, so the sender is stuck
    mid-send holding its claim, until ``release()``. A stalled request is never answered and
    never counts as received.
    """

    codes: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    stalled: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    _stall: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def hits(self) -> list[Received]:
        return self.requests

    def next_code(self) -> int:
        return self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]

    def stall_next(self) -> None:
        with self._lock:
            self._stall = True

    def take_stall(self) -> bool:
        with self._lock:
            stall, self._stall = self._stall, False
            return stall

    def release(self) -> None:
        self.released.set()

    def for_key(self, prefix: str) -> list[Received]:
        return [h for h in self.requests if h.delivery.startswith(prefix)]


def make_incident(team: Any, **extra: Any) -> Incident:
    service, _ = Service.objects.get_or_create(team=team, name="Checkout", slug="checkout")
    return Incident.objects.create(team=team, service=service, title="Checkout is down", **extra)


def make_channel(team: Any, kind: str, config: dict[str, Any], **extra: Any) -> NotificationChannel:
    extra.setdefault("name", f"{kind} channel")
    return NotificationChannel.objects.create(team=team, kind=kind, config=config, **extra)
