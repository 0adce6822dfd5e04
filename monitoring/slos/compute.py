"""Good and total of an SLO over any range of whole minutes, read at the coarsest exact step.

A range is cut at hour and day boundaries (UTC): whole days in the middle, hours and minutes
only at its edges, so 90 days cost two partial days of minutes and hours plus the days.
Finished days are remembered per SLO (``SLODay``): their good and total, read in one query,
and their minutes once a window's edge needed them, so later evaluations read neither the
day's rollups again nor 1,440 minutes of it, and time slices outlive the 14 days the probes
keep minutes for.

Budgeting by occurrences counts the indicator's own unit (runs, events, minutes); by time
slices, each slice of ``timeslice_minutes`` (aligned to the hour) is good when its good share
reaches the slice target, and counts once. A slice or bucket in which nothing was measured
counts neither way.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, router, transaction

from monitoring.slos.registry import Indicator, Tally
from monitoring.slos.windows import Budgeting
from tocsin.db import bulk

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
STEPS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
MINUTES_PER_DAY = 1440
# A day is remembered once it ended this long ago: probe rollups are final minutes after a
# minute ends, metric samples once rolled up (an hour); a margin on top.
SETTLE = timedelta(hours=2)
EMPTY = Tally(0.0, 0.0)
# Float noise must not turn a slice that meets its target into a bad one.
EPSILON = 1e-9
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Settled days waiting to be remembered with the rest of an evaluation (``reading_together``).
_PENDING_DAYS: ContextVar[list[Any] | None] = ContextVar("slo_pending_days", default=None)


def add(a: Tally, b: Tally | None) -> Tally:
    return a if b is None else Tally(a.good + b.good, a.total + b.total)


def ceil_to(moment: datetime, length: timedelta) -> datetime:
    rest = (moment - EPOCH) % length
    return moment + (length - rest) if rest else moment


def floor_to(moment: datetime, length: timedelta) -> datetime:
    return moment - (moment - EPOCH) % length


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def segments(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) cut into (step, from, to) pieces, each aligned to its step: minutes up to
    the first hour, hours up to the first day, days, then hours and minutes again."""
    out: list[tuple[str, datetime, datetime]] = []
    if end <= start:
        return out
    head_hour, tail_hour = ceil_to(start, HOUR), floor_to(end, HOUR)
    if head_hour >= tail_hour:
        return [("minute", start, end)]
    head_day, tail_day = ceil_to(start, DAY), floor_to(end, DAY)
    if head_day > tail_day:  # inside one day
        head_day = tail_day = tail_hour
    pieces = [
        ("minute", start, head_hour),
        ("hour", head_hour, head_day),
        ("day", head_day, tail_day),
        ("hour", tail_day, tail_hour),
        ("minute", tail_hour, end),
    ]
    return [(step, a, b) for step, a, b in pieces if a < b]


class Columns:
    """Buckets as numpy arrays (good, total, and whether anything was measured), so sums and
    time-slice counts over months of minutes run in C, and a day of minutes packs into a few
    hundred bytes."""

    __slots__ = ("good", "seen", "total")

    def __init__(self, good: Any, total: Any, seen: Any) -> None:
        self.good = np.asarray(good, dtype=np.float64)
        self.total = np.asarray(total, dtype=np.float64)
        self.seen = np.asarray(seen, dtype=bool)

    @classmethod
    def of(cls, tallies: list[Tally | None]) -> Columns:
        size = len(tallies)
        good, total, seen = np.zeros(size), np.zeros(size), np.zeros(size, dtype=bool)
        for index, tally in enumerate(tallies):
            if tally is not None:
                good[index], total[index], seen[index] = tally.good, tally.total, True
        return cls(good, total, seen)

    def pack(self) -> bytes:
        # Little-endian doubles, then one byte per bucket (the format SLODay rows keep).
        good, total = self.good.astype("<f8"), self.total.astype("<f8")
        seen = self.seen.astype(np.uint8)
        return zlib.compress(good.tobytes() + total.tobytes() + seen.tobytes(), 6)

    @classmethod
    def unpack(cls, blob: bytes) -> Columns:
        raw = zlib.decompress(bytes(blob))
        size = len(raw) // 17
        return cls(
            np.frombuffer(raw, dtype="<f8", count=size),
            np.frombuffer(raw, dtype="<f8", count=size, offset=8 * size),
            np.frombuffer(raw, dtype=np.uint8, count=size, offset=16 * size),
        )

    def part(self, low: int, high: int) -> Columns:
        """Buckets [low, high) (views, nothing copied)."""
        return Columns(self.good[low:high], self.total[low:high], self.seen[low:high])

    def sum(self, low: int, high: int) -> Tally:
        return Tally(
            math.fsum(self.good[low:high].tolist()), math.fsum(self.total[low:high].tolist())
        )

    def tallies(self, low: int, high: int) -> list[Tally | None]:
        good, total = self.good[low:high].tolist(), self.total[low:high].tolist()
        return [
            Tally(good[i], total[i]) if seen else None
            for i, seen in enumerate(self.seen[low:high].tolist())
        ]

    def slices(self, per: int, target: float) -> tuple[np.ndarray, np.ndarray]:
        """Good and measured slices of ``per`` buckets before each slice (prefix counts, so
        any run of slices costs two subtractions). A slice is measured when anything was,
        and good when its good share reaches ``target``."""
        good, total = self.good, self.total
        if per > 1:
            whole = len(total) // per * per
            good = good[:whole].reshape(-1, per).sum(axis=1)
            total = total[:whole].reshape(-1, per).sum(axis=1)
        measured = total > 0
        met = measured & (good >= target * total - EPSILON)
        return (
            np.concatenate(([0], np.cumsum(met, dtype=np.int64))),
            np.concatenate(([0], np.cumsum(measured, dtype=np.int64))),
        )


