"""Real processes for end-to-end tests: a daphne web server and a django-q2 worker cluster.

Both run as separate OS processes on the test database (SQLite file or PostgreSQL), exactly as
``make run`` or docker-compose run them. Tests that use them need committed data, so they use
``transactional_db``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url_for_tests() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_tests(),
        SECRET_KEY=settings.SECRET_KEY,
        TOCSIN_REDIS_PREFIX=settings.REDIS_PREFIX,
        TOCSIN_VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, however it dies (Linux)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def database_client_ports(*pids: int) -> set[int]:
    """The local ports of the database connections (PostgreSQL's ``pg_stat_activity.client_port``)
    that these processes and their children hold.

    Only connections to the database server's port count: Linux hands out the same ephemeral
    port to connections with different destinations, so a web process's port to Redis may be
    the client port of another process's database session."""
    database_port = int(connection.settings_dict.get("PORT") or 5432)
    ports = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:  # already gone (a killed process)
            continue
        for process in tree:
            try:
                found = process.net_connections(kind="tcp")
            except psutil.Error:  # a child that just stopped
                continue
            ports.update(c.laddr.port for c in found if c.raddr and c.raddr.port == database_port)
    return ports


def start(name: str, args: list[str], log_dir: Path, **env: str) -> Proc:
    log_path = log_dir / f"{name}.log"
    popen = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=process_env(**env),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    return Proc(name, popen, log_path)


def wait_for(predicate: Any, timeout: float, what: str, proc: Proc | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited while waiting for {what}:\n{proc.log()}")
        time.sleep(0.05)
    detail = f"\n{proc.log()}" if proc is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


@dataclass
class WebServer:
    proc: Proc
    port: int
    sessions: dict[int, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def session_cookie(self, user: Any) -> str:
        """A real session for ``user`` in the shared database (what logging in produces)."""
        client = Client()
        client.force_login(user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    def ws_headers(self, user: Any | None) -> dict[str, str]:
        headers = {"Origin": self.url}
        if user is not None:
            headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={self.session_cookie(user)}"
        return headers


def web_command(port: int) -> list[str]:
    """daphne as Tocsin starts it (``manage.py web``: its access log redacts credentials), in
    one process; tests/log_secrets.py checks that no server of the run logged a secret."""
    command = ["manage.py", "web", "--skip-checks", "--processes", "1"]
    return [*command, "--host", "127.0.0.1", "--port", str(port)]


def start_web(log_dir: Path, **env: str) -> WebServer:
    port = free_port()
    proc = start(f"web-{port}", web_command(port), log_dir, **env)

    wait_until_serving(proc, port)
    return WebServer(proc, port)


def wait_until_serving(proc: Proc, port: int, timeout: float = 30) -> None:
    """Until the web server ``proc`` started answers /health/live on ``port``."""

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout, "the web server to answer", proc)


def queued_tasks() -> int:
    """Tasks waiting in the broker (Redis list or ORM queue) for any worker."""
    from django_q.brokers import get_broker

    return get_broker().queue_size()


def start_worker(log_dir: Path, name: str = "worker", **env: str) -> Proc:
    """A worker cluster that starts on an empty queue.

    On Redis the queue outlives each test (only the database is flushed), so the on-commit kicks
    of earlier tests would otherwise be waiting for it, some about rows that are gone.
    """
    from django_q.brokers import get_broker

    get_broker().purge_queue()
    return start(name, ["manage.py", "worker"], log_dir, **env)


@pytest.fixture(scope="session")
def live_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-logs")


@pytest.fixture(scope="session")
def web_servers(
    django_db_setup: None, django_db_blocker: Any, live_log_dir: Path
) -> Iterator[list[WebServer]]:
    """Two web processes on the same database, as in a production deployment."""
    servers = [start_web(live_log_dir), start_web(live_log_dir)]
    yield servers
    for server in servers:
        server.proc.stop()


@pytest.fixture(scope="session")
def web(web_servers: list[WebServer]) -> WebServer:
    return web_servers[0]


@pytest.fixture(scope="session")
def worker(django_db_setup: None, django_db_blocker: Any, live_log_dir: Path) -> Iterator[Proc]:
    """A worker for tests that enqueue tasks; it runs no schedules and no due-work loop (it
    outlives each test: it must not page, with its own settings, for tests that start their own
    workers), tests ask for what they need."""
    with django_db_blocker.unblock():  # the ORM broker's queue is a table
        proc = start_worker(live_log_dir, TOCSIN_SCHEDULER="0", TOCSIN_DUE_WORK="0")
    yield proc
    proc.stop(signal.SIGINT)


# --- Browser ------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's; `make browser` installs it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="module")
def browser(web: WebServer) -> Iterator[Any]:
    """Headless Chromium driven by Playwright, for one test module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (make browser installs it)")
    # Playwright's sync API keeps an asyncio loop running in this thread, which makes Django
    # refuse ORM calls from the test. Allow them in this process only while the browser runs;
    # the servers were started before (``web``) or are started with the guard back on.
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_api.sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous
