"""docker-compose.yml and the Dockerfile describe a deployment that can actually start.

No Docker engine runs here, so these read the files and check what compose would need:
every service healthy-checked, every COPY source present, the commands real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_redis_web_and_worker_with_health_checks():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "bootstrap", "proxy"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "proxy"):
        assert "healthcheck" in services[name], name
    assert services["web"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["web"]["depends_on"]["bootstrap"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_configures_production_mode():
    env = compose()["services"]["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["REDIS_URL"].startswith("redis://")
    assert ":?" in env["SECRET_KEY"]  # compose refuses to start without one


def test_compose_commands_exist():
    services = compose()["services"]
    commands = get_commands()
    for name in ("bootstrap", "worker"):
        command = services[name]["command"]
        assert command[:2] == ["python", "manage.py"]
        assert command[2] in commands
    check = services["worker"]["healthcheck"]["test"]
    assert check[1:4] == ["python", "manage.py", "health"]


def test_dockerfile_copies_only_what_exists():
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY (.+) \S+$", line)
        if match:
            for source in match.group(1).split():
                assert (ROOT / source).exists(), source


def test_nginx_config_forwards_websockets():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in conf
    assert "server web:8000" in conf


def test_health_command_exits_non_zero_when_unhealthy(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "health", "--component", "migrations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "TOCSIN_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
            "SECRET_KEY": "k" * 50,
        },
    )
    assert result.returncode == 1
    assert '"migrations"' in result.stdout
    assert "not applied" in result.stdout


def test_health_command_refuses_unknown_components(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "health", "--component", "flux-capacitor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TOCSIN_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "unknown component(s): flux-capacitor" in result.stderr


def test_the_image_serves_through_manage_py_web_and_trusts_proxies_only_when_told():
    # `manage.py web` redacts credentials in the access log and passes daphne --proxy-headers
    # only with TOCSIN_BEHIND_PROXY=1 (tests/tocsin/test_web_server.py runs this CMD for real).
    [cmd] = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line[:4] == "CMD "]
    assert json.loads(cmd[4:]) == ["python", "manage.py", "web"]
    assert "web" in get_commands()
    assert "--proxy-headers" not in (ROOT / "Dockerfile").read_text()


def test_compose_trusts_forwarded_headers_because_nginx_sets_them():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    # Set, not appended (issue #14): a client's own X-Forwarded-For never reaches Tocsin.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "$proxy_add_x_forwarded_for" not in conf
    assert compose()["services"]["web"]["environment"]["TOCSIN_BEHIND_PROXY"] == "1"


def test_ci_checks_its_services_first_then_runs_both_suites():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script  # any failing step fails the job
    checks = script.index("CI needs PostgreSQL"), script.index("CI needs Redis")
    embedded = script.index("make test\n")
    assert max(checks) < embedded < script.index("make test-postgres")
