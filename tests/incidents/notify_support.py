"""Real receivers on 127.0.0.1 for notification tests: an HTTP server in a thread."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message as MailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from incidents.models import Incident, NotificationChannel
from monitoring.models import Service


class Inbox:
    """An aiosmtpd handler keeping what the SMTP server accepted: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], MailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next status in ``codes`` (the last one repeats)."""

    codes: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def next_code(self) -> int:
        return self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            code = state.next_code()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if code < 400 else b"boom")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/s3cr3t-token"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def make_incident(team: Any, **extra: Any) -> Incident:
    service, _ = Service.objects.get_or_create(team=team, name="Checkout", slug="checkout")
    return Incident.objects.create(team=team, service=service, title="Checkout is down", **extra)


def make_channel(team: Any, kind: str, config: dict[str, Any], **extra: Any) -> NotificationChannel:
    extra.setdefault("name", f"{kind} channel")
    return NotificationChannel.objects.create(team=team, kind=kind, config=config, **extra)
