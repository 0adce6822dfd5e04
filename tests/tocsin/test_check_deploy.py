"""`manage.py check --deploy` with the production settings of the README reports nothing."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check_deploy(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "DJANGO_"))}
    production = dict(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://tocsin:unused@127.0.0.1:9/tocsin",  # never connected
        REDIS_URL="redis://127.0.0.1:9/0",
        ALLOWED_HOSTS="tocsin.example.org",
        TOCSIN_BASE_URL="https://tocsin.example.org",
        TOCSIN_BEHIND_PROXY="1",
        TOCSIN_VAR_DIR=str(tmp_path),
    )
    env.update(production, **overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = check_deploy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_plain_http_is_reported(tmp_path):
    """The check is not silenced: serving over plain HTTP is still called out."""
    result = check_deploy(tmp_path, TOCSIN_BASE_URL="http://tocsin.example.org")
    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout  # SESSION_COOKIE_SECURE
