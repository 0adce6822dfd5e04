"""`make run`'s two steps, as real processes: bootstrap, then web + worker under one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}
    }
    env.update(TOCSIN_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", **extra)
    return env


def bootstrap(var_dir: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "bootstrap"],
        cwd=ROOT,
        env=embedded_env(var_dir, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bootstrap_prints_a_generated_admin_password_once(tmp_path):
    first = bootstrap(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "generated password" in first.stdout
    second = bootstrap(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "generated password" not in second.stdout


def test_bootstrap_refuses_a_bad_admin_email(tmp_path):
    result = bootstrap(tmp_path, TOCSIN_ADMIN_EMAIL="not-an-email")
    assert result.returncode != 0
    assert "not an email address" in result.stderr


def test_run_serves_login_and_ready_then_stops_cleanly_on_ctrl_c(tmp_path):
    setup = bootstrap(
        tmp_path, TOCSIN_ADMIN_EMAIL="ops@example.org", TOCSIN_ADMIN_PASSWORD="s3cret-pass-123"
    )
    assert setup.returncode == 0, setup.stderr
    port = free_port()
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run", "--port", str(port)],
        cwd=ROOT,
        env=embedded_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, "/health/ready")
        login = httpx.get(f"{url}/accounts/login/", timeout=5)
        assert login.status_code == 200
        assert "csrfmiddlewaretoken" in login.text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2  # the web server and the worker cluster (with its own children)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0, (tmp_path / "run.log").read_text()
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert "stopped" in (tmp_path / "run.log").read_text()


def test_run_stops_everything_and_fails_when_a_child_dies(tmp_path):
    assert bootstrap(tmp_path).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run", "--port", str(port)],
        cwd=ROOT,
        env=embedded_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: len(psutil.Process(proc.pid).children()) >= 2, 30, "children")
        children = psutil.Process(proc.pid).children(recursive=True)
        web = next(c for c in psutil.Process(proc.pid).children() if "web" in c.cmdline())
        web.kill()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
