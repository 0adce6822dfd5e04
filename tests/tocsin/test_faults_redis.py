"""Faults don't show as errors or delays: Redis killed while alerts stream in.

Real processes: a daphne web server and a worker on the test database, a private redis-server
on a free port (never the shared one) that the test kills with SIGKILL and starts again, and a
real SMTP server (aiosmtpd) on 127.0.0.1 that counts what arrives, by each page's idempotency
key. Alerts go in one per request through the Alertmanager endpoint, each its own incident,
each incident paged at once by e-mail.

The helpers here (``AlertStream``, ``TimedInbox``, ``paging``…) are shared with
``test_faults_pg``.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from aiosmtpd.controller import Controller

from incidents.escalation import engine as escalation
from incidents.escalation import services as policies
from incidents.models import ContactMethod, IncidentAlert, NotificationRule, ServiceIncidentSettings
from monitoring.models import Alert, IntegrationKind, Service
from tests.conftest import make_user
from tests.live import Proc, free_port, start_web, start_worker, wait_for
from tests.monitoring.conftest import make_integration
from tocsin.models import Membership, Role, WorkerHeartbeat

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

# Pages after Redis returns (the bound), and the most a page may be late under faults.
RESUME_BOUND = 5.0


# --- A real SMTP server that notes when each page arrived ---------------------------------------


class TimedInbox:
    """aiosmtpd handler: (arrival time, X-Tocsin-Delivery) for every message accepted."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        # A slow server (seconds per reply) keeps sends in flight, where crashes hurt most.
        self.slowness = 0.0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        await asyncio.sleep(self.slowness)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            self.arrivals.append((time.time(), message["X-Tocsin-Delivery"] or ""))
        await asyncio.sleep(self.slowness)  # accepted, but the answer takes a while
        return "250 OK"

    def by_key(self) -> dict[str, list[float]]:
        with self.lock:
            seen: dict[str, list[float]] = {}
            for at, key in self.arrivals:
                seen.setdefault(key, []).append(at)
            return seen


@pytest.fixture
def inbox() -> Iterator[tuple[TimedInbox, dict[str, str]]]:
    handler = TimedInbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port)}
    finally:
        controller.stop()


# --- One e-mail page per alert ------------------------------------------------------------------


@dataclass
class Paging:
    service: Service
    key: str
    oncall: Any
    rule: NotificationRule

    def page_key(self, incident_id: int) -> str:
        step = escalation.dedup_key(incident_id, 0, 0, self.oncall.pk)
        return f"{step}:rule-{self.rule.pk}"


@pytest.fixture
def paging(crew) -> Paging:
    service = Service.objects.create(team=crew.team, name="Checkout API")
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    oncall = make_user("oncall")
    Membership.objects.create(team=crew.team, user=oncall, role=Role.RESPONDER)
    mail = ContactMethod.objects.create(user=oncall, kind="email", config={"to": [oncall.email]})
    rule = NotificationRule.objects.create(user=oncall, contact_method=mail)
    policy = policies.create_policy(
        crew.team,
        actor=crew.manager,
        name="Checkout on call",
        steps=[{"delay_minutes": 0, "user_ids": [oncall.pk]}],
    )
    # One incident per alert (no storm bound here): each alert must show as its own page.
    ServiceIncidentSettings.objects.create(
        service=service, escalation_policy=policy, storm_threshold=0
    )
    return Paging(service, door.key, oncall, rule)


# --- Alerts streaming in, one per request -------------------------------------------------------


@dataclass
class Sent:
    name: str
    status: int  # 0: no answer (connection refused, timeout)
    answered_at: float


