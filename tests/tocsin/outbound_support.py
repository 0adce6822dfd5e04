"""Shared by the outbound guard's tests: the destinations it must refuse, a receiver that proves
an allowed request arrives, and a record of every socket the process tries to connect.

The record is Python's own audit event ``socket.connect`` (raised by ``socket.connect`` for every
connection Python code opens: httpx, asyncio, redis-py, PyMySQL, botocore). libpq connects in C
and raises no event; for PostgreSQL the tests show the guard's error instead, which is raised
while the connection arguments are computed, before psycopg is called.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# (host as written in a URL, host as given to a socket, what the guard says)
REFUSED = [
    pytest.param("127.0.0.1", "127.0.0.1", "127.0.0.1 is loopback", id="loopback"),
    pytest.param("[::1]", "::1", "::1 is loopback", id="ipv6-loopback"),
    pytest.param(
        "169.254.169.254",
        "169.254.169.254",
        "169.254.169.254 is a cloud metadata address",
        id="metadata",
    ),
    pytest.param("10.0.0.1", "10.0.0.1", "10.0.0.1 is private", id="private"),
    pytest.param("localhost", "localhost", "is loopback", id="name-resolving-to-loopback"),
]
GUARD = "destination refused by outbound guard: "

_sinks: list[list[Any]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _sinks:
        for sink in _sinks:
            sink.append(args[1])


sys.addaudithook(_audit)  # cannot be removed; does nothing while no test listens


@pytest.fixture
def connections() -> Iterator[list[Any]]:
    """Every address this process connects a socket to during the test."""
    seen: list[Any] = []
    _sinks.append(seen)
    try:
        yield seen
    finally:
        _sinks.remove(seen)


def left_loopback(seen: list[Any]) -> list[Any]:
    """The connections that went anywhere but this machine: must always be none."""
    out = []
    for address in seen:
        if isinstance(address, tuple) and address:
            try:
                if ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
                    continue
            except ValueError:
                pass
            out.append(address)
    return out


def touched(seen: list[Any], host: str, port: int | None = None) -> bool:
    """Whether a connection to ``host`` (and ``port``) was attempted."""
    wanted = {"127.0.0.1", "::1"} if host == "localhost" else {host}
    return any(
        isinstance(a, tuple) and str(a[0]) in wanted and (port is None or a[1] == port)
        for a in seen
    )


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each request (path, Host header)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path, self.headers.get("Host", "")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def guarded(settings: Any) -> Any:
    """The guard as shipped: no allow-list (the suite allows loopback everywhere else)."""
    settings.TOCSIN_OUTBOUND_ALLOW = []
    settings.TOCSIN_PROBE_ALLOW = []
    return settings
