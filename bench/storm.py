"""Benchmark an alert storm end to end: from the first alert to the last page received.

A data centre goes dark: ALERTS distinct alerts arrive in batches of BATCH_SIZE (Alertmanager's
``POST /api/v2/alerts`` body, to Tocsin's Prometheus endpoint) from CONNECTIONS concurrent
senders, on a service whose escalation policy pages one person at once by e-mail and by signed
webhook (PAGE_BY=both|email|webhook). Everything is real: Tocsin's web server
(``manage.py web``, with ``--processes`` when it has it) and worker (``manage.py worker``) on a
scratch database (SQLite by default; set DATABASE_URL for PostgreSQL), an aiosmtpd SMTP server
and an HTTP receiver on 127.0.0.1 started by the bench, which note when each page arrives.

Measured: how long the storm took to ingest and whether every alert answered 2xx is stored; how
many incidents it opened (the service's storm grouping, if the build has it, bounds them); time
from the first alert to the first page and to the last; each incident's first page after its
opening (p50/p95/max); every page received exactly once (counted by ``X-Tocsin-Delivery``, the
delivery's dedup key, at the receivers). Waits up to WAIT_SECONDS for the pages, then GRACE_SECONDS
more for duplicates. A summary goes to stderr; stdout gets one JSON line.

    python bench/storm.py                       # 10,000 alerts
    ALERTS=500 python bench/storm.py            # a quick check
"""

from __future__ import annotations

import asyncio
import email
import json
import logging
import math
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALERTS = int(os.environ.get("ALERTS", "10000"))
BATCH_SIZE = int(os.environ.get("BATCH_SIZE", "100"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "8"))
PAGE_BY = os.environ.get("PAGE_BY", "both")
WAIT_SECONDS = float(os.environ.get("WAIT_SECONDS", "300"))
GRACE_SECONDS = float(os.environ.get("GRACE_SECONDS", "5"))
# WEB_PROCESSES: Tocsin's web processes (default: the server's own for the database).

from _scratch import (  # noqa: E402  (first: Django on a scratch database)
    SCRATCH,
    free_port,
    fresh_database,
    start_process,
    stop_process,
    wait_until_ok,
    web_command,
)

# isort: split
import httpx  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from incidents.escalation import services as policies  # noqa: E402
from incidents.models import (  # noqa: E402
    ContactMethod,
    Delivery,
    DeliveryStatus,
    Incident,
    NotificationRule,
    ServiceIncidentSettings,
)
from monitoring.models import Alert, Integration, IntegrationKind, Service  # noqa: E402
from tocsin.models import Membership, Role, Team  # noqa: E402

WEBHOOK_SECRET = "storm-bench-secret-0123456789abcdef"
# aiosmtpd logs every SMTP command at INFO; thousands of pages would bury the summary.
logging.getLogger("mail.log").setLevel(logging.WARNING)
INCIDENT_IN_KEY = re.compile(r"^incident:(\d+):")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of them at or below it."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Pages:
    """What the receivers got: (arrival time, channel, dedup key), from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, str]] = []

    def add(self, channel: str, key: str) -> None:
        with self.lock:
            self.arrivals.append((time.time(), channel, key))

    def snapshot(self) -> list[tuple[float, str, str]]:
        with self.lock:
            return list(self.arrivals)


class Inbox:
    """aiosmtpd handler: each accepted message is a page."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        self.pages.add("email", message.get("X-Tocsin-Delivery", ""))
        return "250 OK"


