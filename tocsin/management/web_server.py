"""The one way Tocsin starts daphne (``manage.py web``, which ``manage.py run`` and the image use).

Two things daphne's own command line gets wrong for us:

- Its access log writes each request's full path, and some paths are credentials: ingest keys
  (``/ingest/<kind>/<key>/``), one-click incident links, iCal feed tokens. Whoever reads the log
  could post alerts or act on incidents. Our access log writes them redacted
  (:mod:`tocsin.redaction`).
- ``--proxy-headers`` makes daphne take the client address from ``X-Forwarded-For``, which any
  client can send. We pass it only when ``TOCSIN_BEHIND_PROXY`` says a proxy in front sets it;
  otherwise a failed sign-in would be recorded with whatever address the caller made up.

And one thing it cannot do at all: use more than one core. daphne runs in one process, and every
synchronous view in it shares one interpreter lock. ``serve`` with ``processes > 1`` binds the
port once (without listening), then starts that many daphne children that each listen on the
same port (``SO_REUSEPORT``; daphne's ``fd:`` endpoint), and the kernel spreads new connections
evenly over them. The parent only supervises: SIGTERM or SIGINT stops
every child (each finishes its open requests within daphne's shutdown), a child that dies is
logged and replaced, and children that keep dying right after start (a broken configuration)
stop the whole server with a non-zero exit, so a supervisor above us notices.

WebSockets work in every child: each web process reads the event log itself, told of new events
by Redis pub/sub or polling (:mod:`tocsin.live`), so a browser gets the same events whichever
child took its socket.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.server import Server
from django.conf import settings
from twisted.web import http as twisted_http

from tocsin.redaction import redact


def _remember_content_types() -> None:
    """Twisted parses every POST's Content-Type with the ``email`` package (a header registry,
    a policy, a parameter parser) to learn whether to decode a form body: 9 % of a web process's
    event loop under alerts posted one per request. Senders repeat a handful of values, so the
    same function answers from memory for the last 256 it saw: same answers, no parsing."""
    if not hasattr(twisted_http._parseContentType, "cache_info"):
        twisted_http._parseContentType = functools.lru_cache(maxsize=256)(
            twisted_http._parseContentType
        )


class RedactingAccessLog(AccessLogGenerator):
    """daphne's NCSA-style access log, with credentials in paths replaced by ``[redacted]``."""

    def write_entry(self, host: Any, date: Any, request: str, *args: Any, **kwargs: Any) -> None:
        method, _, path = request.partition(" ")
        super().write_entry(host, date, f"{method} {redact(path)}", *args, **kwargs)
        self.stream.flush()  # one line per request, even when stdout is a pipe


class _Server(Server):
    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        if isinstance(action_logger, AccessLogGenerator):
            action_logger = RedactingAccessLog(action_logger.stream)
        super().__init__(*args, action_logger=action_logger, **kwargs)


class _CommandLine(CommandLineInterface):
    server_class = _Server

    def run(self, args: list[str]) -> None:
        _remember_content_types()
        super().run(args)


log = logging.getLogger("tocsin.web")

# Default number of web processes: one per core this process may run on, at most this many
# (past that the database, not the interpreter, is what a deployment runs out of).
MAX_DEFAULT_PROCESSES = 8
# A child that exits sooner than this after its start did not fail under load but at start-up.
STARTUP_GRACE = 10.0
# Start-up failures in a row after which the server gives up instead of restarting forever.
MAX_STARTUP_FAILURES = 3
# How long children get to finish open requests after SIGTERM before they are killed (seconds).
STOP_TIMEOUT = 15.0
LISTEN_BACKLOG = 2048
MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


def default_processes() -> int:
    """One per core on PostgreSQL; one on SQLite (the embedded default).

    SQLite has one writer at a time, and a writer waiting for the lock polls on SQLite's busy
    handler (sleeps of up to 100 ms) instead of queueing fairly; with two processes writing,
    wrk's re-send run (16 connections, 2 cores) got a lower p50 (83-121 ms vs 123-220 ms) but
    twice the p99 (1.3-1.5 s vs 0.7-0.9 s) and requests over 2 s. ``TOCSIN_WEB_PROCESSES``
    overrides it either way.
    """
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_PROCESSES))


def daphne_arguments(
    host: str, port: int, *, behind_proxy: bool, fd: int | None = None
) -> list[str]:
    # With fd, daphne adopts the child's own listening socket, as IPv4 (see bind).
    arguments = ["--bind", host, "--port", str(port)] if fd is None else ["--fd", str(fd)]
    if behind_proxy:
        arguments.append("--proxy-headers")
    return [*arguments, "tocsin.asgi:application"]


