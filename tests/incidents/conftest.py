"""Incident fixtures: the crew's service, a real webhook receiver and a real SMTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

from monitoring.models import Service
from tests.incidents.core_support import make_service
from tests.incidents.notify_support import Inbox, Received, Receiver, smtp_server


@pytest.fixture
def service(crew: Any) -> Service:
    return make_service(crew)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 recording each POST and answering with ``codes`` in turn."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if state.take_stall():
                state.stalled.set()
                state.released.wait(60)
                self.close_connection = True
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            code = state.next_code()
            answer = b"ok" if code < 400 else b"boom"
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/s3cr3t-token"
    try:
        yield state
    finally:
        state.release()
        server.shutdown()
        server.server_close()


@pytest.fixture
def smtp() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that Django's SMTP backend sends to."""
    with (
        smtp_server() as server,
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=server.port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            TOCSIN_BASE_URL="https://tocsin.example.org",
        ),
    ):
        yield server.inbox
