"""The public status page with 500 components over 90 days: server time of the page and of its
``/api/v2/summary.json`` (for ``bench/slo.py``, which prints the figures with its own).

Seeds one team's page: COMPONENT_GROUPS groups of COMPONENTS components, half following a
probe check (90 day rows of rollups each, as the probes' rollups write them; some checks down
or degraded), half following a service (incidents over the 90 days, a few still open), a few
public incidents with updates and maintenance windows. Then requests the page and the JSON
REPEAT times in-process (the view, the ORM and the templates, without HTTP) and reports
p50/p95, the first request after the uptime cache is emptied (cold), and the number of
queries, which must not grow with the components.

    python bench/_status_page.py                       # standalone: SQLite, 500 components
    COMPONENTS=100 REPEAT=5 python bench/_status_page.py
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from typing import Any

GOAL_MS = 200


def _seed(components: int, groups: int, days: int) -> str:
    from django.db import transaction
    from django.utils import timezone

    from incidents.models import Incident
    from incidents.statuspages import publishing
    from incidents.statuspages.models import Component, ComponentGroup, StatusPage
    from monitoring.models import MaintenanceWindow, Service
    from probes.checks.models import Check
    from probes.checks.results import Rollup
    from tocsin.models import Team

    now = timezone.now()
    tag = uuid.uuid4().hex[:8]
    team = Team.objects.create(name=f"Status bench {tag}", slug=f"status-bench-{tag}")
    half = components // 2
    services = Service.objects.bulk_create(
        Service(
            team=team, name=f"Service {i}", slug=f"s-{i}", created_at=now - timedelta(days=days)
        )
        for i in range(max(half, 1))
    )
    checks = Check.objects.bulk_create(
        Check(
            service=services[i % len(services)],
            name=f"Check {i}",
            kind="http",
            config={"url": "http://127.0.0.1:9/"},
            state=("down" if i % 97 == 0 else "degraded" if i % 31 == 0 else "up"),
        )
        for i in range(components - half)
    )
    today = now.date()
    rows = []
    for n, check in enumerate(checks):
        for d in range(days):
            down = (n + d) % 13 == 0
            rows.append(
                Rollup(
                    probe=check,
                    day=today - timedelta(days=d),
                    up=1440 - (30 if down else 0),
                    degraded=3 if d % 5 == 0 else 0,
                    down=30 if down else 0,
                )
            )
    Rollup.objects.bulk_create(rows, batch_size=5000)
    incidents = []
    for n, service in enumerate(services):
        for k in range(3):  # three incidents per service over the window, one in 50 still open
            start = now - timedelta(days=(n * 7 + k * 29) % days, hours=k * 5)
            is_open = k == 0 and n % 50 == 0
            incidents.append(
                Incident(
                    team=team,
                    service=service,
                    title=f"Incident {n}-{k}",
                    priority=("P1", "P2", "P3")[k],
                    status="triggered" if is_open else "resolved",
                    created_at=start,
                    resolved_at=None if is_open else start + timedelta(minutes=20 + k * 15),
                    group_key=f"g{k}",
                )
            )
    Incident.objects.bulk_create(incidents, batch_size=2000)
    windows = [
        MaintenanceWindow(
            service=services[i],
            title=f"Window {i}",
            starts_at=now + timedelta(hours=i - 1),
            ends_at=now + timedelta(hours=i + 1),
        )
        for i in range(min(5, len(services)))
    ]
    MaintenanceWindow.objects.bulk_create(windows)
    page = StatusPage.objects.create(
        team=team, title="Bench status", slug=f"bench-{tag}", published=True
    )
    page.services.set(services)
    made_groups = ComponentGroup.objects.bulk_create(
        ComponentGroup(page=page, name=f"Group {g}", position=g) for g in range(groups)
    )
    per_group = max(1, components // max(groups, 1))
    rows = []
    for i in range(components):
        group = made_groups[min(i // per_group, len(made_groups) - 1)] if made_groups else None
        if i < half:
            rows.append(
                Component(
                    page=page, group=group, name=f"Component {i}", position=i, service=services[i]
                )
            )
        else:
            check = checks[i - half]
            rows.append(
                Component(
                    page=page,
                    group=group,
                    name=f"Component {i}",
                    position=i,
                    source_kind="probe",
                    target_id=check.pk,
                )
            )
    Component.objects.bulk_create(rows, batch_size=1000)
    some = list(page.components.order_by("id").values_list("pk", flat=True)[:3])
    with transaction.atomic():
        for n in range(3):
            update = publishing.post_update(
                page,
                actor=None,
                status="investigating",
                body=f"Looking into it ({n})",
                title=f"Public incident {n}",
                impact="minor",
                component_ids=some,
            )
            publishing.post_update(
                page,
                actor=None,
                status="identified",
                body="Found it",
                public_incident=update.public_incident,
            )
    return page.slug


def measure(
    components: int | None = None,
    groups: int | None = None,
    repeat: int | None = None,
    days: int = 90,
) -> dict[str, Any]:
    """Seed a page in the current (scratch) database and time it: figures in ms."""
    from _pages import measure as time_url
    from django.test import Client

    components = components or int(os.environ.get("COMPONENTS", "500"))
    groups = groups or int(os.environ.get("COMPONENT_GROUPS", "50"))
    repeat = repeat or int(os.environ.get("REPEAT", "20"))
    slug = _seed(components, groups, days)
    client = Client(HTTP_HOST="127.0.0.1")
    page = time_url(client, f"/status/{slug}/", repeat)
    summary = time_url(client, f"/status/{slug}/api/v2/summary.json", repeat)
    # Cold: a request after the uptime cache expired computes 90 days of every component
    # (templates and the rest already warm).
    from django.core.cache import cache

    cache.clear()
    started = time.perf_counter()
    assert client.get(f"/status/{slug}/").status_code == 200
    cold_ms = round((time.perf_counter() - started) * 1000, 1)
    # What a browser downloads: the page gzipped (every browser asks for it).
    gzipped = client.get(f"/status/{slug}/", HTTP_ACCEPT_ENCODING="gzip")
    assert gzipped["Content-Encoding"] == "gzip"
    return {
        "status_page_components": components,
        "status_page_groups": groups,
        "status_page_p50_ms": page["p50_ms"],
        "status_page_p95_ms": page["p95_ms"],
        "status_page_cpu_p50_ms": page["cpu_p50_ms"],
        "status_page_queries": page["queries"],
        "status_page_cold_ms": cold_ms,
        "status_page_kb": page["kb"],
        "status_page_gzip_kb": round(len(gzipped.content) / 1024, 1),
        "status_summary_p50_ms": summary["p50_ms"],
        "status_summary_p95_ms": summary["p95_ms"],
        "status_summary_queries": summary["queries"],
        "status_page_goal_ms": GOAL_MS,
    }


if __name__ == "__main__":
    import json

    import _scratch

    _scratch.fresh_database()
    print(json.dumps(measure()))
