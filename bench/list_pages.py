"""Benchmark the list pages a responder keeps open: alerts, incidents, reports, and their API.

Seeds a scratch database (SQLite by default; set DATABASE_URL for PostgreSQL) with INCIDENTS
incidents and ALERTS alerts spread over WEEKS weeks and SERVICES services of one team, then
requests each page REPEAT times in-process (Django's test client: the view, the ORM and the
templates, without HTTP) as a responder of that team. Reports the median and p95 time and the
number of queries per page, which must not grow with the data. Ends with one JSON line.

    python bench/list_pages.py            # or: make bench
    INCIDENTS=100000 ALERTS=300000 python bench/list_pages.py
"""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import timedelta

INCIDENTS = int(os.environ.get("INCIDENTS", "20000"))
ALERTS = int(os.environ.get("ALERTS", "50000"))
SERVICES = int(os.environ.get("SERVICES", "20"))
WEEKS = int(os.environ.get("WEEKS", "26"))
REPEAT = int(os.environ.get("REPEAT", "15"))

import _scratch  # noqa: E402, F401  (first: Django on a scratch database)

# isort: split
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents.models import Incident  # noqa: E402
from monitoring.models import Alert, Service  # noqa: E402
from tocsin.models import Membership, Role, Team  # noqa: E402

PAGES = {
    "alerts": "/alerts/",
    "alerts_firing": "/alerts/?status=firing",
    "incidents": "/incidents/",
    "incidents_open": "/incidents/?status=open",
    "reports_12_weeks": "/reports/",
    "api_incidents": "/api/v1/incidents/",
    "api_alerts": "/api/v1/alerts/",
}


def seed() -> Client:
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    services = Service.objects.bulk_create(
        Service(team=team, name=f"Service {i}", slug=f"service-{i}") for i in range(SERVICES)
    )
    now = timezone.now()
    span = timedelta(weeks=WEEKS).total_seconds()
    statuses = ("resolved",) * 8 + ("acknowledged", "triggered")
    incidents = []
    for i in range(INCIDENTS):
        created = now - timedelta(seconds=span * i / INCIDENTS)
        status = statuses[i % len(statuses)]
        incidents.append(
            Incident(
                team=team,
                service=services[i % SERVICES],
                title=f"Incident {i}: checkout latency above objective",
                status=status,
                priority=f"P{1 + i % 5}",
                created_at=created,
                acknowledged_at=created + timedelta(minutes=3 + i % 7)
                if status != "triggered"
                else None,
                resolved_at=created + timedelta(minutes=40 + i % 90)
                if status == "resolved"
                else None,
                # Open incidents need distinct groups (one open incident per group).
                group_key=f"bench-{i}",
            )
        )
    Incident.objects.bulk_create(incidents, batch_size=2000)
    alerts = []
    for i in range(ALERTS):
        started = now - timedelta(seconds=span * i / ALERTS)
        firing = i % 10 == 0
        alerts.append(
            Alert(
                team=team,
                service=services[i % SERVICES],
                source="bench",
                fingerprint=f"bench-{i}",
                status="firing" if firing else "resolved",
                severity=("critical", "error", "warning", "info")[i % 4],
                summary=f"HighLatency on web-{i % 50}",
                labels={"alertname": "HighLatency", "instance": f"web-{i % 50}"},
                content_hash=f"{i:064x}",
                starts_at=started,
                ends_at=None if firing else started + timedelta(minutes=15),
                first_seen_at=started,
                last_seen_at=started,
                last_change_at=started,
            )
        )
    Alert.objects.bulk_create(alerts, batch_size=2000)
    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}")
    Membership.objects.create(team=team, user=user, role=Role.RESPONDER)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def measure(client: Client, url: str) -> dict[str, float | int]:
    response = client.get(url)  # warm caches (templates, static manifest) once
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
        "queries": len(queries),
    }


def main() -> None:
    started = time.perf_counter()
    client = seed()
    seeded = time.perf_counter() - started
    figures = {name: measure(client, url) for name, url in PAGES.items()}
    for name, f in figures.items():
        p50, p95, queries = f["p50_ms"], f["p95_ms"], f["queries"]
        print(f"{name:18} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries")
    print(
        json.dumps(
            {
                "bench": "list_pages",
                "database": connection.vendor,
                "incidents": INCIDENTS,
                "alerts": ALERTS,
                "seed_seconds": round(seeded, 1),
                **{f"{name}_{k}": v for name, f in figures.items() for k, v in f.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
