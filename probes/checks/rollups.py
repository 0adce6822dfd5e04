"""Rollups per minute, hour and day, and retention (periodic tasks); reading points back.

``rollup`` runs every minute:

1. ``roll_minutes`` rebuilds the ``RecentMinute`` rows of the last ``LOOKBACK`` completed
   minutes from the raw results (exact percentiles);
2. ``roll_hours`` sums the minutes of every hour the lookback touched into hour points, in the
   database (counts and histogram bins: exact; the percentiles are read from the histogram,
   approximate to a bin), sets them in their day row's packed ``hours`` and recomputes the
   day's columns from its 24 hours;
3. ``pack_minutes`` moves the minutes of hours that are past the lookback into their day row's
   packed ``minutes`` and deletes their ``RecentMinute`` rows.

Every step writes values computed from what is stored, so running it twice, or on two
workers, writes the same rows. After a worker outage longer than the lookback,
``rollup(now, lookback=…)`` rebuilds further back (raw results are kept 48 h).

``prune`` applies each level's retention: raw results (``TOCSIN_CHECK_RESULT_RETENTION``,
48 h) are deleted; a day row's minutes are emptied after ``TOCSIN_CHECK_MINUTE_RETENTION``
(14 days) and its hours after ``TOCSIN_CHECK_HOUR_RETENTION`` (90 days); the row itself goes
after ``TOCSIN_CHECK_DAY_RETENTION`` (2 years). Each a number of seconds or a timedelta.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum
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
from probes.checks.points import (
    COUNTED,
    HOURS_PER_DAY,
    MINUTES_PER_DAY,
    SHARES,
    Point,
    decode,
    encode,
    merge,
)
from probes.checks.results import (
    BIN_FIELDS,
    RecentMinute,
    Result,
    Rollup,
    exact_percentile,
    histogram_of,
    histogram_percentile,
    pack,
)

# How far back each run re-reads the raw runs: a run is recorded within its timeout (at most a
# minute) and a recording batch after it starts, so a minute is complete two minutes after it
# ends; a third for slack. A longer outage is rebuilt with ``rollup(lookback=…)``.
LOOKBACK = timedelta(minutes=3)
_MINUTE_FIELDS = [*COUNTED, *SHARES, *BIN_FIELDS]
_DAY_FIELDS = [*COUNTED, *SHARES, "histogram", "hours"]


def floor(moment: datetime, period: str) -> datetime:
    moment = moment.astimezone(UTC)
    if period == Period.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if period == Period.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _point(row: Any) -> Point:
    """A ``RecentMinute`` or ``Rollup`` row as a point."""
    return Point(
        **{name: getattr(row, name) for name in COUNTED},
        **{name: getattr(row, name) for name in SHARES},
        histogram=row.counts(),
    )


# The columns of a minute as ``_minute_values`` reads them (values, not model instances: the
# roll-up reads about an hour of minutes of every check every minute).
_MINUTE_VALUES = ("probe_id", "minute", *COUNTED, *SHARES, *BIN_FIELDS)


def _minute_values(queryset: Any) -> Iterator[tuple[int, datetime, Point]]:
    for probe_id, minute, *values in queryset.values_list(*_MINUTE_VALUES):
        yield probe_id, minute, Point(*values[:7], histogram=values[7:])


def _columns(point: Point) -> dict[str, Any]:
    return {**point.counts(), **point.percentiles(), "histogram": pack(point.histogram)}


def _day_rows(keys: set[tuple[int, date]], packed: str) -> dict[tuple[int, date], Rollup]:
    """The stored day rows of these (check, day) pairs, locked, with one packed field; by
    primary key, a thousand at a time."""
    wanted = sorted(Rollup.key(probe_id, day) for probe_id, day in keys)
    found = {}
    for start in range(0, len(wanted), 1000):
        rows = Rollup.objects.select_for_update().filter(pk__in=wanted[start : start + 1000])
        for row in rows.only("probe_id", "day", packed):
            found[(row.probe_id, row.day)] = row
    return found


# --- the periodic task --------------------------------------------------------------------------


def roll_minutes(now: datetime, lookback: timedelta = LOOKBACK) -> int:
    """``RecentMinute`` rows of the completed minutes in the lookback, from the raw results."""
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
    for (probe_id, minute), bucket in buckets.items():
        ordered = sorted(bucket["latencies"])
        rows.append(
            RecentMinute(
                probe_id=probe_id,
                minute=minute,
                **bucket["counts"],
                **{name: exact_percentile(ordered, share) for name, share in SHARES.items()},
                **dict(zip(BIN_FIELDS, histogram_of(ordered), strict=True)),
            )
        )
    if rows:
        RecentMinute.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["probe", "minute"],
            update_fields=_MINUTE_FIELDS,
        )
    return len(rows)


def roll_hours(now: datetime, lookback: timedelta = LOOKBACK) -> int:
    """The hours the lookback touched, summed from their minutes (in the database: counts and
    histogram bins) into their day rows; how many hour points were written."""
    hour = floor(floor(now, Period.MINUTE) - lookback, Period.HOUR)
    end_hour = floor(now, Period.HOUR) + PERIOD_LENGTH[Period.HOUR]
    summed = (*COUNTED, *BIN_FIELDS)
    sums = {f"sum_{name}": Sum(name) for name in summed}
    hours: dict[tuple[int, datetime], Point | None] = {}
    while hour < end_hour:
        minutes = RecentMinute.objects.filter(
            minute__gte=hour, minute__lt=hour + PERIOD_LENGTH[Period.HOUR]
        )
        rows = minutes.order_by().values("probe_id").annotate(**sums)
        for probe_id, *values in rows.values_list("probe_id", *sums):
            counts, histogram = values[: len(COUNTED)], values[len(COUNTED) :]
            point = Point(*counts, histogram=histogram)
            for name, share in SHARES.items():
                setattr(point, name, histogram_percentile(histogram, share))
            hours[(probe_id, hour)] = point
        hour += PERIOD_LENGTH[Period.HOUR]
    return store_hours(hours)


def store_hours(hours: dict[tuple[int, datetime], Point | None]) -> int:
    """Hour points (by check and hour start) set in their day rows, whose columns are
    recomputed from the day's 24 hours; how many were written."""
    if not hours:
        return 0
    with transaction.atomic():
        keys = {(probe_id, hour.astimezone(UTC).date()) for probe_id, hour in hours}
        stored = _day_rows(keys, "hours")
        changed: dict[tuple[int, date], list[Point | None]] = {}
        for (probe_id, hour), point in hours.items():
            key = (probe_id, hour.astimezone(UTC).date())
            if key not in changed:
                existing = stored.get(key)
                changed[key] = decode(existing and existing.hours, HOURS_PER_DAY, True)
            changed[key][hour.astimezone(UTC).hour] = point
        rows = []
        for (probe_id, day), points in changed.items():
            whole_day = merge(points) or Point()
            rows.append(
                Rollup(
                    probe_id=probe_id, day=day, hours=encode(points, True), **_columns(whole_day)
                )
            )
        Rollup.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=_DAY_FIELDS,
            batch_size=500,
        )
    return len(hours)


