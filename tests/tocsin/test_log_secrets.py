"""No secret in a log line: every credential-bearing URL, served by a real web server, leaves its
access log redacted; and the suite's own end-of-run scan (tests/log_secrets.py) catches a leak.

The scan itself runs once per session over every log the run's servers wrote; these tests check
that it sees what it must (a planted key, an unredacted path) and that a server as the tests start
it (``manage.py web``) writes nothing it would flag.
"""

from __future__ import annotations

import re

import httpx
import pytest

from incidents.models import Incident
from incidents.notifications import links
from incidents.oncall import ical
from incidents.statuspages import subscribers
from monitoring.models import Integration, IntegrationKind
from probes.heartbeats.models import Heartbeat
from probes.heartbeats.pings import PingKey
from tests import log_secrets
from tests.incidents.core_support import NOON, fire, make_service
from tests.incidents.status_support import make_page
from tests.live import start_web, wait_for
from tocsin.redaction import redact


def test_the_scan_finds_a_remembered_secret_and_an_unredacted_path(tmp_path):
    key = Integration.new_key()  # remembered as it is made
    assert key in log_secrets.SECRETS
    # Not named *.log: the end-of-run scan of this run's own logs would (rightly) fail on it.
    (tmp_path / "web.planted").write_text(
        f'127.0.0.1 - - [x] "POST /ingest/generic/[redacted]" 202 2\n'
        f"worker said {key} out loud\n"
        f'127.0.0.1 - - [x] "GET /incidents/act/.eJx:abc/ HTTP/1.1" 200 9\n'
        f'127.0.0.1 - - [x] "GET /api/v1/oncall/3/ HTTP/1.1" 200 9\n'
    )
    (tmp_path / "notes.txt").write_text(key)  # not a log

    found = log_secrets.findings(tmp_path, "*.planted")

    assert [line.split(":")[1] for line in found] == ["2", "3"]


def test_redaction_covers_pings_subscriptions_and_sign_in_codes():
    uuid = "7c3f3a52-1b6e-4c1e-9e39-2b1b34c3bb8d"
    assert redact(f"/ping/{uuid}") == "/ping/[redacted]"
    assert redact(f"/ping/{uuid}/start?rid=1") == "/ping/[redacted]?rid=1"
    assert redact("/ping/k3yk3yk3y/nightly-backup/fail") == "/ping/[redacted]"
    assert redact("/status/acme/confirm/t0k:en/") == "/status/acme/confirm/[redacted]/"
    assert redact("/status/acme/unsubscribe/t0k:en/") == "/status/acme/unsubscribe/[redacted]/"
    assert redact("/unsubscribe/t0k:en/") == "/unsubscribe/[redacted]/"  # a page's own domain
    assert (
        redact("/oidc/callback/?code=abc&state=xyz") == "/oidc/callback/?code=[redacted]&state=xyz"
    )
    assert redact("/alerts/?state=firing&service=3") == "/alerts/?state=firing&service=3"
    assert redact("/status/acme/history/") == "/status/acme/history/"
    assert redact("/probes/heartbeats/3/") == "/probes/heartbeats/3/"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # a real web process on the test database
def test_a_web_server_logs_no_secret_of_any_kind(crew, tmp_path):
    service = make_service(crew)
    integration = Integration(service=service, kind=IntegrationKind.GENERIC, name="generic")
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    heartbeat = Heartbeat.objects.create(service=service, name="Nightly", slug="nightly")
    ping_key = PingKey.objects.create(service=service, key=PingKey.new_key())
    fire(service, NOON)
    incident = Incident.objects.get()
    action = links.make_action_link(incident, "acknowledge", crew.responder)
    feed = ical.user_feed_token(crew.responder)
    page = make_page(crew.team)
    subscriber = subscribers.subscribe_email(page, "reader@example.org")
    confirm = subscribers.token_for(subscriber, "confirm")
    leave = subscribers.token_for(subscriber, "leave")
    for secret in (key, str(heartbeat.uuid), ping_key.key, feed, confirm):
        assert any(run in log_secrets.SECRETS for run in re.findall(r"[\w-]{16,}", secret))

    web = start_web(tmp_path)
    paths = [
        f"/ingest/generic/{key}/",
        f"/ingest/generic/{key}/?x=1",
        f"/ping/{heartbeat.uuid}",
        f"/ping/{heartbeat.uuid}/start",
        f"/ping/{ping_key.key}/nightly",
        f"/ping/{ping_key.key}/nightly/fail",
        action.split("://", 1)[1].split("/", 1)[1].join(["/", ""]),
        f"/oncall/{feed}.ics",
        f"/status/{page.slug}/confirm/{confirm}/",
        f"/status/{page.slug}/unsubscribe/{leave}/",
        f"/api/v1/services/?token={key}",
    ]
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            for path in paths:
                if path.startswith("/ingest/"):
                    answer = client.post(path, json={"title": "Disk full"})
                else:
                    answer = client.get(path)
                assert answer.status_code < 500, (path, answer.status_code)
        wait_for(
            lambda: web.proc.log().count("[redacted]") >= len(paths), 10, "the access log", web.proc
        )
    finally:
        web.proc.stop()

    assert log_secrets.findings(tmp_path) == []
    log = web.proc.log_path.read_text()
    for secret in (key, str(heartbeat.uuid), ping_key.key, feed, confirm, leave):
        assert secret not in log
    assert re.search(r'POST /ingest/generic/\[redacted\]"? 2\d\d ', log), log
    assert re.search(r'GET /ping/\[redacted\]"? 200 ', log), log
