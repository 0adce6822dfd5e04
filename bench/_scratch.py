"""What every benchmark starts with: Django on a scratch database of its own.

SQLite in a fresh temporary folder by default; set DATABASE_URL to measure PostgreSQL (use a
database you can throw away). Import this before anything from Django or Tocsin.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{SCRATCH / 'bench.sqlite3'}")
os.environ["TOCSIN_VAR_DIR"] = str(SCRATCH)
# With REDIS_URL set: keys (queue, cache, channel layer) of this run's own.
os.environ.setdefault("TOCSIN_REDIS_PREFIX", SCRATCH.name)
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tocsin.settings")


def _create_postgres_database(url: str) -> None:
    """``createdb`` for a PostgreSQL DATABASE_URL naming a database not there yet."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    db = dj_database_url.parse(url)
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"]}
    if db["PASSWORD"]:
        server["password"] = db["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        if not admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))


if os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
    _create_postgres_database(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()


def fresh_database() -> None:
    """Migrate the scratch database and empty it. SQLite's is new every run; a PostgreSQL
    database named by DATABASE_URL is the same from run to run, and what an earlier run left
    (its checks, alerts, events) would be measured too."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if connection.vendor != "sqlite":
        call_command("flush", interactive=False, verbosity=0)


# --- Real processes: what the benches start beside themselves --------------------------------

import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(name: str, command: list[str], **env: str) -> subprocess.Popen:
    """``command`` in its own process group (so stopping it stops its children), logging to
    ``SCRATCH/<name>.log``, with this process's environment (the scratch database) plus ``env``."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=(SCRATCH / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_ok(url: str, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    """Until GET ``url`` answers 200; fails with the log's tail if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    log = (SCRATCH / f"{name}.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{name} did not answer {url} (exit code {process.poll()}):\n{log}")


def manage_py_has_option(command: str, option: str) -> bool:
    """Whether ``manage.py <command>`` takes ``option`` (benches use newer flags when present)."""
    shown = subprocess.run(
        [sys.executable, "manage.py", command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return option in shown.stdout


def wait_until_idle(process: subprocess.Popen, timeout: float = 120, busy: float = 10.0) -> float:
    """Until ``process`` and its children use less than ``busy`` % of a core over half a second
    (requests a load generator dropped at its end are still being served). Returns the wait."""
    import psutil

    started = time.monotonic()
    try:
        parent = psutil.Process(process.pid)
        while time.monotonic() - started < timeout:
            family = [parent, *parent.children(recursive=True)]
            before = sum(sum(p.cpu_times()[:2]) for p in family if p.is_running())
            time.sleep(0.5)
            after = sum(sum(p.cpu_times()[:2]) for p in family if p.is_running())
            if (after - before) / 0.5 * 100 < busy:
                break
    except psutil.Error:
        pass
    return time.monotonic() - started


def web_command(port: int) -> tuple[list[str], int | None]:
    """``manage.py web`` on 127.0.0.1:``port``, and its number of processes: WEB_PROCESSES when
    set, else the server's own default for this database (None: a build without --processes)."""
    command = [sys.executable, "manage.py", "web", "--host", "127.0.0.1", "--port", str(port)]
    if not manage_py_has_option("web", "--processes"):
        return command, None
    if os.environ.get("WEB_PROCESSES"):
        processes = int(os.environ["WEB_PROCESSES"])
    else:
        from tocsin.management.web_server import default_processes

        processes = default_processes()
    return [*command, "--processes", str(processes)], processes
