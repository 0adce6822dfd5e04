"""The collection loop: every minute, each database whose interval has passed is read (several
at once, each with short timeouts) and its reading recorded as samples of its team.

It runs as a django-q2 task, not in the worker's due-work loop: a database that does not answer
holds its collector for seconds, and pages must not wait behind it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from monitoring.databases.collectors import collect
from monitoring.metrics.samples import SampleInput, record_samples
from monitoring.models import MonitoredDatabase

log = logging.getLogger(__name__)

CONCURRENCY = 8


def claim_due(now: datetime) -> list[MonitoredDatabase]:
    """The databases due now, each claimed by moving its next collection (a conditional
    UPDATE: any number of workers collect each database once)."""
    due = MonitoredDatabase.objects.filter(enabled=True).filter(
        Q(next_collect_at__isnull=True) | Q(next_collect_at__lte=now)
    )
    claimed = []
    for database in due.select_related("team"):
        following = now + timedelta(seconds=database.interval_seconds)
        taken = MonitoredDatabase.objects.filter(
            pk=database.pk, next_collect_at=database.next_collect_at
        ).update(next_collect_at=following)
        if taken:
            claimed.append(database)
    return claimed


def collect_one(database: MonitoredDatabase, now: datetime | None = None) -> bool:
    """Read one database and record what it said; True when it answered."""
    now = now or timezone.now()
    reading = collect(database.kind, database.dsn)
    samples = [
        SampleInput(name, value, {"database": database.name, **labels}, time=now, kind=kind)
        for name, value, labels, kind in reading.values
    ]
    record_samples(database.team, samples, now=now)
    MonitoredDatabase.objects.filter(pk=database.pk).update(
        last_collected_at=now,
        last_error=reading.error[:500],
        slow_queries=reading.slow_queries,
    )
    return not reading.error


def collect_due(now: datetime | None = None) -> int:
    """The periodic task: collect every due database; returns how many answered."""
    now = now or timezone.now()
    databases = claim_due(now)
    if not databases:
        return 0
    with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(databases))) as pool:
        answered = list(pool.map(lambda database: _safely(database, now), databases))
    return sum(answered)


def _safely(database: MonitoredDatabase, now: datetime) -> bool:
    """``collect_one`` in a pool thread: never raises, and gives its connection back."""
    try:
        return collect_one(database, now)
    except Exception:
        log.exception("collecting database %s failed; the next round tries again", database)
        return False
    finally:
        close_old_connections()