@dataclass
class AlertStream:
    """Posts a new alert every ``interval`` seconds from a thread until stopped."""

    url: str
    interval: float = 0.1
    sent: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            i = 0
            while not self._stop.is_set():
                name = f"Fault{i:05d}"
                body = {
                    "receiver": "tocsin",
                    "status": "firing",
                    "version": "4",
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": {"alertname": name, "severity": "critical"},
                            "annotations": {"summary": f"{name} is down"},
                            "startsAt": "2026-01-01T00:00:00Z",
                        }
                    ],
                }
                try:
                    status = client.post(self.url, json=body).status_code
                except httpx.HTTPError:
                    status = 0
                self.sent.append(Sent(name, status, time.time()))
                i += 1
                self._stop.wait(self.interval)

    def start(self) -> AlertStream:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


def wait_until_working(*procs: Proc) -> None:
    """Until each worker's loop runs (it writes its heartbeat): start-up is not what we time."""
    for proc in procs:
        beats = WorkerHeartbeat.objects.filter(worker__endswith=f":{proc.popen.pid}")
        wait_for(
            beats.exists,
            60,
            f"{proc.name}'s heartbeat",
            proc,
        )


def stored_pages(paging: Paging) -> dict[str, str]:
    """alertname → the page key its incident was paged with, for every stored alert."""
    names = dict(
        Alert.objects.filter(service=paging.service).values_list("pk", "labels__alertname")
    )
    links = IncidentAlert.objects.filter(alert_id__in=names).values_list("alert_id", "incident_id")
    return {names[alert]: paging.page_key(incident) for alert, incident in links}


def check_stream(
    stream: AlertStream, paging: Paging, inbox: TimedInbox, proc: Proc
) -> tuple[dict[str, str], dict[str, list[float]]]:
    """Every 2xx alert stored and paged exactly once; no error answer for a stored alert."""
    accepted = {s.name for s in stream.sent if 200 <= s.status < 300}
    assert accepted, "no alert was accepted at all"
    wait_for(lambda: accepted <= set(stored_pages(paging)), 30, "every accepted alert's incident")
    pages = stored_pages(paging)
    refused_but_stored = [s for s in stream.sent if s.status >= 300 and s.name in pages]
    assert refused_but_stored == [], "an error answer for an alert that was stored"
    wait_for(
        lambda: set(pages.values()) <= set(inbox.by_key()),
        60,
        "a page for every stored alert",
        proc,
    )
    arrived = inbox.by_key()
    twice = {key: times for key, times in arrived.items() if len(times) > 1}
    assert twice == {}, "paged more than once"
    assert set(arrived) == set(pages.values())
    return pages, arrived


# --- A Redis of our own -------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.proc = subprocess.Popen(
            ["redis-server", *args, "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, 10, "the private redis-server")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


def test_redis_killed_mid_stream_loses_nothing_and_pages_resume(
    paging, inbox, private_redis, live_log_dir
):
    smtp, smtp_env = inbox
    env = {"REDIS_URL": private_redis.url, **smtp_env}
    web = start_web(live_log_dir, **env)
    worker = start_worker(live_log_dir, name="faults-redis-worker", **env)
    try:
        wait_until_working(worker)
        stream = AlertStream(f"{web.url}/ingest/alertmanager/{paging.key}/").start()
        time.sleep(4)
        private_redis.kill()
        killed_at = time.time()
        time.sleep(8)
        private_redis.start()
        back_at = time.time()
        time.sleep(6)
        stream.stop()

        pages, arrived = check_stream(stream, paging, smtp, worker)
        # Each page went out promptly: within the bound of its alert's answer, or of Redis's
        # return for alerts taken in while it was down (the rows waited; nothing was lost).
        late = {}
        for sent in stream.sent:
            if sent.name not in pages:
                continue
            since = sent.answered_at
            if killed_at <= since <= back_at:
                since = back_at
            delay = arrived[pages[sent.name]][0] - since
            if delay > RESUME_BOUND:
                late[sent.name] = round(delay, 1)
        assert late == {}, f"pages later than {RESUME_BOUND}s"
        after = [s for s in stream.sent if s.answered_at > back_at + 1]
        assert after and all(200 <= s.status < 300 for s in after), "ingest did not recover"
    finally:
        worker.stop(signal.SIGINT, timeout=20)
        web.proc.stop()
