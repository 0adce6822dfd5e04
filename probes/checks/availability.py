"""Probe checks as a source of up/down history for monitoring's SLOs, reports and status pages
(``monitoring.availability``), read from the rollups without unpacking more than asked for.

Days come from the day rows' columns, hours from their packed hours, minutes from their packed
minutes plus the ``RecentMinute`` rows not packed yet (which win: they are the fresher copy).
Latency thresholds are the histogram's bin edges, so "runs faster than 250 ms" is an exact
count for days, hours and recent minutes. Packed minutes keep percentiles but no histogram
(that is what keeps a year of a check in tens of kilobytes); for them the count is the
largest share the percentiles prove: all runs when p99 is under the threshold, 95 % when p95
is, half when p50 is, none otherwise — never more than truly were fast.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

import numpy as np
from django.db.models import Q

from monitoring.availability import STEPS, Counts, Source, Target, buckets, register
from probes.checks.models import Check
from probes.checks.points import (
    HOURS_PER_DAY,
    MINUTES_PER_DAY,
    Point,
    decode_columns,
    decode_rows,
)
from probes.checks.results import BIN_FIELDS, HISTOGRAM_EDGES, RecentMinute, Rollup, unpack

# Enough checks per query that a status page of 500 components costs a handful of queries,
# few enough that the OR of key ranges stays a cheap plan.
_CHUNK = 200


def _fast(histogram: Sequence[int], latency_ms: int) -> int:
    """Runs below the threshold: the bins whose upper edge is at most the threshold."""
    return sum(histogram[: HISTOGRAM_EDGES.index(latency_ms) + 1])


def _fast_from_row(row: tuple[int, ...], latency_ms: int) -> int:
    """A packed minute (no histogram): the share its percentiles prove. The row holds p50 + 1
    (0: no latency), then the steps up to p95 and p99."""
    if not row[4]:
        return 0
    p50 = row[4] - 1
    p95 = p50 + row[5]
    p99 = p95 + row[6]
    ran = row[0] + row[1] + row[2]
    for value, share in ((p99, 1.0), (p95, 0.95), (p50, 0.5)):
        if value < latency_ms:
            return int(ran * share)
    return 0


def _fast_minutes(columns: np.ndarray, latency_ms: int) -> np.ndarray:
    """``_fast_from_row`` for every packed minute at once."""
    up, degraded, down, _, p50_plus_one, step95, step99 = columns[:7].astype(np.int64)
    ran = (up + degraded + down).astype(np.float64)
    p50 = p50_plus_one - 1
    p95 = p50 + step95
    p99 = p95 + step99
    fast = np.where(
        p99 < latency_ms,
        ran,
        np.where(
            p95 < latency_ms,
            np.floor(ran * 0.95),
            np.where(p50 < latency_ms, np.floor(ran * 0.5), 0.0),
        ),
    )
    return np.where(p50_plus_one > 0, fast, 0.0)


def _counts(point: Point | None, latency_ms: int | None) -> Counts | None:
    """A day's or a recent minute's counts (both keep their histogram)."""
    if point is None or not (point.up or point.degraded or point.down):
        return None
    fast = None if latency_ms is None else _fast(point.histogram, latency_ms)
    return Counts(point.up, point.degraded, point.down, fast)


class ProbeSource(Source):
    kind = "probe"
    label = "Probe checks"
    latency_thresholds = HISTOGRAM_EDGES

    def targets(
        self,
        *,
        service_ids: Collection[int] | None = None,
        target_ids: Collection[int] | None = None,
    ) -> list[Target]:
        checks = Check.objects.select_related("service").order_by("service__name", "name")
        if service_ids is not None:
            checks = checks.filter(service_id__in=list(service_ids))
        if target_ids is not None:
            checks = checks.filter(id__in=list(target_ids))
        return [
            Target(
                self.kind,
                check.id,
                check.name,
                check.service_id,
                check.service.team_id,
                interval=check.interval,
            )
            for check in checks.only("id", "name", "interval", "service__team_id", "service__name")
        ]

    def counts(
        self,
        target_ids: Collection[int],
        start: datetime,
        end: datetime,
        step: str,
        *,
        latency_ms: int | None = None,
    ) -> dict[int, list[Counts | None]]:
        if latency_ms is not None and latency_ms not in HISTOGRAM_EDGES:
            raise ValueError(f"latency thresholds are one of {HISTOGRAM_EDGES} ms")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        size = buckets(start, end, step)
        found: dict[int, list[Counts | None]] = {pk: [None] * size for pk in target_ids}
        if not size or not found:
            return found
        first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
        ids = sorted(found)
        for offset in range(0, len(ids), _CHUNK):
            chunk = ids[offset : offset + _CHUNK]
            rows = Rollup.objects.filter(
                reduce(or_, (Rollup.days_of(pk, first_day, last_day) for pk in chunk), Q())
            )
            self._fill(found, rows, start, end, step, latency_ms)
        if step == "minute":
            self._fill_recent(found, start, end, latency_ms)
        return found

    def count_columns(
        self,
        target_ids: Collection[int],
        start: datetime,
        end: datetime,
        step: str,
        *,
        latency_ms: int | None = None,
    ) -> dict[int, np.ndarray]:
        """``counts`` as arrays sliced out of the packed columns (fast runs worked out the same
        way, by numpy): time-slice SLOs' months of minutes read without a Python step per
        minute."""
        if latency_ms is not None and latency_ms not in HISTOGRAM_EDGES:
            raise ValueError(f"latency thresholds are one of {HISTOGRAM_EDGES} ms")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        size = buckets(start, end, step)
        found = {pk: np.zeros((4, size)) for pk in target_ids}
        if not size or not found:
            return found
        first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
        length = STEPS[step]
        bins = None if latency_ms is None else HISTOGRAM_EDGES.index(latency_ms) + 1
        ids = sorted(found)
        for offset in range(0, len(ids), _CHUNK):
            chunk = ids[offset : offset + _CHUNK]
            rows = Rollup.objects.filter(
                reduce(or_, (Rollup.days_of(pk, first_day, last_day) for pk in chunk), Q())
            )
            if step == "day":
                fields = ("probe_id", "day", "up", "degraded", "down", "histogram")
                for probe_id, day, up, degraded, down, histogram in rows.values_list(*fields):
                    fast = 0 if bins is None else sum(unpack(histogram)[:bins])
                    found[probe_id][:, (day - first_day).days] = (up, degraded, down, fast)
                continue
            hours = step == "hour"
            slots = HOURS_PER_DAY if hours else MINUTES_PER_DAY
            for probe_id, day, blob in rows.values_list("probe_id", "day", step + "s"):
                # Up, degraded and down; the latencies (minutes) or histogram (hours) if asked.
                wanted = 3 if bins is None else 7 + (bins if hours else 0)
                columns = decode_columns(blob, hours, wanted)
                if columns is None:
                    continue
                day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                low = max(0, (start - day_start) // length)
                high = min(slots, columns.shape[1], -(-(end - day_start) // length))
                at = (day_start - start) // length
                if low >= high:
                    continue
                part = columns[:, low:high]
                into = found[probe_id]
                into[:3, at + low : at + high] = part[:3]
                if bins is not None:
                    into[3, at + low : at + high] = (
                        part[7 : 7 + bins].sum(axis=0) if hours else _fast_minutes(part, latency_ms)
                    )
        if step == "minute":
            recent = RecentMinute.objects.filter(
                probe_id__in=ids, minute__gte=start, minute__lt=end
            )
            fields = ("probe_id", "minute", "up", "degraded", "down", *BIN_FIELDS)
            for probe_id, minute, up, degraded, down, *histogram in recent.values_list(*fields):
                fast = 0 if bins is None else sum(histogram[:bins])
                found[probe_id][:, (minute - start) // length] = (up, degraded, down, fast)
        return found

    def _fill(
        self,
        found: dict[int, list[Counts | None]],
        rows: Any,
        start: datetime,
        end: datetime,
        step: str,
        latency_ms: int | None,
    ) -> None:
        length = STEPS[step]
        if step == "day":
            first = start.date()
            if latency_ms is None:  # the counts alone: no histogram to read or unpack
                fields = ("probe_id", "day", "up", "degraded", "down")
                for probe_id, day, up, degraded, down in rows.values_list(*fields):
                    if up or degraded or down:
                        found[probe_id][(day - first).days] = Counts(up, degraded, down)
                return
            fields = ("probe_id", "day", "up", "degraded", "down", "unknown", "histogram")
            for probe_id, day, up, degraded, down, unknown, histogram in rows.values_list(*fields):
                point = Point(up, degraded, down, unknown, histogram=unpack(histogram))
                found[probe_id][(day - first).days] = _counts(point, latency_ms)
            return
        slots, packed = (HOURS_PER_DAY, "hours") if step == "hour" else (MINUTES_PER_DAY, "minutes")
        hours = step == "hour"
        for probe_id, day, blob in rows.values_list("probe_id", "day", packed):
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            # Only the slots of this day that fall inside [start, end).
            low = max(0, (start - day_start) // length)
            high = min(slots, -(-(end - day_start) // length))
            offset = (day_start - start) // length
            series = found[probe_id]
            # Raw rows, not points: a month of minutes is 44,640 of them per check.
            for slot, row in enumerate(decode_rows(blob, hours)[low:high], start=low):
                up, degraded, down = row[0], row[1], row[2]
                if not (up or degraded or down):
                    continue
                fast = None
                if latency_ms is not None:
                    fast = _fast(row[7:], latency_ms) if hours else _fast_from_row(row, latency_ms)
                series[offset + slot] = Counts(up, degraded, down, fast)

    def _fill_recent(
        self,
        found: dict[int, list[Counts | None]],
        start: datetime,
        end: datetime,
        latency_ms: int | None,
    ) -> None:
        recent = RecentMinute.objects.filter(
            probe_id__in=list(found), minute__gte=start, minute__lt=end
        )
        fields = ("probe_id", "minute", "up", "degraded", "down", "unknown", *BIN_FIELDS)
        for probe_id, minute, up, degraded, down, unknown, *histogram in recent.values_list(
            *fields
        ):
            point = Point(up, degraded, down, unknown, histogram=list(histogram))
            found[probe_id][(minute - start) // STEPS["minute"]] = _counts(point, latency_ms)

    def states(self, target_ids: Collection[int]) -> dict[int, str]:
        rows = Check.objects.filter(id__in=list(target_ids)).values_list("id", "state", "paused")
        return {pk: "paused" if paused else state for pk, state, paused in rows}


def register_source() -> None:
    register(ProbeSource())