def start_webhook_receiver(pages: Pages) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            pages.add("webhook", self.headers.get("X-Tocsin-Delivery", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def prepare(webhook_url: str) -> tuple[Service, str, int]:
    """A team, a service with a Prometheus integration and a policy paging one person at once.
    Returns the service, the integration key and the number of pages each incident makes."""
    fresh_database()
    team = Team.objects.create(name=f"storm-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Storm API")
    integration = Integration(
        service=service, kind=IntegrationKind.PROMETHEUS, name="storm", rate_limit_per_minute=0
    )
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    user = get_user_model().objects.create_user(
        username=f"oncall-{team.pk}", email=f"oncall-{team.pk}@example.org"
    )
    Membership.objects.create(team=team, user=user, role=Role.RESPONDER)
    methods = []
    if PAGE_BY in ("both", "email"):
        methods.append(ContactMethod(user=user, kind="email", config={"to": [user.email]}))
    if PAGE_BY in ("both", "webhook"):
        methods.append(
            ContactMethod(
                user=user, kind="webhook", config={"url": webhook_url, "secret": WEBHOOK_SECRET}
            )
        )
    if not methods:
        raise SystemExit("PAGE_BY must be both, email or webhook")
    for method in methods:
        method.save()
        NotificationRule.objects.create(user=user, contact_method=method)
    policy = policies.create_policy(
        team, actor=None, name="Storm on call", steps=[{"delay_minutes": 0, "user_ids": [user.pk]}]
    )
    ServiceIncidentSettings.objects.update_or_create(
        service=service, defaults={"escalation_policy": policy}
    )
    return service, key, len(methods)


def storm_batch(batch: int, starts_at: str, ends_at: str) -> list[dict]:
    return [
        {
            "labels": {
                "alertname": "HostDown",
                "instance": f"host-{batch * BATCH_SIZE + i}:9100",
                "job": "node",
                "datacenter": "dc-1",
                "severity": "critical",
            },
            "annotations": {"summary": f"host-{batch * BATCH_SIZE + i} is unreachable"},
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up",
        }
        for i in range(min(BATCH_SIZE, ALERTS - batch * BATCH_SIZE))
    ]


async def send_storm(url: str) -> dict:
    """Every batch once, CONNECTIONS at a time; statuses and request latencies."""
    now = time.time()
    starts_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    ends_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3 * 3600))
    batches = (ALERTS + BATCH_SIZE - 1) // BATCH_SIZE
    queue: asyncio.Queue[int] = asyncio.Queue()
    for batch in range(batches):
        queue.put_nowait(batch)
    statuses: Counter[int] = Counter()
    answered_2xx = 0
    latencies: list[float] = []

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal answered_2xx
        while not queue.empty():
            batch = queue.get_nowait()
            body = json.dumps(storm_batch(batch, starts_at, ends_at)).encode()
            started = time.perf_counter()
            try:
                response = await http.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                statuses[response.status_code] += 1
                if 200 <= response.status_code < 300:
                    answered_2xx += len(storm_batch(batch, starts_at, ends_at))
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        first_alert_at = time.time()
        await asyncio.gather(*(sender(http) for _ in range(CONNECTIONS)))
        ingested_at = time.time()
    latencies.sort()
    return {
        "first_alert_at": first_alert_at,
        "ingest_s": round(ingested_at - first_alert_at, 2),
        "answered_2xx": answered_2xx,
        "statuses": {str(code): count for code, count in sorted(statuses.items(), key=str)},
        "request_p50_s": round(statistics.median(latencies), 3),
        "request_p99_s": round(percentile(latencies, 0.99), 3),
        "request_max_s": round(latencies[-1], 3),
        # Prometheus gives up on an Alertmanager after 10 s (its default timeout) and retries.
        "requests_over_10s": sum(1 for latency in latencies if latency > 10),
    }


def wait_for_pages(service: Service, pages: Pages, per_incident: int) -> tuple[int, int]:
    """Until every open incident's pages arrived and no delivery is left to send, or WAIT_SECONDS.
    Then GRACE_SECONDS more, so a page sent twice shows. Returns (incidents, pages expected)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        incidents = Incident.objects.filter(service=service).count()
        expected = incidents * per_incident
        received = len({key for _, _, key in pages.snapshot()})
        waiting = Delivery.objects.filter(
            incident__service=service,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING],
        ).exists()
        if (received >= expected and not waiting) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(GRACE_SECONDS)
    return Incident.objects.filter(service=service).count(), expected


def page_figures(service: Service, pages: Pages, first_alert_at: float, expected: int) -> dict:
    arrivals = pages.snapshot()
    keys = Counter(key for _, _, key in arrivals)
    first_page_by_incident: dict[int, float] = {}
    for at, _, key in arrivals:
        found = INCIDENT_IN_KEY.match(key)
        if found:
            incident = int(found.group(1))
            first_page_by_incident[incident] = min(first_page_by_incident.get(incident, at), at)
    opened = dict(
        Incident.objects.filter(pk__in=first_page_by_incident).values_list("pk", "created_at")
    )
    after_opening = sorted(
        at - opened[pk].timestamp() for pk, at in first_page_by_incident.items() if pk in opened
    )
    times = sorted(at for at, _, _ in arrivals)
    figures = {
        "pages_expected": expected,
        "pages_received": len(arrivals),
        "pages_distinct": len(keys),
        "pages_duplicated": sum(count - 1 for count in keys.values() if count > 1),
        "pages_without_key": keys.get("", 0),
        "pages_exactly_once": len(keys) == expected and len(arrivals) == expected,
        "pages_by_channel": dict(Counter(channel for _, channel, _ in arrivals)),
        "deliveries_failed": Delivery.objects.filter(
            incident__service=service, status=DeliveryStatus.FAILED
        ).count(),
        "incidents_paged": len(first_page_by_incident),
        "first_page_s": round(times[0] - first_alert_at, 2) if times else None,
        "last_page_s": round(times[-1] - first_alert_at, 2) if times else None,
    }
    if after_opening:
        figures["page_after_opening_p50_s"] = round(statistics.median(after_opening), 2)
        figures["page_after_opening_p95_s"] = round(percentile(after_opening, 0.95), 2)
        figures["page_after_opening_max_s"] = round(after_opening[-1], 2)
    return figures


def wait_for_task_cluster(timeout: float = 60) -> None:
    """Until the worker's django-q cluster says it is running (its log line)."""
    log = SCRATCH / "tocsin-worker.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and re.search(r"Q Cluster .* running", log.read_text(errors="replace")):
            return
        time.sleep(0.2)
    say("the worker's task cluster did not report running; storming anyway")


