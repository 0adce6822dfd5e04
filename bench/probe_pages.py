"""Benchmark the probes pages at scale: the status grid and a check's page with thousands of checks.

Uptime Kuma becomes unusable at 500 to 1,400 monitors; the goal here is both pages under 300 ms of
server time at 5,000 checks with a month of rollups, with a number of queries that does not grow
with the checks. Seeds a scratch database (SQLite by default; DATABASE_URL for PostgreSQL) with
CHECKS HTTP checks over SERVICES services of one team (most up, some down, degraded or paused,
one slot each), DAYS days of rollups for every check (the last HOURLY_DAYS with their hours), and
RESULTS recent runs per check — written by ``INSERT … SELECT`` over a small table of buckets, so
millions of rows take seconds — then requests each page REPEAT times in-process (Django's test
client: the view, the ORM and the templates, without HTTP) as a responder of the team: the grid
(``/probes/``, all states and only the down ones), its htmx refresh, and a check's page. Prints
p50/p95, this process's CPU and the queries per page; ends with one JSON line.

    python bench/probe_pages.py                                   # SQLite, 5,000 checks
    DATABASE_URL=postgres://…/scratch python bench/probe_pages.py
    CHECKS=500 DAYS=7 python bench/probe_pages.py                 # a quick check
"""

from __future__ import annotations

import gc
import json
import os
import time
from datetime import timedelta

CHECKS = int(os.environ.get("CHECKS", "5000"))
SERVICES = int(os.environ.get("SERVICES", "50"))
DAYS = int(os.environ.get("DAYS", "30"))
HOURLY_DAYS = int(os.environ.get("HOURLY_DAYS", "7"))  # what a check's hourly chart shows
RESULTS = int(os.environ.get("RESULTS", "60"))  # the last hour at a one-minute interval
REPEAT = int(os.environ.get("REPEAT", "30"))
GOAL_MS = 300

import _scratch  # noqa: E402  (first: Django on a scratch database)

# isort: split
from _pages import measure  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, models, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from monitoring.models import Service  # noqa: E402
from probes.checks.choices import ANY_LOCATION, CheckState  # noqa: E402
from probes.checks.models import Check, Slot  # noqa: E402
from probes.checks.points import Point, encode  # noqa: E402
from probes.checks.results import (  # noqa: E402
    DAY_BITS,
    EPOCH,
    Result,
    Rollup,
    histogram_of,
    pack,
)
from tocsin.models import Membership, Role, Team  # noqa: E402

# One check in this many is down, degraded or paused; the rest are up.
STATES = [CheckState.DOWN, CheckState.DEGRADED, CheckState.PAUSED] + [CheckState.UP] * 27


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def fill_buckets(starts: list, field: models.Field | None = None) -> None:
    """A temporary table of (k, t): the bucket starts the rollups and results are written for."""
    field = field or models.DateTimeField()
    kind = field.db_type(connection) if connection.vendor == "postgresql" else "text"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_buckets")
        cursor.execute(f"CREATE TEMPORARY TABLE bench_buckets (k integer, t {kind})")
        cursor.executemany(
            "INSERT INTO bench_buckets (k, t) VALUES (%s, %s)",
            [(k, field.get_db_prep_value(t, connection)) for k, t in enumerate(starts)],
        )


def hours_blob() -> bytes:
    """A day of hour points (60 runs each, one failed in some, latencies that vary), packed."""
    hours = [
        Point(
            up=60 - (h % 5 == 0),
            down=int(h % 5 == 0),
            p50=20 + h,
            p95=70 + 2 * h,
            p99=140 + 3 * h,
            histogram=histogram_of([20 + h] * 30 + [70 + 2 * h] * 27 + [140 + 3 * h] * 3),
        )
        for h in range(24)
    ]
    return encode(hours, True)


def insert_rollups(days: list, hourly_days: int, runs: int) -> None:
    """One row per check and day: ``runs`` runs, a few down, latencies that vary (``%%``: the
    drivers' parameter style, so ``%`` is SQL's modulo); the last ``hourly_days`` days carry
    their packed hours."""
    fill_buckets(days, models.DateField())
    with connection.cursor() as cursor:
        # The key (Rollup.key): the check's id, then the day's number in the low DAY_BITS bits.
        cursor.execute("CREATE TEMPORARY TABLE bench_day_numbers (k integer, n bigint)")
        cursor.executemany(
            "INSERT INTO bench_day_numbers (k, n) VALUES (%s, %s)",
            [(k, (day - EPOCH).days) for k, day in enumerate(days)],
        )
        cursor.execute(
            f"INSERT INTO {table(Rollup)} (id, probe_id, day, up, degraded, down, unknown, p50, "
            "p95, p99, histogram, hours, minutes) "
            f"SELECT c.id * {1 << DAY_BITS} + d.n, c.id, b.t, "
            "%s - ((c.id + b.k) %% 3), 0, (c.id + b.k) %% 3, 0, "
            "20 + (c.id * 7 + b.k * 13) %% 80, 70 + (c.id * 7 + b.k * 13) %% 80, "
            "140 + (c.id * 7 + b.k * 13) %% 80, %s, CASE WHEN b.k < %s THEN %s ELSE %s END, %s "
            f"FROM {table(Check)} c CROSS JOIN bench_buckets b "
            "JOIN bench_day_numbers d ON d.k = b.k",
            [runs, pack(histogram_of([50] * runs)), hourly_days, hours_blob(), b"", b""],
        )
        cursor.execute("DROP TABLE bench_day_numbers")


