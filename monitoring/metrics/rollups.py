"""Rollups: downsampling and retention, and reading a series at any resolution.

Storage stays bounded by ``downsample_and_prune``, which the scheduler runs every few minutes:
raw samples become 1-minute rollups after an hour, 1-minute rollups become 1-hour rollups after
two days, and each tier is dropped after its retention, but never before it has been rolled up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from monitoring.models import (
    MetricRollup,
    MetricRollupCursor,
    MetricSample,
    MetricSeries,
    Resolution,
)
from tocsin.services import ServiceError

# --- Downsampling and retention -----------------------------------------------------------------
# Raw samples older than this are final (see MAX_SAMPLE_AGE) and are rolled into 1m buckets.
RAW_ROLLUP_AFTER = timedelta(hours=1)
# 1m rollups older than this are rolled into 1h buckets.
MINUTE_ROLLUP_AFTER = timedelta(days=2)
# Raw samples: rule windows (at most a day) and the recent charts read them.
RAW_RETENTION = timedelta(days=2)
# 1m rollups: two weeks of minute-level charts.
MINUTE_RETENTION = timedelta(days=14)
# 1h rollups: a year and a bit, so "same week last year" still has data.
HOUR_RETENTION = timedelta(days=400)
# A series silent for as long as we keep anything has nothing left to show: drop it.
SERIES_RETENTION = HOUR_RETENTION

# The samples API refuses ranges that would return more points than this.
MAX_POINTS = 10_000

# --- Buckets ------------------------------------------------------------------------------------


def floor_time(when: datetime, seconds: int) -> datetime:
    stamp = int(when.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=UTC)


class Bucket:
    """min/max/sum/count/last of what falls into one bucket, fed in time order."""

    __slots__ = ("count", "last", "max", "min", "sum")

    def __init__(self) -> None:
        self.min = math.inf
        self.max = -math.inf
        self.sum = 0.0
        self.count = 0
        self.last = math.nan

    def add(self, value: float) -> None:
        self.add_summary(value, value, value, 1, value)

    def add_summary(self, lo: float, hi: float, total: float, count: int, last: float) -> None:
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)
        self.sum += total
        self.count += count
        self.last = last

    def as_point(self, start: datetime) -> dict[str, Any]:
        return {
            "time": start,
            "avg": self.sum / self.count,
            "min": self.min,
            "max": self.max,
            "last": self.last,
            "count": self.count,
        }


def _fold_raw(rows: Iterable[tuple[int, datetime, float]], seconds: int) -> Iterator[tuple]:
    """(series, bucket start, Bucket) from samples ordered by series and time."""
    current: tuple[int, datetime] | None = None
    bucket = Bucket()
    for series_id, when, value in rows:
        key = (series_id, floor_time(when, seconds))
        if key != current:
            if current is not None:
                yield (*current, bucket)
            current, bucket = key, Bucket()
        bucket.add(value)
    if current is not None:
        yield (*current, bucket)


def _fold_rollups(rows: Iterable[tuple], seconds: int) -> Iterator[tuple]:
    """(series, bucket start, Bucket) from finer rollups ordered by series and bucket."""
    current: tuple[int, datetime] | None = None
    bucket = Bucket()
    for series_id, start, lo, hi, total, count, last in rows:
        key = (series_id, floor_time(start, seconds))
        if key != current:
            if current is not None:
                yield (*current, bucket)
            current, bucket = key, Bucket()
        bucket.add_summary(lo, hi, total, count, last)
    if current is not None:
        yield (*current, bucket)


def _save_rollups(resolution: str, folded: Iterable[tuple], chunk: int = 1000) -> int:
    written = 0
    batch: list[MetricRollup] = []

    def flush() -> None:
        # Upsert: re-rolling a range (after a crash between rolling and moving the cursor)
        # replaces the buckets instead of failing on the unique constraint.
        MetricRollup.objects.bulk_create(
            batch,
            update_conflicts=True,
            unique_fields=["series", "resolution", "bucket_start"],
            update_fields=["min", "max", "sum", "count", "last"],
        )

    for series_id, start, bucket in folded:
        batch.append(
            MetricRollup(
                series_id=series_id,
                resolution=resolution,
                bucket_start=start,
                min=bucket.min,
                max=bucket.max,
                sum=bucket.sum,
                count=bucket.count,
                last=bucket.last,
            )
        )
        if len(batch) >= chunk:
            flush()
            written += len(batch)
            batch = []
    if batch:
        flush()
        written += len(batch)
    return written


# --- Downsampling and pruning -------------------------------------------------------------------


def _claim_cursor(resolution: str) -> MetricRollupCursor | None:
    """Lock the cursor row (call inside a transaction); None when another worker holds it."""
    MetricRollupCursor.objects.get_or_create(resolution=resolution)
    return (
        MetricRollupCursor.objects.select_for_update(skip_locked=True)
        .filter(resolution=resolution)
        .first()
    )


def cursor_times() -> dict[str, datetime | None]:
    found = dict(MetricRollupCursor.objects.values_list("resolution", "done_until"))
    return {res: found.get(res) for res in Resolution.values}


def _roll_minutes(now: datetime) -> int:
    with transaction.atomic():
        cursor = _claim_cursor(Resolution.MINUTE)
        if cursor is None:
            return 0
        end = floor_time(now - RAW_ROLLUP_AFTER, 60)
        start = cursor.done_until
        if start is None:
            oldest = MetricSample.objects.aggregate(t=Min("time"))["t"]
            start = floor_time(oldest, 60) if oldest else end
        written = 0
        if start < end:
            rows = (
                MetricSample.objects.filter(time__gte=start, time__lt=end)
                .order_by("series_id", "time", "id")
                .values_list("series_id", "time", "value")
                .iterator(chunk_size=2000)
            )
            written = _save_rollups(Resolution.MINUTE, _fold_raw(rows, 60))
        if cursor.done_until is None or end > cursor.done_until:
            cursor.done_until, cursor.updated_at = end, now
            cursor.save(update_fields=["done_until", "updated_at"])
    return written


def _roll_hours(now: datetime) -> int:
    with transaction.atomic():
        minutes_done = cursor_times()[Resolution.MINUTE]
        cursor = _claim_cursor(Resolution.HOUR)
        if cursor is None or minutes_done is None:
            return 0
        # Only whole hours whose minutes are all rolled up.
        end = floor_time(min(now - MINUTE_ROLLUP_AFTER, minutes_done), 3600)
        start = cursor.done_until
        if start is None:
            oldest = MetricRollup.objects.filter(resolution=Resolution.MINUTE).aggregate(
                t=Min("bucket_start")
            )["t"]
            start = floor_time(oldest, 3600) if oldest else end
        written = 0
        if start < end:
            rows = (
                MetricRollup.objects.filter(
                    resolution=Resolution.MINUTE, bucket_start__gte=start, bucket_start__lt=end
                )
                .order_by("series_id", "bucket_start")
                .values_list("series_id", "bucket_start", "min", "max", "sum", "count", "last")
                .iterator(chunk_size=2000)
            )
            written = _save_rollups(Resolution.HOUR, _fold_rollups(rows, 3600))
        if cursor.done_until is None or end > cursor.done_until:
            cursor.done_until, cursor.updated_at = end, now
            cursor.save(update_fields=["done_until", "updated_at"])
    return written


def downsample_and_prune(now: datetime | None = None) -> dict[str, int]:
    """The periodic task: roll up what is final, then drop what is past its retention.

    Safe with several workers: each tier's cursor row is locked while it is rolled, and
    pruning never deletes rows the next tier has not summarised yet.
    """
    now = now or timezone.now()
    done = {"rolled_1m": _roll_minutes(now), "rolled_1h": _roll_hours(now)}
    cursors = cursor_times()
    raw_horizon = now - RAW_RETENTION
    if cursors[Resolution.MINUTE] is not None:
        raw_horizon = min(raw_horizon, cursors[Resolution.MINUTE])
        # Plain DELETEs: nothing points at samples or rollups, so Django needs no cascade.
        done["pruned_raw"] = MetricSample.objects.filter(time__lt=raw_horizon).delete()[0]
    minute_horizon = now - MINUTE_RETENTION
    if cursors[Resolution.HOUR] is not None:
        minute_horizon = min(minute_horizon, cursors[Resolution.HOUR])
        done["pruned_1m"] = MetricRollup.objects.filter(
            resolution=Resolution.MINUTE, bucket_start__lt=minute_horizon
        ).delete()[0]
    done["pruned_1h"] = MetricRollup.objects.filter(
        resolution=Resolution.HOUR, bucket_start__lt=now - HOUR_RETENTION
    ).delete()[0]
    stale = MetricSeries.objects.filter(
        Q(last_at__lt=now - SERIES_RETENTION)
        | Q(last_at__isnull=True, created_at__lt=now - SERIES_RETENTION)
    )
    done["pruned_series"] = stale.delete()[1].get(MetricSeries._meta.label, 0)
    return done


# --- Reading ------------------------------------------------------------------------------------


def series_points(
    series: MetricSeries, *, since: datetime, until: datetime, resolution: str
) -> list[dict[str, Any]]:
    """A series' points in [since, until): raw samples, or buckets of 1m or 1h.

    Buckets come from the stored rollups where downsampling has made them and are computed on
    the fly from the finer tier beyond that, so a chart reaches up to now at any resolution.
    """
    if resolution == "raw":
        rows = list(
            series.samples.filter(time__gte=since, time__lt=until)
            .order_by("time", "id")
            .values_list("time", "value")[: MAX_POINTS + 1]
        )
        _check_size(len(rows))
        return [{"time": when, "value": value} for when, value in rows]

    seconds = Resolution(resolution).seconds
    since = floor_time(since, seconds)
    cursors = cursor_times()
    buckets: dict[datetime, Bucket] = {}
    points: list[dict[str, Any]] = []
    stored_until = min(until, cursors[resolution] or since)
    if stored_until > since:
        for row in (
            MetricRollup.objects.filter(
                series=series,
                resolution=resolution,
                bucket_start__gte=since,
                bucket_start__lt=stored_until,
            )
            .order_by("bucket_start")
            .values_list("bucket_start", "min", "max", "sum", "count", "last")[: MAX_POINTS + 1]
        ):
            bucket = Bucket()
            bucket.add_summary(*row[1:])
            points.append(bucket.as_point(row[0]))
        _check_size(len(points))
    fold_from = max(since, stored_until)
    if resolution == Resolution.HOUR:
        minutes_until = min(until, max(cursors[Resolution.MINUTE] or fold_from, fold_from))
        if minutes_until > fold_from:
            for row in (
                MetricRollup.objects.filter(
                    series=series,
                    resolution=Resolution.MINUTE,
                    bucket_start__gte=fold_from,
                    bucket_start__lt=minutes_until,
                )
                .order_by("bucket_start")
                .values_list("series_id", "bucket_start", "min", "max", "sum", "count", "last")
            ):
                start = floor_time(row[1], seconds)
                buckets.setdefault(start, Bucket()).add_summary(*row[2:])
            fold_from = minutes_until
    if until > fold_from:
        raw = series.samples.filter(time__gte=fold_from, time__lt=until).order_by("time", "id")
        for when, value in raw.values_list("time", "value"):
            buckets.setdefault(floor_time(when, seconds), Bucket()).add(value)
    points.extend(bucket.as_point(start) for start, bucket in sorted(buckets.items()))
    _check_size(len(points))
    return points


def _check_size(count: int) -> None:
    if count > MAX_POINTS:
        raise ServiceError(
            f"more than {MAX_POINTS} points; narrow since/until or choose a coarser resolution",
            "resolution",
        )
