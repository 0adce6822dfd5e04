"""The minutes of an SLA month: its bounds, its maintenance, and which minutes were down.

A month runs from the first midnight of the month to the first midnight of the next, in the
report's time zone, and is counted in real elapsed minutes: March 2026 in Europe/Berlin lasts
743 hours (44,580 minutes) because 02:00-03:00 on the 29th never happens; October has 745.

Every minute of the month falls in exactly one of four classes, in this order:

1. **maintenance**: a maintenance window of the service is open at the minute's first second
   (one-off windows by their start and end, recurring ones at their local start time in their
   own time zone, for their duration of elapsed time, as ``MaintenanceWindow`` defines them).
   Maintenance minutes do not count for or against availability; they are listed.
2. **unmeasured**: no check of the service finished a run with a verdict (up, degraded, down)
   in the minute — the prober was down, the check paused or not yet created. Not downtime, not
   uptime: shown on its own.
3. **down**: at least one check of the service was down in the minute. A check is down in a
   minute when most of its runs that minute ended down (``down > up + degraded``): one location
   of three failing is that location's network, not the service's outage, while any one
   endpoint of a service failing (one of its checks) is the service failing its users.
   Degraded runs reached the service (slow, not down) and count as good.
4. **up**: measured and not down.

Availability is ``up / (up + down)`` over the measured minutes outside maintenance.

A check that runs less often than once a minute leaves minutes without a run; its verdict then
stands for the minutes until its next run (``Target.interval`` seconds when the source gives
it). Minutes are kept 14 days by default; for older hours, where only hourly rollups remain,
each of the hour's minutes outside maintenance counts as measured and the hour's downtime is
estimated as its length times the largest share of down runs among the service's checks. Such
minutes are counted in ``estimated`` so a reader can tell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitoring.availability import Counts

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's [start, end) in UTC: local midnights of its first day and the next month's."""
    first = month.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC)
    return floor_minute(start), floor_minute(end)


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + HOUR