def insert_results(starts: list) -> None:
    fill_buckets(starts)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table(Result)} (probe_id, location, slot_at, started_at, status, "
            "latency_ms, timings, error, excerpt, explanation, details, slots) "
            "SELECT c.id, %s, b.t, b.t, CASE WHEN (c.id + b.k) %% 20 = 0 THEN 'down' ELSE 'up' "
            "END, 20 + (c.id * 7 + b.k * 13) %% 80, '{}', '', '', '', '{}', 1 "
            f"FROM {table(Check)} c CROSS JOIN bench_buckets b",
            [ANY_LOCATION],
        )


def seed() -> tuple[Client, int]:
    _scratch.fresh_database()
    call_command("collectstatic", interactive=False, verbosity=0)
    stamp = time.time_ns()
    now = timezone.now()
    team = Team.objects.create(name=f"bench-{stamp}")
    services = Service.objects.bulk_create(
        Service(team=team, name=f"Service {i}", slug=f"service-{stamp}-{i}")
        for i in range(SERVICES)
    )
    with transaction.atomic():
        checks = Check.objects.bulk_create(
            (
                Check(
                    service=services[i % SERVICES],
                    name=f"API {i}",
                    kind="http",
                    config={"url": f"https://api-{i}.example.org/health"},
                    conditions=["[STATUS] == 200", "[RESPONSE_TIME] < 500"],
                    state=STATES[i % len(STATES)],
                    paused=STATES[i % len(STATES)] == CheckState.PAUSED,
                    state_changed_at=now - timedelta(hours=i % 48),
                    last_run_at=now - timedelta(seconds=i % 60),
                    last_error="HTTP 503" if STATES[i % len(STATES)] == CheckState.DOWN else "",
                )
                for i in range(CHECKS)
            ),
            batch_size=1000,
        )
        Slot.objects.bulk_create(
            (
                Slot(
                    probe=check,
                    location=ANY_LOCATION,
                    state=check.state,
                    next_run_at=now,
                    last_run_at=check.last_run_at,
                )
                for check in checks
            ),
            batch_size=1000,
        )
        today = now.date()
        insert_rollups([today - timedelta(days=d) for d in range(DAYS)], HOURLY_DAYS, 1440)
        minute = now.replace(second=0, microsecond=0)
        insert_results([minute - timedelta(minutes=m) for m in range(RESULTS)])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would leave the tables
            for model in (Check, Slot, Rollup, Result):
                cursor.execute(f"ANALYZE {table(model)}")
    user = get_user_model().objects.create_user(username=f"bench-{stamp}")
    Membership.objects.create(team=team, user=user, role=Role.RESPONDER)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    down = next(check for check in checks if check.state == CheckState.DOWN)
    return client, down.pk


def main() -> None:
    started = time.perf_counter()
    client, check_id = seed()
    seeded = time.perf_counter() - started
    gc.collect()  # the seeding's garbage is no part of what a page costs
    pages = {
        "probes": reverse("probes"),
        "probes_down": reverse("probes") + "?state=down",
        "probes_grid": reverse("checks_grid"),
        "check": reverse("check", args=[check_id]),
    }
    figures = {name: measure(client, url, REPEAT) for name, url in pages.items()}
    for name, f in figures.items():
        print(
            f"{name:12} p50 {f['p50_ms']:7.1f} ms   p95 {f['p95_ms']:7.1f} ms   "
            f"cpu p50 {f['cpu_p50_ms']:6.1f} ms   {f['queries']} queries   {f['kb']} KB"
        )
    worst = max(f["p95_ms"] for f in figures.values())
    print(
        json.dumps(
            {
                "bench": "probe_pages",
                "database": connection.vendor,
                "checks": CHECKS,
                "days": DAYS,
                "hourly_days": HOURLY_DAYS,
                "rollups": Rollup.objects.count(),
                "results": Result.objects.count(),
                "seed_seconds": round(seeded, 1),
                "load_average": round(os.getloadavg()[0], 1),
                "worst_p95_ms": worst,
                "goal_p95_ms": GOAL_MS,
                "all_under_goal": worst < GOAL_MS,
                **{f"{name}_{k}": v for name, f in figures.items() for k, v in f.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