def pack_minutes(now: datetime, lookback: timedelta = LOOKBACK) -> int:
    """Minutes of hours past the lookback moved into their day rows; how many were moved."""
    cutoff = floor(floor(now, Period.MINUTE) - lookback, Period.HOUR)
    with transaction.atomic():
        past = RecentMinute.objects.select_for_update().filter(minute__lt=cutoff)
        by_day: dict[tuple[int, date], list[tuple[datetime, Point]]] = defaultdict(list)
        for probe_id, minute, point in _minute_values(past):
            by_day[(probe_id, minute.astimezone(UTC).date())].append((minute, point))
        if not by_day:
            return 0
        stored = _day_rows(set(by_day), "minutes")
        rows = []
        for (probe_id, day), minutes in by_day.items():
            existing = stored.get((probe_id, day))
            points = decode(existing and existing.minutes, MINUTES_PER_DAY, False)
            for minute, point in minutes:
                at = minute.astimezone(UTC)
                points[at.hour * 60 + at.minute] = point
            rows.append(Rollup(probe_id=probe_id, day=day, minutes=encode(points, False)))
        # A day without a row yet (its hours were never rolled) gets one; the next roll_hours
        # or a rebuild fills its columns.
        Rollup.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["minutes"],
            batch_size=500,
        )
        # The same rows (locked above; the roll-up only rewrites minutes inside its lookback).
        moved, _ = RecentMinute.objects.filter(minute__lt=cutoff).delete()
    return moved