def serve(host: str, port: int, *, behind_proxy: bool, processes: int = 1) -> int:
    """Serve until stopped (SIGINT/SIGTERM): daphne in this process, or ``processes`` children.

    Returns the exit status for the command.
    """
    if processes <= 1:
        _CommandLine().run(daphne_arguments(host, port, behind_proxy=behind_proxy))
        return 0
    return Supervisor(bind(host, port), processes).run()


def serve_inherited_socket(fd: int, *, behind_proxy: bool) -> None:
    """A child of :class:`Supervisor`: daphne on a listening socket of its own, on the address
    of the socket the parent bound (see :func:`bind`)."""
    reserved = socket.socket(fileno=fd)
    address = reserved.getsockname()[:2]
    reserved.detach()  # the parent's; not ours to close
    own = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(address)
    own.listen(LISTEN_BACKLOG)
    _CommandLine().run(daphne_arguments("", 0, behind_proxy=behind_proxy, fd=own.fileno()))


def bind(host: str, port: int) -> socket.socket:
    if ":" in host:
        # daphne's fd: endpoint can only adopt IPv4 sockets.
        raise ValueError(
            f"several web processes need an IPv4 address to listen on, not {host!r}; "
            "use e.g. 0.0.0.0, or --processes 1"
        )
    # The parent binds without listening: it holds the port (a taken port fails here, at once)
    # and hands its address to the children. Each child listens on a socket of its own on the
    # same port (SO_REUSEPORT), and the kernel spreads new connections over them. One socket
    # shared by every child let the first child awake take every connection waiting (Twisted
    # accepts up to a hundred per wake-up): senders open their keep-alive connections together
    # (Prometheus, a load generator's 16), and in most runs one of two processes got all 16
    # and served them alone while the other idled.
    #
    # SO_REUSEPORT would also let a second server on the same port start and quietly take half
    # the connections (a forgotten one, or a deploy that did not stop the old). So the port is
    # first bound without it: that fails while anyone else listens there.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]  # the port chosen, when asked for any (0)
    reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, port))
    reserved.set_inheritable(True)
    return reserved


def _die_with_parent() -> None:
    """In a child: SIGTERM when the supervisor dies, however it dies (Linux), so no child is
    left holding the socket."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    popen: subprocess.Popen
    started: float


class Supervisor:
    """Starts ``processes`` daphne children on one port and keeps them running."""

    def __init__(self, reserved: socket.socket, processes: int) -> None:
        self.reserved = reserved  # bound, not listening: each child listens on its own socket
        self.processes = processes
        self.children: list[Child] = []
        self.stopping = False
        self.startup_failures = 0

    def child_command(self) -> list[str]:
        fd = str(self.reserved.fileno())
        # --skip-checks: the parent ran Django's system checks already; each child starts sooner.
        return [
            sys.executable,
            str(MANAGE_PY),
            "web",
            "--skip-checks",
            "--processes",
            "1",
            "--fd",
            fd,
        ]

    def start_child(self) -> Child:
        popen = subprocess.Popen(
            self.child_command(),
            pass_fds=(self.reserved.fileno(),),
            preexec_fn=_die_with_parent,
        )
        return Child(popen, time.monotonic())

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        host, port = self.reserved.getsockname()[:2]
        log.info("serving on %s:%s with %d web processes", host, port, self.processes)
        self.children = [self.start_child() for _ in range(self.processes)]
        status = 0
        while not self.stopping:
            time.sleep(0.2)
            if not self.replace_dead_children():
                status = 1
                break
        self.stop_children()
        self.reserved.close()
        return status

    def replace_dead_children(self) -> bool:
        """Start a new child for each one that exited; False when they keep failing at start."""
        for index, child in enumerate(self.children):
            code = child.popen.poll()
            if code is None or self.stopping:
                continue
            lived = time.monotonic() - child.started
            log.error(
                "web process %d exited with code %s after %.0f s; starting another",
                child.popen.pid,
                code,
                lived,
            )
            self.startup_failures = self.startup_failures + 1 if lived < STARTUP_GRACE else 0
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                log.error("web processes keep exiting at start-up; stopping")
                return False
            self.children[index] = self.start_child()
        return True

    def stop_children(self) -> None:
        for child in self.children:
            if child.popen.poll() is None:
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