def occurrences(window: Any, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The (start, end) of a maintenance window's occurrences that overlap [start, end), unclipped.

    Recurring windows resolve their local start time exactly as ``occurrence_at`` does (a start
    skipped by a DST jump resolves with the old offset), so the report and the pipeline agree
    on when a service was under maintenance."""
    if not window.is_recurring:
        begins, ends = window.starts_at, window.ends_at
        if begins and ends and begins < end and ends > start:
            return [(begins, ends)]
        return []
    if window.start_time is None or not window.duration:
        return []
    zone = ZoneInfo(window.time_zone or "UTC")
    day = start.astimezone(zone).date() - timedelta(days=window.duration.days + 1)
    last = end.astimezone(zone).date()
    found = []
    while day <= last:
        if day.weekday() in window.weekdays:
            begins = datetime.combine(day, window.start_time, tzinfo=zone).astimezone(UTC)
            ends = begins + window.duration
            if begins < end and ends > start:
                found.append((begins, ends))
        day += timedelta(days=1)
    return found


def minute_span(start: datetime, begins: datetime, ends: datetime, n: int) -> tuple[int, int]:
    """Indexes [i, j) of the month's minutes whose first second lies in [begins, ends)."""
    first = math.ceil((begins - start).total_seconds() / 60)
    last = math.ceil((ends - start).total_seconds() / 60)
    return max(0, first), min(n, last)


@dataclass
class MinuteTally:
    """How a service's minutes of the month were classified (see the module's docstring)."""

    minutes: int = 0
    maintenance: int = 0
    unmeasured: int = 0
    measured: int = 0
    down: int = 0
    down_in_maintenance: int = 0
    estimated: int = 0

    @property
    def up(self) -> int:
        return self.measured - self.down

    @property
    def availability(self) -> float | None:
        """Percent of measured minutes outside maintenance that were up; None if none was."""
        if not self.measured:
            return None
        return 100.0 * self.up / self.measured

    def as_dict(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "maintenance_minutes": self.maintenance,
            "unmeasured_minutes": self.unmeasured,
            "measured_minutes": self.measured,
            "downtime_minutes": self.down,
            "down_in_maintenance_minutes": self.down_in_maintenance,
            "estimated_minutes": self.estimated,
            "availability": self.availability,
        }


def _verdicts(series: Sequence[Counts | None], hold: int) -> tuple[bytes, bytes, bytes]:
    """One check's minutes as three byte strings of 0/1: a run with a verdict ended in it
    (seen), a verdict stands for it (measured: seen, or within ``hold`` minutes after), and that
    verdict was down. Byte strings so that checks combine as big-integer ORs, not minute loops."""
    if hold <= 1:
        seen = bytes(1 if c is not None and (c.up or c.degraded or c.down) else 0 for c in series)
        down = bytes(1 if c is not None and c.down > c.up + c.degraded else 0 for c in series)
        return seen, seen, down
    seen_at, measured, down = bytearray(len(series)), bytearray(len(series)), bytearray(len(series))
    last_at, last_down = -(10**9), False
    for i, c in enumerate(series):
        if c is not None and (c.up or c.degraded or c.down):
            last_at, last_down = i, c.down > c.up + c.degraded
            seen_at[i] = 1
        elif i - last_at >= hold:
            continue
        measured[i] = 1
        down[i] = last_down
    return bytes(seen_at), bytes(measured), bytes(down)


def _count(mask: int, n: int) -> int:
    return mask.to_bytes(n, "big").count(1) if n else 0


def classify(
    start: datetime,
    n: int,
    maintenance: Iterable[tuple[datetime, datetime]],
    minutes: Sequence[Sequence[Counts | None]],
    hours: Sequence[Sequence[Counts | None]],
    holds: Sequence[int],
) -> MinuteTally:
    """Tally ``n`` minutes from ``start``: ``minutes[k]`` is check k's counts per minute,
    ``hours[k]`` its counts per hour from ``floor_hour(start)``, ``holds[k]`` how many minutes
    one of its verdicts stands for (1 for checks that run every minute)."""
    in_maintenance = bytearray(n)
    for begins, ends in maintenance:
        i, j = minute_span(start, begins, ends, n)
        if j > i:
            in_maintenance[i:j] = b"\x01" * (j - i)
    seen = measured = down = 0
    for series, hold in zip(minutes, holds, strict=True):
        check_seen, check_measured, check_down = _verdicts(series, hold)
        seen |= int.from_bytes(check_seen, "big")
        measured |= int.from_bytes(check_measured, "big")
        down |= int.from_bytes(check_down, "big")
    tally = MinuteTally(minutes=n)
    offset = int((start - floor_hour(start)) / MINUTE)
    estimated = _estimate_hours(
        tally, offset, n, in_maintenance, seen.to_bytes(n, "big") if n else b"", hours
    )
    maintenance_mask = int.from_bytes(in_maintenance, "big")
    outside = int.from_bytes(b"\x01" * n, "big") ^ maintenance_mask
    tally.maintenance = in_maintenance.count(1)
    tally.down_in_maintenance = _count(down & maintenance_mask, n)
    tally.measured = _count((measured | estimated) & outside, n)
    tally.down += _count(down & outside & ~estimated, n)
    tally.unmeasured = n - tally.maintenance - tally.measured
    return tally


def _estimate_hours(
    tally: MinuteTally,
    offset: int,
    n: int,
    in_maintenance: bytearray,
    seen: bytes,
    hours: Sequence[Sequence[Counts | None]],
) -> int:
    """Hours with no minute data of any check but hourly counts: their minutes outside
    maintenance are returned as a mask (measured), and their estimated downtime is added to
    ``tally.down`` and their number to ``tally.estimated``."""
    marked = bytearray(n)
    for h in range((offset + n + 59) // 60):
        i, j = max(0, h * 60 - offset), min(n, (h + 1) * 60 - offset)
        if j <= i or 1 in seen[i:j]:
            continue
        shares = [
            series[h].down / series[h].total
            for series in hours
            if h < len(series) and series[h] is not None and series[h].total
        ]
        if not shares:
            continue
        free = [k for k in range(i, j) if not in_maintenance[k]]
        for k in free:
            marked[k] = 1
        tally.estimated += len(free)
        tally.down += math.floor(len(free) * max(shares) + 0.5)
    return int.from_bytes(marked, "big")