def rollup(now: datetime | None = None, lookback: timedelta = LOOKBACK) -> dict[str, int]:
    """The periodic task (every minute): minutes, hours and days, then packing; how many of
    each it wrote."""
    now = now or timezone.now()
    return {
        "minute": roll_minutes(now, lookback),
        "hour": roll_hours(now, lookback),
        "packed": pack_minutes(now, lookback),
    }


def prune(now: datetime | None = None) -> dict[str, int]:
    """The periodic task (hourly): what is past each level's retention, dropped; how many raw
    results, days' minutes, days' hours and days."""
    now = now or timezone.now()

    def before(name: str, default: timedelta) -> date:
        """The first day still (partly) inside the retention."""
        return (now - retention(name, default)).astimezone(UTC).date()

    deleted = {}
    deleted["results"], _ = Result.objects.filter(
        started_at__lt=now - retention("RESULT_RETENTION", RESULT_RETENTION)
    ).delete()
    rows = Rollup.objects.all()
    day_cutoff = before("DAY_RETENTION", DAY_RETENTION)
    days_gone, _ = rows.filter(day__lt=day_cutoff).delete()
    hour_cutoff = before("HOUR_RETENTION", HOUR_RETENTION)
    deleted["hour"] = rows.filter(day__lt=hour_cutoff).exclude(hours=b"").update(hours=b"")
    minute_cutoff = before("MINUTE_RETENTION", MINUTE_RETENTION)
    deleted["minute"] = rows.filter(day__lt=minute_cutoff).exclude(minutes=b"").update(minutes=b"")
    RecentMinute.objects.filter(minute__lt=day_start(minute_cutoff)).delete()
    deleted["day"] = days_gone
    return deleted


# --- reading points back ------------------------------------------------------------------------


def points(
    check_id: int, period: str, since: datetime, until: datetime
) -> Iterator[tuple[datetime, Point]]:
    """(bucket start, point) of one check's buckets in [since, until), oldest first, skipping
    buckets in which nothing ran: days from the columns, hours and minutes unpacked (and the
    minutes not packed yet from their rows)."""
    rows = Rollup.objects.filter(
        Rollup.days_of(check_id, since.astimezone(UTC).date(), until.astimezone(UTC).date())
    ).order_by("pk")
    if period == Period.DAY:
        for row in rows.defer("hours", "minutes"):
            start = day_start(row.day)
            if since <= start < until and row.total:
                yield start, _point(row)
        return
    step = PERIOD_LENGTH[period]
    slots, packed = (
        (HOURS_PER_DAY, "hours") if period == Period.HOUR else (MINUTES_PER_DAY, "minutes")
    )
    recent: dict[datetime, Point] = {}
    if period == Period.MINUTE:
        recent = {
            row.minute: _point(row)
            for row in RecentMinute.objects.filter(
                probe_id=check_id, minute__gte=since, minute__lt=until
            )
        }
    for row in rows.only("day", packed):
        start = day_start(row.day)
        for index, point in enumerate(decode(getattr(row, packed), slots, period == Period.HOUR)):
            at = start + index * step
            point = recent.pop(at, None) or point
            if point is not None and since <= at < until:
                yield at, point
    yield from sorted(recent.items(), key=lambda item: item[0])
