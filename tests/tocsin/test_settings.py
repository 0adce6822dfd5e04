"""Settings come from the environment and fail loudly on bad values."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str], var_dir: Path) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}
    }
    clean.update(TOCSIN_VAR_DIR=str(var_dir), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TOCSIN_BASE_URL": "https://tocsin.example.org",
        "ALLOWED_HOSTS": "tocsin.example.org",
    }


def test_check_deploy_is_clean_with_production_variables(tmp_path, production_env):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env, var_dir=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_typo_in_a_boolean_stops_start_up(tmp_path):
    result = manage("check", env={"DEBUG": "ture"}, var_dir=tmp_path)
    assert result.returncode != 0
    assert "DEBUG='ture' is not a boolean" in result.stderr


def test_a_bad_number_stops_start_up(tmp_path):
    result = manage("check", env={"TOCSIN_WORKERS": "many"}, var_dir=tmp_path)
    assert result.returncode != 0
    assert "TOCSIN_WORKERS='many' is not a whole number" in result.stderr


def test_a_bad_base_url_stops_start_up(tmp_path):
    result = manage("check", env={"TOCSIN_BASE_URL": "tocsin.example.org"}, var_dir=tmp_path)
    assert result.returncode != 0
    assert "TOCSIN_BASE_URL" in result.stderr


def test_production_without_a_secret_key_refuses_to_start(tmp_path, production_env):
    del production_env["SECRET_KEY"]
    result = manage("check", env=production_env, var_dir=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_embedded_default_generates_a_secret_key_once_and_keeps_it(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage("shell", "--no-imports", "-c", code, env={}, var_dir=tmp_path)
    second = manage("shell", "--no-imports", "-c", code, env={}, var_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first.stdout.strip() == second.stdout.strip()
    assert len(first.stdout.strip()) >= 50
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_redis_url_switches_cache_channel_layer_and_broker(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.CACHES['default']['BACKEND']);"
        "print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.Q_CLUSTER.get('redis'), s.Q_CLUSTER.get('orm'))"
    )
    embedded = manage("shell", "--no-imports", "-c", code, env={}, var_dir=tmp_path).stdout.split(
        "\n"
    )
    with_redis = manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env={"REDIS_URL": "redis://127.0.0.1:6379/3"},
        var_dir=tmp_path,
    ).stdout.split("\n")
    assert embedded[:3] == [
        "django.core.cache.backends.locmem.LocMemCache",
        "channels.layers.InMemoryChannelLayer",
        "None default",
    ]
    assert with_redis[:3] == [
        "django.core.cache.backends.redis.RedisCache",
        "channels_redis.core.RedisChannelLayer",
        "redis://127.0.0.1:6379/3 None",
    ]