def main() -> None:
    say(f"scratch folder (database, server and worker logs): {SCRATCH}")
    pages = Pages()
    webhook_server, webhook_url = start_webhook_receiver(pages)
    smtp_port = free_port()
    smtp = Controller(Inbox(pages), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    service, key, per_incident = prepare(webhook_url)
    web_port = free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_port), "TOCSIN_BASE_URL": base_url}
    command, processes = web_command(web_port)
    started = time.monotonic()
    web = start_process("tocsin-web", command, **env)
    worker = start_process("tocsin-worker", [sys.executable, "manage.py", "worker"], **env)
    try:
        wait_until_ok(f"{base_url}/health/live", web, "tocsin-web")
        # The worker has reported in: pages can go out from the first alert on.
        wait_until_ok(f"{base_url}/health/ready", worker, "tocsin-worker")
        # A storm hits a running worker, not one still forking its task cluster (two cores
        # busy importing Django would be measured as page latency).
        wait_for_task_cluster()
        say(f"web server and worker ready after {time.monotonic() - started:.1f} s")
        say(f"storm: {ALERTS} alerts in batches of {BATCH_SIZE}, {CONNECTIONS} senders")
        url = f"{base_url}/ingest/prometheus/{key}/api/v2/alerts"
        sent = asyncio.run(send_storm(url))
        say(f"ingested in {sent['ingest_s']} s ({sent['statuses']}); waiting for the pages")
        incidents, expected = wait_for_pages(service, pages, per_incident)
    finally:
        stop_process(web)
        stop_process(worker)
        smtp.stop()
        webhook_server.shutdown()

    stored = Alert.objects.filter(service=service).count()
    incident_settings = ServiceIncidentSettings.objects.get(service=service)
    line = {
        "bench": "storm",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "web_processes": processes,
        "alerts": ALERTS,
        "batch_size": BATCH_SIZE,
        "connections": CONNECTIONS,
        "page_by": PAGE_BY,
        "ingest_s": sent["ingest_s"],
        "alerts_per_s": round(sent["answered_2xx"] / sent["ingest_s"], 1),
        "statuses": sent["statuses"],
        "request_p50_s": sent["request_p50_s"],
        "request_p99_s": sent["request_p99_s"],
        "request_max_s": sent["request_max_s"],
        "requests_over_10s": sent["requests_over_10s"],
        "alerts_answered_2xx": sent["answered_2xx"],
        "alerts_stored": stored,
        "all_stored": stored >= sent["answered_2xx"],
        "incidents": incidents,
        # Present once storm grouping lands (incidents.ServiceIncidentSettings.storm_threshold).
        "storm_threshold": getattr(incident_settings, "storm_threshold", None),
        **page_figures(service, pages, sent["first_alert_at"], expected),
    }
    say(
        f"{incidents} incidents; first page after {line['first_page_s']} s, last after "
        f"{line['last_page_s']} s; {line['pages_received']} pages for {expected} expected, "
        f"{line['pages_duplicated']} duplicated"
    )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