class Counter:
    """Counts one SLO's good and total for ranges up to ``now`` (reads are remembered for the
    life of the counter, so the overlapping windows of one evaluation pay once)."""

    def __init__(
        self, slo: Any, now: datetime, *, indicator: Indicator | None = None, config: Any = None
    ) -> None:
        self.slo = slo
        self.now = now
        self.indicator = indicator or slo.indicator
        # Parsed without looking the service's checks up again: saving validated them.
        self.config = config if config is not None else slo.config(validate=False)
        self.slices = slo.budgeting == Budgeting.TIMESLICES
        self.slice = timedelta(minutes=slo.timeslice_minutes or 1)
        self.slice_target = slo.slice_target
        self._reader = self.indicator.reader(slo.service, self.config)
        self._reads: dict[tuple[str, datetime, datetime], Columns] = {}
        self._days: dict[date, Tally] = {}
        self._slice_counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Remembered hours and minutes of settled days, packed: {("minute", day): blob}.
        self._packed: dict[tuple[str, date], bytes] = {}
        # The SLODay rows this counter made (stored at once, or at the end of an evaluation).
        self._rows: dict[date, dict[str, Any]] = {}

    # --- reading the indicator ---------------------------------------------------------------

    def _columns(self, step: str, start: datetime, end: datetime) -> tuple[Columns, int]:
        """The buckets of [start, end) and the index of ``start`` in them. Minutes and hours
        are read for whole UTC days (a source reads a day's minutes in one piece anyway), and
        a settled day's minutes once only: then from ``SLODay``."""
        if step == "day":
            key = (step, start, end)
            if key not in self._reads:
                self._reads[key] = _as_columns(self._reader(start, end, step))
            return self._reads[key], 0
        first, last = floor_to(start, DAY), ceil_to(end, DAY)
        key = (step, first, last)
        if key not in self._reads:
            if last - first == DAY and self.settled(first.date()):
                self._reads[key] = self._settled(step, first.date())
            else:
                self._reads[key] = _as_columns(self._reader(first, last, step))
        return self._reads[key], (start - first) // STEPS[step]

    def read(self, step: str, start: datetime, end: datetime) -> list[Tally | None]:
        """The indicator's buckets of ``step`` in [start, end); None where nothing was measured."""
        columns, low = self._columns(step, start, end)
        return columns.tallies(low, low + (end - start) // STEPS[step])

    def _sum(self, step: str, start: datetime, end: datetime) -> Tally:
        if end <= start:
            return EMPTY
        if step != "day" and floor_to(start, DAY) != floor_to(end - STEPS[step], DAY):
            middle = ceil_to(start + MINUTE, DAY)
            return add(self._sum(step, start, middle), self._sum(step, middle, end))
        columns, low = self._columns(step, start, end)
        return columns.sum(low, low + (end - start) // STEPS[step])

    def raw(self, start: datetime, end: datetime) -> Tally:
        """Good and total over [start, end) read from the indicator (no remembered days)."""
        if not self.slices:
            out = EMPTY
            for step, a, b in segments(start, end):
                out = add(out, self._sum(step, a, b))
            return out
        start, end = ceil_to(start, self.slice), floor_to(end, self.slice)
        per = self.slice // MINUTE
        good = total = 0
        at = start
        while at < end:  # a day at a time: minutes come in days
            upto = min(end, floor_to(at, DAY) + DAY)
            columns, low = self._columns("minute", at, upto)
            good_before, measured_before = self._slices(columns)
            first, last = low // per, (low + (upto - at) // MINUTE) // per
            good += int(good_before[last] - good_before[first])
            total += int(measured_before[last] - measured_before[first])
            at = upto
        return Tally(float(good), float(total))

    def _slices(self, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        """A day's prefix slice counts (``Columns.slices``), worked out once per day read."""
        key = id(columns)
        if key not in self._slice_counts:
            self._slice_counts[key] = columns.slices(self.slice // MINUTE, self.slice_target)
        return self._slice_counts[key]

    # --- remembered days ---------------------------------------------------------------------

    def settled(self, day: date) -> bool:
        return day_start(day) + DAY + SETTLE <= self.now

    def days(self, first: date, last: date) -> dict[date, Tally]:
        """Tallies of the settled days from ``first`` to ``last`` (inclusive): remembered ones
        read in one query, the others computed (contiguous runs in one read) and stored."""
        from monitoring.models import SLODay

        wanted = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        wanted = [d for d in wanted if self.settled(d) and d not in self._days]
        if not wanted:
            return self._days
        if self.slo.pk:
            rows = SLODay.objects.filter(slo=self.slo, day__gte=wanted[0], day__lte=wanted[-1])
            fields = ("day", "good", "total", "hours", "minutes")
            for day, good, total, hours, minutes in rows.values_list(*fields):
                self._days[day] = Tally(good, total)
                if hours:
                    self._packed[("hour", day)] = hours
                if minutes:
                    self._packed[("minute", day)] = minutes
        missing = [d for d in wanted if d not in self._days]
        for run in _runs(missing):
            if self.slices:
                self._count_slices(run)
            else:
                start = day_start(run[0])
                columns = self._columns("day", start, start + len(run) * DAY)[0]
                for index, day in enumerate(run):
                    self._days[day] = columns.sum(index, index + 1)
        if missing and self.slo.pk:
            rows = [
                {
                    "slo_id": self.slo.pk,
                    "day": d,
                    "good": self._days[d].good,
                    "total": self._days[d].total,
                    "hours": self._packed.get(("hour", d), b""),
                    "minutes": self._packed.get(("minute", d), b""),
                }
                for d in missing
            ]
            self._rows.update((row["day"], row) for row in rows)
            _store(rows)
        return self._days

    def _count_slices(self, run: list[date]) -> None:
        """Good and measured slices of each of these consecutive settled days, from one read of
        their minutes and counted for all days at once: 90 days of a new SLO cost one query and
        a few array operations, not 90 days of per-day reads. Each day's minutes are packed to
        be remembered with its tally (a rolling window's start needs them long after the probes
        dropped their minutes)."""
        unread = [d for d in run if ("minute", d) not in self._packed]
        for day in run:
            if day not in unread:
                self._days[day] = self.raw(day_start(day), day_start(day) + DAY)
        if not unread:
            return
        first, count = unread[0], (unread[-1] - unread[0]).days + 1
        whole = _as_columns(
            self._reader(day_start(first), day_start(first) + count * DAY, "minute")
        )
        good, measured = _slices_per_day(whole, count, self.slice // MINUTE, self.slice_target)
        for day in unread:
            index = (day - first).days
            self._days[day] = Tally(float(good[index]), float(measured[index]))
            low = index * MINUTES_PER_DAY
            self._packed[("minute", day)] = whole.part(low, low + MINUTES_PER_DAY).pack()

    def _settled(self, step: str, day: date) -> Columns:
        """A settled day's hours or minutes: remembered, or read once and remembered."""
        from monitoring.models import SLODay

        field = "minutes" if step == "minute" else "hours"
        if (step, day) not in self._packed and day not in self._days and self.slo.pk:
            row = SLODay.objects.filter(slo=self.slo, day=day).values_list(field).first()
            if row and row[0]:
                self._packed[(step, day)] = row[0]
        if (step, day) in self._packed:
            return Columns.unpack(self._packed[(step, day)])
        start = day_start(day)
        columns = _as_columns(self._reader(start, start + DAY, step))
        self._packed[(step, day)] = packed = columns.pack()
        if self.slo.pk:
            self._reads[(step, start, start + DAY)] = columns
            self.days(day, day)  # the day's row first (its tally), then its hours or minutes
            if day in self._rows and _PENDING_DAYS.get() is not None:
                self._rows[day][field] = packed  # not stored yet: stored with it
            else:
                rows = SLODay.objects.filter(slo=self.slo, day=day, **{field: b""})
                rows.update(**{field: packed})
        return columns

    # --- ranges ------------------------------------------------------------------------------

    def range(self, start: datetime, end: datetime) -> Tally:
        """Good and total over [start, end), never past ``now``'s minute."""
        end = min(end, floor_to(self.now, MINUTE))
        if end <= start:
            return EMPTY
        first_day, last_day = ceil_to(start, DAY), floor_to(end, DAY)
        if first_day >= last_day:
            return self.raw(start, end)
        # From the first (partial) day: its remembered minutes come with the same query.
        known = self.days(floor_to(start, DAY).date(), (last_day - DAY).date())
        out = self.raw(start, first_day)
        day = first_day
        pending: datetime | None = None  # start of a run of unsettled days
        while day < last_day:
            tally = known.get(day.date()) if self.settled(day.date()) else None
            if tally is None:
                pending = pending or day
            else:
                if pending is not None:
                    out = add(out, self.raw(pending, day))
                    pending = None
                out = add(out, tally)
            day += DAY
        if pending is not None:
            out = add(out, self.raw(pending, last_day))
        return add(out, self.raw(last_day, end))

    def lookback(self, upto: datetime, span: timedelta) -> Tally:
        """Good and total over the last ``span`` before ``upto`` (burn rates). With time
        slices, over the whole slices that ended last, at least one: a 5-minute (or, misaligned,
        a 1-hour) range may hold no whole 10-minute (1-hour) slice, and would read nothing."""
        if not self.slices:
            return self.range(upto - span, upto)
        end = floor_to(upto, self.slice)
        whole = max(1, -(-span // self.slice))
        return self.range(end - whole * self.slice, end)

    def cumulative(
        self, start: datetime, end: datetime, step: timedelta
    ) -> list[tuple[datetime, Tally]]:
        """(moment, good and total from ``start`` to that moment) at every ``step`` boundary
        after ``start`` up to ``end`` (and ``end`` itself): a burn-down chart's points."""
        end = min(end, floor_to(self.now, MINUTE))
        points: list[tuple[datetime, Tally]] = []
        if end - start > DAY:  # every day the chart crosses, in one query
            self.days(ceil_to(start, DAY).date(), floor_to(end, DAY).date())
        running, at = EMPTY, start
        while at < end:
            following = min(ceil_to(at + MINUTE, step), end)
            running = add(running, self.range(at, following))
            points.append((following, running))
            at = following
        return points


@contextmanager
def reading_together(slos: list[Any], now: datetime) -> Iterator[None]:
    """Each indicator's shared reads (``Indicator.batch``) for these SLOs, e.g. the probe
    checks of every SLO's service read once for the day in progress; the days they settle
    are remembered together at the end (one transaction, not one per SLO)."""
    from monitoring.slos import registry

    by_kind: dict[str, list[Any]] = {}
    for slo in slos:
        by_kind.setdefault(slo.sli_kind, []).append(slo)
    pending: list[Any] = []
    token = _PENDING_DAYS.set(pending)
    try:
        with ExitStack() as stack:
            for kind, group in by_kind.items():
                indicator = registry.get(kind)
                if indicator is not None:
                    stack.enter_context(indicator.batch(group, now))
            yield
    finally:
        _PENDING_DAYS.reset(token)
        _store(pending)


def _as_columns(read: Any) -> Columns:
    """A reader's answer: Columns already (the probe kinds), or one tally per bucket."""
    return read if isinstance(read, Columns) else Columns.of(read)


def _slices_per_day(
    columns: Columns, days: int, per: int, target: float
) -> tuple[np.ndarray, np.ndarray]:
    """Good and measured slices of each whole day of minutes in ``columns`` (as
    ``Columns.slices`` counts them within a day), for all days in one pass."""
    shape = (days, MINUTES_PER_DAY // per, per)
    good = columns.good.reshape(shape).sum(axis=2)
    total = columns.total.reshape(shape).sum(axis=2)
    measured = total > 0
    met = measured & (good >= target * total - EPSILON)
    return met.sum(axis=1), measured.sum(axis=1)


def _runs(days: list[date]) -> list[list[date]]:
    runs: list[list[date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _store(rows: list[dict[str, Any]]) -> None:
    """Remember these days (``SLODay`` rows as column values): at once, or with the rest of an
    evaluation (``reading_together``)."""
    pending = _PENDING_DAYS.get()
    if pending is not None:
        pending.extend(rows)
        return
    if not rows:
        return
    if not _insert(rows):  # an SLO was deleted meanwhile: keep the others' days
        by_slo: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            by_slo.setdefault(row["slo_id"], []).append(row)
        if len(by_slo) > 1:
            for group in by_slo.values():
                _insert(group)


def _insert(rows: list[dict[str, Any]]) -> bool:
    from monitoring.models import SLODay

    try:
        with transaction.atomic(using=router.db_for_write(SLODay)):
            # Days another evaluation remembered meanwhile are skipped (the same figures).
            bulk.insert_rows(SLODay, rows, skip_conflicts=("slo", "day"))
    except IntegrityError:
        return False
    return True


def forget_days(slo: Any) -> int:
    """Drop an SLO's remembered days (its indicator or budgeting changed)."""
    from monitoring.models import SLODay

    return SLODay.objects.filter(slo=slo).delete()[0]
