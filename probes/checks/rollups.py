"""Rollups per minute, hour and day, and retention pruning (periodic tasks).

``rollup`` runs every minute: it rebuilds the minute rows of the last ``LOOKBACK`` completed
minutes from the raw results (exact percentiles), then the current and previous hour from the
minute rows and the current and previous day from the hour rows (histograms summed, so the
merge is exact and the percentiles approximate to a bin). Every row is upserted on its unique
bucket, so running it twice, or on two workers, writes the same rows. After a worker outage
longer than the lookback, ``rollup(now, lookback=…)`` rebuilds further back (raw results are
kept 48 h).

``prune`` deletes what is older than the retention of each level: raw results
(``TOCSIN_CHECK_RESULT_RETENTION``, 48 h), minute rows (``TOCSIN_CHECK_MINUTE_RETENTION``,
14 days), hour rows (``TOCSIN_CHECK_HOUR_RETENTION``, 90 days), day rows
(``TOCSIN_CHECK_DAY_RETENTION``, 2 years); each a number of seconds or a timedelta.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from probes.checks.choices import (
    DAY_RETENTION,
    HOUR_RETENTION,
    MINUTE_RETENTION,
    PERIOD_LENGTH,
    RESULT_RETENTION,
    Period,
    ResultStatus,
    retention,
)
from probes.checks.results import (
    Result,
    Rollup,
    empty_histogram,
    exact_percentile,
    histogram_of,
    histogram_percentile,
    pack,
    unpack,
)

LOOKBACK = timedelta(minutes=10)
SHARES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
COUNTED = ("up", "degraded", "down", "unknown")
_UPDATED = [*COUNTED, *SHARES, "histogram"]


def floor(moment: datetime, period: str) -> datetime:
    moment = moment.astimezone(UTC)
    if period == Period.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if period == Period.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _upsert(rows: list[Rollup]) -> int:
    if rows:
        Rollup.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["probe", "period", "bucket_start"],
            update_fields=_UPDATED,
        )
    return len(rows)


def roll_minutes(now: datetime, lookback: timedelta = LOOKBACK) -> int:
    """Minute rows of the completed minutes in the lookback, from the raw results."""
    end = floor(now, Period.MINUTE)
    results = Result.objects.filter(started_at__gte=end - lookback, started_at__lt=end)
    buckets: dict[tuple[int, datetime], dict[str, Any]] = defaultdict(
        lambda: {"counts": dict.fromkeys(COUNTED, 0), "latencies": []}
    )
    for probe_id, started_at, status, latency, slots in results.values_list(
        "probe_id", "started_at", "status", "latency_ms", "slots"
    ):
        bucket = buckets[(probe_id, floor(started_at, Period.MINUTE))]
        if status == ResultStatus.UNKNOWN:
            bucket["counts"]["unknown"] += slots
            continue
        bucket["counts"][status] += 1
        if latency is not None:
            bucket["latencies"].append(latency)
    rows = []
    for (probe_id, start), bucket in buckets.items():
        ordered = sorted(bucket["latencies"])
        rows.append(
            Rollup(
                probe_id=probe_id,
                period=Period.MINUTE,
                bucket_start=start,
                **bucket["counts"],
                **{name: exact_percentile(ordered, share) for name, share in SHARES.items()},
                histogram=pack(histogram_of(ordered)),
            )
        )
    return _upsert(rows)


def roll_up(period: str, now: datetime) -> int:
    """Hour (or day) rows of the current and previous bucket, merged from the level below."""
    below = Period.MINUTE if period == Period.HOUR else Period.HOUR
    start = floor(now, period) - PERIOD_LENGTH[period]
    end = floor(now, period) + PERIOD_LENGTH[period]
    merged: dict[tuple[int, datetime], dict[str, Any]] = defaultdict(
        lambda: {"counts": dict.fromkeys(COUNTED, 0), "histogram": empty_histogram()}
    )
    source = Rollup.objects.filter(period=below, bucket_start__gte=start, bucket_start__lt=end)
    for row in source.values_list("probe_id", "bucket_start", *COUNTED, "histogram"):
        probe_id, bucket_start, *counts, histogram = row
        bucket = merged[(probe_id, floor(bucket_start, period))]
        for name, count in zip(COUNTED, counts, strict=True):
            bucket["counts"][name] += count
        bucket["histogram"] = [
            a + b for a, b in zip(bucket["histogram"], unpack(histogram), strict=True)
        ]
    rows = [
        Rollup(
            probe_id=probe_id,
            period=period,
            bucket_start=bucket_start,
            **bucket["counts"],
            **{
                name: histogram_percentile(bucket["histogram"], share)
                for name, share in SHARES.items()
            },
            histogram=pack(bucket["histogram"]),
        )
        for (probe_id, bucket_start), bucket in merged.items()
    ]
    return _upsert(rows)


def rollup(now: datetime | None = None, lookback: timedelta = LOOKBACK) -> dict[str, int]:
    """The periodic task (every minute): minute, hour and day rows; how many each wrote."""
    now = now or timezone.now()
    return {
        "minute": roll_minutes(now, lookback),
        "hour": roll_up(Period.HOUR, now),
        "day": roll_up(Period.DAY, now),
    }


def prune(now: datetime | None = None) -> dict[str, int]:
    """The periodic task (hourly): drop what is past each level's retention."""
    now = now or timezone.now()
    deleted = {}
    deleted["results"], _ = Result.objects.filter(
        started_at__lt=now - retention("RESULT_RETENTION", RESULT_RETENTION)
    ).delete()
    for period, name, default in (
        (Period.MINUTE, "MINUTE_RETENTION", MINUTE_RETENTION),
        (Period.HOUR, "HOUR_RETENTION", HOUR_RETENTION),
        (Period.DAY, "DAY_RETENTION", DAY_RETENTION),
    ):
        deleted[period.label.lower()], _ = Rollup.objects.filter(
            period=period, bucket_start__lt=now - retention(name, default)
        ).delete()
    return deleted
