"""``manage.py web --processes N``: several daphne processes on one port, as real processes.

The parent binds the port and supervises; each child serves HTTP and WebSockets on a socket of
its own on that port. Which child takes a connection is up to the kernel, so the tests look at
which process holds each connection (psutil) rather than asking the server to say.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest
from django.db import transaction
from websockets.sync.client import connect

from tests.conftest import declared_payload
from tests.live import Proc, WebServer, free_port, start, wait_for, wait_until_serving
from tocsin.events import record

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

PROCESSES = 3
CONNECTIONS = 12


def start_web(tmp_path: Path, processes: int = PROCESSES) -> tuple[Proc, int]:
    port = free_port()
    proc = start(
        "web", ["manage.py", "web", "--port", str(port), "--processes", str(processes)], tmp_path
    )
    wait_until_serving(proc, port, timeout=60)
    wait_for(lambda: len(children(proc)) == processes, 30, f"{processes} web processes", proc)
    return proc, port


def children(proc: Proc) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(proc.popen.pid).children()]
    except psutil.NoSuchProcess:
        return []


def owner_of(proc: Proc, port: int, client_port: int) -> int | None:
    """The web process holding the server end of the client connection from ``client_port``."""
    for pid in children(proc):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.laddr.port == port and conn.raddr and conn.raddr.port == client_port:
                return pid
    return None


def http_get(port: int, path: str = "/health/live") -> socket.socket:
    """A plain keep-alive HTTP/1.1 request; the socket stays open for owner_of()."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert sock.recv(65536).startswith(b"HTTP/1.1 200"), path
    return sock


def test_several_processes_serve_http_and_websockets_and_sigterm_stops_them_all(crew, tmp_path):
    proc, port = start_web(tmp_path)
    pids = children(proc)
    web = WebServer(proc, port)
    try:
        with ExitStack() as stack:
            answered_by = set()
            for _ in range(CONNECTIONS):
                sock = stack.enter_context(http_get(port))
                answered_by.add(owner_of(proc, port, sock.getsockname()[1]))
                time.sleep(0.05)
            assert len(answered_by - {None}) > 1, f"every request went to {answered_by}"

            sockets = []
            for _ in range(CONNECTIONS):
                ws = stack.enter_context(
                    connect(
                        f"{web.ws_url}/ws/live/?format=json",
                        additional_headers=web.ws_headers(crew.viewer),
                        open_timeout=20,
                    )
                )
                ws.send(json.dumps({"action": "subscribe", "after": 0}))
                sockets.append(ws)
                time.sleep(0.05)
            held_by = {owner_of(proc, port, ws.socket.getsockname()[1]) for ws in sockets}
            assert len(held_by - {None}) > 1, f"every WebSocket went to {held_by}"
            time.sleep(1)  # every socket subscribed before the event is written
            with transaction.atomic():
                event = record(
                    "team.test",
                    team=crew.team,
                    subject=crew.team,
                    actor_label="test",
                    payload=declared_payload("team.test"),
                )
            for ws in sockets:  # whichever process holds it, the event arrives
                while True:
                    message = json.loads(ws.recv(timeout=15))
                    if message["type"] == "event" and message["event"]["id"] == event.id:
                        break
    finally:
        os.kill(proc.popen.pid, signal.SIGTERM)  # the parent only: it stops its children
        code = proc.popen.wait(30)

    assert code == 0, proc.log()
    assert not [pid for pid in pids if psutil.pid_exists(pid) and is_running(pid)], proc.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_web_process_that_dies_is_replaced(tmp_path):
    proc, port = start_web(tmp_path, processes=2)
    try:
        victim, survivor = children(proc)
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in children(proc) and len(children(proc)) == 2,
            60,
            "a new web process",
            proc,
        )
        assert survivor in children(proc)
        for _ in range(4):
            http_get(port).close()
        wait_for(lambda: "exited with code -9" in proc.log(), 10, "the death logged", proc)
    finally:
        proc.stop()


def test_connections_opened_together_are_shared_between_the_processes(tmp_path):
    # Senders open their keep-alive connections at once (Prometheus, a load generator). On one
    # shared socket the first process awake took every waiting connection (Twisted accepts up
    # to 100 per wake-up) and its siblings idled; each process now listens on its own socket
    # on the port (SO_REUSEPORT) and the kernel spreads the connections — by a hash of each
    # connection's addresses, so evenly on average: with 40 connections, fewer than 8 on one
    # of two processes happens less than once in 10,000 runs (a shared socket gave it 0).
    at_once = 40
    proc, port = start_web(tmp_path, processes=2)
    try:
        with ExitStack() as stack:
            sockets = [
                stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
                for _ in range(at_once)
            ]  # all in the listening queues before either process accepts
            for sock in sockets:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for sock in sockets:
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            owners = [owner_of(proc, port, sock.getsockname()[1]) for sock in sockets]
        counts = {pid: owners.count(pid) for pid in children(proc)}
        assert None not in owners, owners
        assert min(counts.values()) >= at_once // 5, f"connections per process: {counts}"
    finally:
        os.kill(proc.popen.pid, signal.SIGTERM)
        proc.popen.wait(30)


def test_a_second_server_on_a_port_in_use_refuses_to_start(tmp_path):
    # The children share the port through SO_REUSEPORT, which would let another server on the
    # same port start too and take half the connections; it must fail instead.
    first, port = start_web(tmp_path, processes=2)
    try:
        second = start(
            "web-again", ["manage.py", "web", "--port", str(port), "--processes", "2"], tmp_path
        )
        assert second.popen.wait(60) != 0
        assert "Address already in use" in second.log(), second.log()
        assert len(children(first)) == 2  # the first one serves on, untouched
        http_get(port).close()
    finally:
        os.kill(first.popen.pid, signal.SIGTERM)
        first.popen.wait(30)
