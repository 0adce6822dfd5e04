"""The web server as Tocsin starts it (``manage.py run`` and the image's CMD), as real processes.

Its access log must not show credentials that sit in paths (ingest keys above all: docs/ingest.md
promises they are never logged), and it must take the client address from X-Forwarded-For only
when ``TOCSIN_BEHIND_PROXY`` says a proxy in front sets that header: otherwise anyone could
choose the address a failed sign-in is recorded with.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest

from monitoring.models import Integration, IntegrationKind, Service
from tests.live import Proc, free_port, start, wait_for, wait_until_serving
from tocsin.models import Event
from tocsin.redaction import RedactSecrets, redact

ROOT = Path(__file__).resolve().parents[2]
FORGED = "203.0.113.77"


def image_command() -> list[str]:
    """The Dockerfile's CMD (exec form), run with this interpreter."""
    [line] = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line[:4] == "CMD "]
    command = json.loads(line[4:])
    assert command[0] == "python", command
    return command[1:]


LAUNCHERS = {
    # `make run`: web and worker under one command (the worker is not needed here).
    "manage.py run": lambda port: (["manage.py", "run", "--no-worker", "--port", str(port)], {}),
    # The image: its CMD, with the address it would take from TOCSIN_HOST/TOCSIN_PORT.
    "image CMD": lambda port: (
        image_command(),
        {"TOCSIN_HOST": "127.0.0.1", "TOCSIN_PORT": str(port)},
    ),
}

# Every way Tocsin starts daphne writes an access log; the development server's too.
ACCESS_LOGGING = {
    **LAUNCHERS,
    "manage.py runserver": lambda port: (
        ["manage.py", "runserver", "--noreload", str(port)],
        {"DEBUG": "1"},
    ),
}


def serve(launcher: str, log_dir: Path, **env: str) -> tuple[Proc, str]:
    port = free_port()
    args, launcher_env = ACCESS_LOGGING[launcher](port)
    proc = start(f"web-{port}", args, log_dir, **launcher_env, **env)
    wait_until_serving(proc, port, timeout=60)
    return proc, f"http://127.0.0.1:{port}"


def keyed_integration(service: Service, kind: str) -> str:
    integration = Integration(service=service, kind=kind, name=kind)
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    return key


@pytest.mark.parametrize("launcher", ACCESS_LOGGING)
@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # real processes on the test database
def test_the_access_log_never_shows_an_ingest_key(launcher, crew, tmp_path):
    service = Service.objects.create(team=crew.team, name="Checkout API")
    alertmanager = keyed_integration(service, IntegrationKind.ALERTMANAGER)
    prometheus = keyed_integration(service, IntegrationKind.PROMETHEUS)
    unknown = "0123456789abcdef0123456789abcdef"
    alert = {"labels": {"alertname": "HighLatency"}, "annotations": {}}
    proc, url = serve(launcher, tmp_path)
    try:
        accepted = httpx.post(
            f"{url}/ingest/alertmanager/{alertmanager}/",
            json={"version": "4", "status": "firing", "alerts": [alert]},
            timeout=10,
        )
        assert accepted.is_success, accepted.text
        accepted = httpx.post(f"{url}/ingest/prometheus/{prometheus}/api/v2/alerts", json=[alert])
        assert accepted.is_success, accepted.text
        refused = httpx.post(f"{url}/ingest/alertmanagr/{unknown}/", json={}, timeout=10)
        assert refused.is_client_error
        wait_for(lambda: proc.log().count("/ingest/") >= 3, 10, "three access log lines", proc)
    finally:
        proc.stop()
    log = proc.log()

    for key in (alertmanager, prometheus, unknown):
        assert key not in log
    # The access log is there, with what an operator needs: method, kind, status.
    assert re.search(r'POST /ingest/alertmanager/\[redacted\]"? 2\d\d ', log), log
    assert re.search(r'POST /ingest/prometheus/\[redacted\]"? 2\d\d ', log), log
    assert re.search(r'POST /ingest/alertmanagr/\[redacted\]"? 4\d\d ', log), log


def failed_sign_in(url: str, **headers: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": "viewer", "password": "wrong"},
            headers={"Referer": f"{url}/accounts/login/", **headers},
        )
    assert response.status_code == 200, response.text  # the form again, with an error


@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # real processes on the test database
@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize(
    ("behind_proxy", "recorded"), [("0", "127.0.0.1"), ("1", FORGED)], ids=["direct", "proxied"]
)
def test_x_forwarded_for_is_trusted_only_behind_a_proxy(
    launcher, behind_proxy, recorded, crew, tmp_path
):
    proc, url = serve(launcher, tmp_path, TOCSIN_BEHIND_PROXY=behind_proxy)
    try:
        failed_sign_in(url, **{"X-Forwarded-For": FORGED})
    finally:
        proc.stop()

    [event] = Event.objects.filter(kind="user.login_failed")
    assert event.payload["ip"] == recorded


def test_redaction_covers_every_path_that_carries_a_credential():
    assert redact("/ingest/grafana/k3y/") == "/ingest/grafana/[redacted]"
    assert redact("/ingest/grafana/k3y?x=1") == "/ingest/grafana/[redacted]?x=1"
    assert redact("/incidents/act/s1gned.t0ken/") == "/incidents/act/[redacted]/"
    assert redact("/schedules/7/ical/t0ken.ics") == "/schedules/7/ical/[redacted]"
    assert redact("/oncall/t0ken.ics") == "/oncall/[redacted]"
    assert redact("/health?token=t0k&x=1") == "/health?token=[redacted]&x=1"
    assert redact("/api/v1/alerts/?service=3&page=2") == "/api/v1/alerts/?service=3&page=2"
    assert redact("/ingest/") == "/ingest/"


def test_django_log_records_naming_a_secret_path_are_redacted():
    record = logging.LogRecord(
        "django.security.csrf",
        logging.WARNING,
        __file__,
        1,
        "Forbidden (%s): %s",
        ("CSRF cookie not set.", "/ingest/grafana/k3y/"),
        None,
    )

    RedactSecrets().filter(record)

    assert record.getMessage() == "Forbidden (CSRF cookie not set.): /ingest/grafana/[redacted]"


def test_a_path_inside_another_path_is_left_alone():
    assert redact("GET /api/v1/oncall/3/ 200") == "GET /api/v1/oncall/3/ 200"
    assert redact('"POST /ingest/generic/k3y/" 200') == '"POST /ingest/generic/[redacted]" 200'


def test_content_types_are_parsed_once_and_answered_the_same():
    """Twisted parses every POST's Content-Type with the email package; the server remembers
    the answers (a handful of values repeat), which must be exactly Twisted's own."""
    from twisted.web import http as twisted_http

    from tocsin.management.web_server import _remember_content_types

    original = getattr(
        twisted_http._parseContentType, "__wrapped__", twisted_http._parseContentType
    )
    _remember_content_types()
    _remember_content_types()  # a second server start does not wrap it twice
    remembered = twisted_http._parseContentType
    assert remembered.__wrapped__ is original
    for value in (
        b"application/json",
        b"Application/JSON; charset=UTF-8",
        b"multipart/form-data; boundary=----x",
        b"application/x-www-form-urlencoded",
        b"not a content type",
    ):
        assert remembered(value) == original(value)
    hits = remembered.cache_info().hits
    remembered(b"application/json")
    assert remembered.cache_info().hits == hits + 1
