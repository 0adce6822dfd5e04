"""Benchmark the roll-up task at scale: what one worker spends every minute on rollups.

The roll-up runs every minute over every check: it rebuilds the last three minutes from the
raw runs, merges the current hour of every check into its day row, and once an hour packs the
past hour's minutes into the day rows. It has to stay a small share of the minute
(goal: under 10 s of the 60) at 5,000 checks run every 10 s. Seeds a scratch database (SQLite
by default; DATABASE_URL for PostgreSQL) with CHECKS checks and their runs of the last
MINUTES minutes at INTERVAL seconds (written by ``INSERT … SELECT``), then times:

- ``rebuild``: rolling up all the runs at once (a worker back after an outage);
- ``minute``: a regular minute, REPEAT times (p50 and the worst);
- ``pack``: the minute after an hour ends, which also packs that hour's minutes.

    python bench/rollups.py                                 # SQLite, 5,000 checks
    DATABASE_URL=postgres://…/scratch python bench/rollups.py
    CHECKS=500 python bench/rollups.py                      # a quick check
"""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import timedelta
from typing import Any

CHECKS = int(os.environ.get("CHECKS", "5000"))
INTERVAL = int(os.environ.get("INTERVAL", "10"))
MINUTES = int(os.environ.get("MINUTES", "70"))
REPEAT = int(os.environ.get("REPEAT", "5"))
GOAL_S = 10.0

import _scratch  # noqa: E402  (first: Django on a scratch database)

# isort: split
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from probe_pages import fill_buckets, table  # noqa: E402  (same seeding helpers)

from monitoring.models import Service  # noqa: E402
from probes.checks import rollups  # noqa: E402
from probes.checks.choices import ANY_LOCATION, Period  # noqa: E402
from probes.checks.models import Check, RecentMinute, Result, Rollup  # noqa: E402
from tocsin.models import Team  # noqa: E402


def seed(now: Any) -> None:
    _scratch.fresh_database()
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Service", slug=f"service-{time.time_ns()}")
    with transaction.atomic():
        Check.objects.bulk_create(
            (
                Check(
                    service=service,
                    name=f"API {i}",
                    kind="http",
                    interval=INTERVAL,
                    config={"url": f"https://api-{i}.example.org/health"},
                )
                for i in range(CHECKS)
            ),
            batch_size=1000,
        )
        steps = MINUTES * 60 // INTERVAL
        fill_buckets([now - timedelta(seconds=INTERVAL * n) for n in range(1, steps + 1)])
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table(Result)} (probe_id, location, slot_at, started_at, status, "
                "latency_ms, timings, error, excerpt, explanation, details, slots) "
                "SELECT c.id, %s, b.t, b.t, CASE WHEN (c.id + b.k) %% 50 = 0 THEN 'down' "
                "ELSE 'up' END, 20 + (c.id * 7 + b.k * 13) %% 200, '{}', '', '', '', '{}', 1 "
                f"FROM {table(Check)} c CROSS JOIN bench_buckets b",
                [ANY_LOCATION],
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table(Result)}")


def timed(now: Any) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    done = rollups.rollup(now)
    return time.perf_counter() - started, done


def main() -> None:
    # An hour has just ended, within the lookback: the minute after packs it.
    hour = rollups.floor(timezone.now(), Period.HOUR)
    now = hour + rollups.LOOKBACK - timedelta(seconds=30)
    seed(now)
    results = Result.objects.count()
    # A worker back after an outage rebuilds what the raw runs hold (here all of them).
    started = time.perf_counter()
    rollups.rollup(now, lookback=timedelta(minutes=MINUTES))
    first_s = time.perf_counter() - started
    minute_s = []
    for _ in range(REPEAT):
        spent, done = timed(now)
        minute_s.append(spent)
    pack_s, packed = timed(now + timedelta(minutes=1))
    figures = {
        "bench": "rollups",
        "database": connection.vendor,
        "checks": CHECKS,
        "interval_s": INTERVAL,
        "results": results,
        "minutes_rolled": done["minute"],
        "hours_rolled": done["hour"],
        "minutes_packed": packed["packed"],
        "day_rows": Rollup.objects.count(),
        "minutes_left": RecentMinute.objects.count(),
        "rebuild_s": round(first_s, 2),
        "minute_p50_s": round(statistics.median(minute_s), 2),
        "minute_max_s": round(max(minute_s), 2),
        "pack_s": round(pack_s, 2),
        "goal_s": GOAL_S,
        "load_average": round(os.getloadavg()[0], 1),
    }
    figures["under_goal"] = max(figures["minute_max_s"], figures["pack_s"]) < GOAL_S
    print(
        f"{CHECKS} checks every {INTERVAL} s: a minute's roll-up {figures['minute_p50_s']} s "
        f"(worst {figures['minute_max_s']} s), with an hour packed {figures['pack_s']} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
