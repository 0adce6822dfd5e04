"""Benchmark SLOs at scale: 100 SLOs over 90 days of one-minute probe data, computed.

The issue's goal: 100 SLOs over 90 days of one-minute data computed in under a second in
total. Seeds a scratch database (SQLite by default; DATABASE_URL for PostgreSQL) with one
check per SLO and DAYS + 1 days of its rollups (day columns, 24 packed hours and 1,440 packed
minutes of one run a minute, a few down each day), and SLOS SLOs over them: rolling 90-day and
30-day windows, a calendar quarter in Europe/Berlin, probe availability and latency, budgeted
by occurrences and by one-minute time slices. Then times, for every SLO, what the evaluation
task computes each minute (attainment, budget, 1-hour burn rate and exhaustion; the eight
burn-rate windows of the alerts):

- ``cold``: the first time, with no day remembered (time slices count 90 days of minutes,
  read at once and counted by numpy);
- ``warm``: every later minute (finished days remembered: ``SLODay``), REPEAT times;
- ``evaluate_all``: the periodic task itself (also sparklines, the rows updated, alerts synced).

    python bench/slo.py                                  # SQLite, 100 SLOs, 90 days
    DATABASE_URL=postgres://…/scratch python bench/slo.py
    SLOS=10 DAYS=7 python bench/slo.py                   # a quick check

Ends with one JSON line; when ``bench/_status_page.py`` is there (the status pages' bench),
its ``measure()`` figures are merged into that line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import time
from datetime import timedelta
from typing import Any

SLOS = int(os.environ.get("SLOS", "100"))
DAYS = int(os.environ.get("DAYS", "90"))
REPEAT = int(os.environ.get("REPEAT", "5"))
GOAL_S = 1.0

import _scratch  # noqa: E402  (first: Django on a scratch database)

# isort: split
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from monitoring.models import Service, ServiceLevelObjective, SLODay  # noqa: E402
from monitoring.slos import alerts  # noqa: E402
from monitoring.slos.budget import figures  # noqa: E402
from monitoring.slos.compute import Counter, reading_together  # noqa: E402
from monitoring.slos.evaluation import evaluate_all  # noqa: E402
from probes.checks.models import Check  # noqa: E402
from probes.checks.points import Point, encode, merge  # noqa: E402
from probes.checks.results import Rollup, histogram_of, pack  # noqa: E402
from tocsin.models import Team  # noqa: E402

# (window, indicator, budgeting) of one SLO in every ten.
MIX = [
    ("rolling_90d", "probe_availability", "occurrences"),
    ("rolling_90d", "probe_availability", "occurrences"),
    ("rolling_90d", "probe_availability", "occurrences"),
    ("rolling_90d", "probe_availability", "timeslices"),
    ("rolling_90d", "probe_latency", "occurrences"),
    ("rolling_30d", "probe_availability", "occurrences"),
    ("rolling_30d", "probe_latency", "occurrences"),
    ("rolling_30d", "probe_availability", "timeslices"),
    ("calendar_quarter", "probe_availability", "occurrences"),
    ("calendar_quarter", "probe_availability", "timeslices"),
]


def day_row(variant: int) -> dict[str, Any]:
    """A day of one run a minute: five minutes down (where depends on the variant), latencies
    that vary; its minutes, hours and columns as the roll-up stores them."""
    down = {(variant * 97 + n * 211) % 1440 for n in range(5)}
    minutes = []
    for m in range(1440):
        latency = 20 + (m * 7 + variant) % 200
        failed = m in down
        minutes.append(
            Point(up=int(not failed), down=int(failed), p50=latency, p95=latency, p99=latency)
        )
    hours = []
    for h in range(24):
        chunk = minutes[h * 60 : (h + 1) * 60]
        merged = merge(chunk) or Point()
        merged.histogram = histogram_of([p.p50 for p in chunk])
        hours.append(merged)
    day = merge(hours) or Point()
    return {
        "up": day.up,
        "degraded": 0,
        "down": day.down,
        "unknown": 0,
        "p50": 120,
        "p95": 380,
        "p99": 410,
        "histogram": pack(day.histogram),
        "hours": encode(hours, True),
        "minutes": encode(minutes, False),
    }


def seed(now: Any) -> list[ServiceLevelObjective]:
    _scratch.fresh_database()
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Checkout", slug=f"checkout-{time.time_ns()}")
    variants = [day_row(v) for v in range(7)]
    today = now.date()
    with transaction.atomic():
        checks = Check.objects.bulk_create(
            Check(
                service=service,
                name=f"API {i}",
                kind="http",
                interval=60,
                config={"url": f"https://api-{i}.example.org/health"},
            )
            for i in range(SLOS)
        )
        rows = (
            Rollup(probe_id=check.pk, day=today - timedelta(days=d), **variants[(i + d) % 7])
            for i, check in enumerate(checks)
            for d in range(DAYS + 1)
        )
        Rollup.objects.bulk_create(rows, batch_size=500)
        slos = []
        for i, check in enumerate(checks):
            window, kind, budgeting = MIX[i % len(MIX)]
            config: dict[str, Any] = {"checks": [check.pk]}
            if kind == "probe_latency":
                config["threshold_ms"] = 250
            slos.append(
                ServiceLevelObjective(
                    service=service,
                    name=f"SLO {i}",
                    slug=f"slo-{i}",
                    sli_kind=kind,
                    sli_config=config,
                    objective="99",
                    window=window,
                    time_zone="Europe/Berlin" if window.startswith("calendar") else "UTC",
                    budgeting=budgeting,
                )
            )
        ServiceLevelObjective.objects.bulk_create(slos)
    return list(ServiceLevelObjective.objects.select_related("service", "service__team"))


def compute_all(slos: list[ServiceLevelObjective], now: Any) -> float:
    started = time.perf_counter()
    with reading_together(slos, now):  # as the evaluation task reads them
        for slo in slos:
            counter = Counter(slo, now)
            figures(slo, now, counter=counter)
            alerts.burns(slo, now, counter)
    return time.perf_counter() - started


def status_page_figures() -> dict[str, Any]:
    """The status pages' own figures (bench/_status_page.py, when that bench is there)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_status_page.py")
    if not os.path.exists(path):
        return {}
    spec = importlib.util.spec_from_file_location("bench._status_page", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return dict(module.measure())


def main() -> None:
    now = timezone.now().replace(second=30, microsecond=0)
    slos = seed(now)
    cold_s = compute_all(slos, now)
    remembered = SLODay.objects.count()
    warm = [compute_all(slos, now) for _ in range(REPEAT)]
    with CaptureQueriesContext(connection) as queries:
        compute_all(slos, now)
    started = time.perf_counter()
    done = evaluate_all(now)
    evaluate_s = time.perf_counter() - started
    result = {
        "bench": "slo",
        "database": connection.vendor,
        "slos": SLOS,
        "days": DAYS,
        "minutes_per_slo": DAYS * 1440,
        "days_remembered": remembered,
        "cold_s": round(cold_s, 3),
        "warm_p50_s": round(statistics.median(warm), 3),
        "warm_max_s": round(max(warm), 3),
        "queries_per_slo": round(len(queries) / max(1, SLOS), 1),
        "evaluate_all_s": round(evaluate_s, 3),
        "evaluated": done["evaluated"],
        "firing": done["firing"],
        "goal_s": GOAL_S,
        "load_average": round(os.getloadavg()[0], 1),
    }
    result["under_goal"] = max(result["cold_s"], result["warm_max_s"]) < GOAL_S
    print(
        f"{SLOS} SLOs over {DAYS} days of minutes: {result['warm_p50_s']} s every minute "
        f"(worst {result['warm_max_s']} s), {result['cold_s']} s the first time; the task "
        f"with its writes {result['evaluate_all_s']} s"
    )
    result.update(status_page_figures())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
