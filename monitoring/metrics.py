"""Metric samples in, rollups out: recording, the host collector, downsampling and retention.

Everything that writes metrics calls ``record_samples`` (the API, the host collector, probes):
one validated batch costs a handful of queries however many series it touches. Storage stays
bounded by ``downsample_and_prune``, which the scheduler runs every few minutes: raw samples
become 1-minute rollups after an hour, 1-minute rollups become 1-hour rollups after two days, and
each tier is dropped after its retention, but never before it has been rolled up.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, FloatField, Min, Q, Value, When
from django.utils import timezone

from monitoring.models import (
    MetricKind,
    MetricRollup,
    MetricRollupCursor,
    MetricSample,
    MetricSeries,
    Resolution,
    series_key,
)
from monitoring.models.metrics import (
    MAX_LABEL_VALUE_LENGTH,
    label_errors,
    metric_name_error,
)
from tocsin.models import Team
from tocsin.services import ServiceError

log = logging.getLogger(__name__)

# --- Input limits -------------------------------------------------------------------------------
MAX_BATCH = 1000
# Samples may arrive late, but not so late that their minute has already been rolled up (raw
# minutes are rolled RAW_ROLLUP_AFTER after the fact; the gap is a margin for slow requests).
MAX_SAMPLE_AGE = timedelta(minutes=50)
# A little clock skew between a sender and us is normal; a sample from the future is not.
MAX_SAMPLE_AHEAD = timedelta(minutes=5)

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

SYSTEM_TEAM_SLUG = "tocsin-system"
SYSTEM_TEAM_NAME = "Tocsin (system)"


class SampleError(ServiceError):
    """A sample of a batch is invalid; ``index`` says which, ``field`` what about it."""

    def __init__(self, message: str, index: int, field: str):
        super().__init__(message, field)
        self.index = index
        self.sample_field = field


@dataclass
class SampleInput:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    time: datetime | None = None
    # None: the series' existing kind, or a gauge for a new series.
    kind: str | None = None


@dataclass
class Recorded:
    samples: int = 0
    series: int = 0
    new_series: int = 0


# --- Validation (shared by the API's serializer) -----------------------------------------------


def value_error(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "a number is required"
    try:
        if not math.isfinite(float(value)):
            return "must be a finite number"
    except OverflowError:
        return "must be a finite number"
    return None


def time_error(when: Any, now: datetime) -> str | None:
    if when is None:
        return None
    if not isinstance(when, datetime) or timezone.is_naive(when):
        return "a time with a time zone is required"
    if when < now - MAX_SAMPLE_AGE:
        return f"older than {int(MAX_SAMPLE_AGE.total_seconds() // 60)} minutes"
    if when > now + MAX_SAMPLE_AHEAD:
        return "lies in the future"
    return None


def kind_error(kind: Any) -> str | None:
    if kind is not None and kind not in MetricKind.values:
        return f"one of: {', '.join(MetricKind.values)}"
    return None


def sample_errors(item: SampleInput, now: datetime) -> dict[str, str]:
    """Everything wrong with one sample, by field; empty when it is fine."""
    checks = {
        "name": metric_name_error(item.name),
        "labels": label_errors(item.labels),
        "value": value_error(item.value),
        "time": time_error(item.time, now),
        "kind": kind_error(item.kind),
    }
    return {name: message for name, message in checks.items() if message}


def _as_input(raw: SampleInput | dict[str, Any]) -> SampleInput:
    if isinstance(raw, SampleInput):
        return raw
    return SampleInput(
        name=raw.get("name"),  # type: ignore[arg-type]
        value=raw.get("value"),  # type: ignore[arg-type]
        labels=raw.get("labels") or {},
        time=raw.get("time"),
        kind=raw.get("kind"),
    )


# --- Recording ----------------------------------------------------------------------------------


def record_samples(
    team: Team,
    samples: SampleInput | dict[str, Any] | Iterable[SampleInput | dict[str, Any]],
    *,
    now: datetime | None = None,
) -> Recorded:
    """Store samples for ``team``: all of them or, if any is invalid, none (SampleError).

    Costs a few queries per batch whatever its size: read the batch's series, create the missing
    ones (and read them back), insert the samples, move the series' denormalised last values.
    """
    now = now or timezone.now()
    if isinstance(samples, SampleInput | dict):
        samples = [samples]
    items = [_as_input(raw) for raw in samples]
    if not items:
        return Recorded()
    if len(items) > MAX_BATCH:
        raise ServiceError(f"at most {MAX_BATCH} samples per request", "samples")

    by_key: dict[str, tuple[SampleInput, int]] = {}
    rows: list[tuple[str, datetime, float]] = []
    for index, item in enumerate(items):
        errors = sample_errors(item, now)
        if errors:
            name, message = next(iter(errors.items()))
            raise SampleError(message, index, name)
        item.labels = dict(item.labels or {})
        key = series_key(item.name, item.labels)
        first = by_key.setdefault(key, (item, index))
        if item.kind and first[0].kind and item.kind != first[0].kind:
            raise SampleError("the same series cannot be a gauge and a counter", index, "kind")
        if item.kind and not first[0].kind:
            by_key[key] = (item, first[1])
        rows.append((key, item.time or now, float(item.value)))

    latest: dict[str, tuple[datetime, float]] = {}
    for key, when, value in rows:
        if key not in latest or when >= latest[key][0]:
            latest[key] = (when, value)

    with transaction.atomic():
        series = {
            s.key: s
            for s in MetricSeries.objects.filter(team=team, key__in=list(by_key)).only(
                "id", "key", "kind", "last_at"
            )
        }
        for key, (item, index) in by_key.items():
            known = series.get(key)
            if known is not None and item.kind and item.kind != known.kind:
                raise SampleError(
                    f"{item.name} is recorded as a {known.kind}; send kind={known.kind}",
                    index,
                    "kind",
                )
        missing = [key for key in by_key if key not in series]
        if missing:
            MetricSeries.objects.bulk_create(
                [
                    MetricSeries(
                        team=team,
                        name=by_key[key][0].name,
                        labels=by_key[key][0].labels,
                        key=key,
                        kind=by_key[key][0].kind or MetricKind.GAUGE,
                        created_at=now,
                        last_at=latest[key][0],
                        last_value=latest[key][1],
                    )
                    for key in missing
                ],
                ignore_conflicts=True,  # created by a concurrent batch: use theirs
            )
            for s in MetricSeries.objects.filter(team=team, key__in=missing).only(
                "id", "key", "kind", "last_at"
            ):
                series[s.key] = s
        MetricSample.objects.bulk_create(
            [
                MetricSample(series_id=series[key].pk, time=when, value=value)
                for key, when, value in rows
            ],
            batch_size=500,
        )
        _advance_last_values(
            {
                series[key].pk: (when, value)
                for key, (when, value) in latest.items()
                if series[key].last_at is None or series[key].last_at <= when
            }
        )
    return Recorded(samples=len(rows), series=len(by_key), new_series=len(missing))


def _advance_last_values(latest: dict[int, tuple[datetime, float]], chunk: int = 200) -> None:
    """One UPDATE per chunk of series, each row only moving forward in time (a concurrent batch
    with newer samples may have got there first)."""
    pks = list(latest)
    for start in range(0, len(pks), chunk):
        part = pks[start : start + chunk]

        def newer(pk: int) -> Q:
            when = latest[pk][0]
            return Q(pk=pk) & (Q(last_at__isnull=True) | Q(last_at__lte=when))

        MetricSeries.objects.filter(pk__in=part).update(
            last_value=Case(
                *[When(newer(pk), then=Value(latest[pk][1])) for pk in part],
                default=F("last_value"),
                output_field=FloatField(),
            ),
            last_at=Case(
                *[When(newer(pk), then=Value(latest[pk][0])) for pk in part],
                default=F("last_at"),
                output_field=DateTimeField(),
            ),
        )


# --- The host collector -------------------------------------------------------------------------


def system_team() -> Team:
    """The built-in team that owns Tocsin's own metrics, created on first use.

    Named "Tocsin (system)" (slug ``tocsin-system``); superusers see it, and administrators may
    add members to let others chart the host or write rules on it.
    """
    team = Team.objects.filter(slug=SYSTEM_TEAM_SLUG).first()
    if team is not None:
        return team
    try:
        with transaction.atomic():
            return Team.objects.create(
                name=SYSTEM_TEAM_NAME,
                slug=SYSTEM_TEAM_SLUG,
                description="Built in: metrics about the host Tocsin runs on.",
            )
    except IntegrityError:  # created concurrently
        return Team.objects.get(slug=SYSTEM_TEAM_SLUG)


_cpu_primed = False


def _cpu_percent() -> float:
    """CPU use since the previous call in this process (the first call measures a short while:
    psutil's very first non-blocking reading is a meaningless 0.0)."""
    import psutil

    global _cpu_primed
    if not _cpu_primed:
        _cpu_primed = True
        return float(psutil.cpu_percent(interval=0.2))
    return float(psutil.cpu_percent(interval=None))


def host_samples() -> list[SampleInput]:
    """What the host looks like now, as samples labelled with the host name."""
    import psutil

    host = socket.gethostname()[:MAX_LABEL_VALUE_LENGTH]

    def gauge(name: str, value: float, **labels: str) -> SampleInput:
        return SampleInput(name, float(value), {"host": host, **labels}, kind=MetricKind.GAUGE)

    memory = psutil.virtual_memory()
    samples = [
        gauge("host_cpu_percent", _cpu_percent()),
        gauge("host_memory_used_percent", memory.percent),
        gauge("host_memory_available_percent", memory.available / memory.total * 100),
    ]
    load1, load5, load15 = psutil.getloadavg()
    samples += [
        gauge("host_load1", load1),
        gauge("host_load5", load5),
        gauge("host_load15", load15),
    ]

    mounts = {"/"} | {part.mountpoint for part in psutil.disk_partitions(all=False)}
    for mount in sorted(mounts)[:MAX_MOUNTS]:
        try:
            usage = psutil.disk_usage(mount)
        except OSError:  # unmounted meanwhile, or not readable by us
            continue
        samples.append(gauge("host_disk_used_percent", usage.percent, mount=mount[:200]))
        samples.append(gauge("host_disk_free_bytes", usage.free, mount=mount[:200]))

    net = psutil.net_io_counters()
    if net is not None:
        for name, value in (
            ("host_network_sent_bytes_total", net.bytes_sent),
            ("host_network_received_bytes_total", net.bytes_recv),
        ):
            samples.append(SampleInput(name, float(value), {"host": host}, kind=MetricKind.COUNTER))
    return samples


# Enough for any real host; a machine with hundreds of bind mounts should not flood the table.
MAX_MOUNTS = 20


def collect_host_metrics() -> Recorded:
    """The periodic task: record this host's CPU, memory, disk, network and load for the
    "Tocsin (system)" team (see ``system_team``)."""
    return record_samples(system_team(), host_samples())


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
