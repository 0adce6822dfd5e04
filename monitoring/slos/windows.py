"""SLO windows: rolling (the last N days) or calendar (this week, month or quarter in the SLO's
time zone), and budgeting methods. A leaf module: the model takes its choices here.

Every boundary is a whole minute: the budget counts whole minutes, and the minute in progress
is left out until it is over (its probe runs and samples are not all in yet).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.db import models


class Window(models.TextChoices):
    ROLLING_7D = "rolling_7d", "Rolling 7 days"
    ROLLING_28D = "rolling_28d", "Rolling 28 days"
    ROLLING_30D = "rolling_30d", "Rolling 30 days"
    ROLLING_90D = "rolling_90d", "Rolling 90 days"
    CALENDAR_WEEK = "calendar_week", "Calendar week (from Monday)"
    CALENDAR_MONTH = "calendar_month", "Calendar month"
    CALENDAR_QUARTER = "calendar_quarter", "Calendar quarter"


ROLLING_DAYS = {
    Window.ROLLING_7D: 7,
    Window.ROLLING_28D: 28,
    Window.ROLLING_30D: 30,
    Window.ROLLING_90D: 90,
}


class Budgeting(models.TextChoices):
    OCCURRENCES = "occurrences", "Occurrences (good events / all events)"
    TIMESLICES = "timeslices", "Time slices (good slices / all slices)"


# Slice lengths that divide an hour, so slices never straddle an hour (or a day).
SLICE_MINUTES = (1, 2, 5, 10, 15, 30, 60)


def is_rolling(window: str) -> bool:
    return window in ROLLING_DAYS


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _local_start(window: str, local: datetime) -> datetime:
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == Window.CALENDAR_WEEK:
        return midnight - timedelta(days=midnight.weekday())
    if window == Window.CALENDAR_MONTH:
        return midnight.replace(day=1)
    return midnight.replace(day=1, month=(midnight.month - 1) // 3 * 3 + 1)


def _next_local_start(window: str, start: datetime) -> datetime:
    if window == Window.CALENDAR_WEEK:
        return start + timedelta(days=7)
    months = 1 if window == Window.CALENDAR_MONTH else 3
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    # Wall-clock arithmetic, then the zone's offset on that date (DST-aware).
    return local.replace(tzinfo=tz).astimezone(UTC)


def bounds(window: str, time_zone: str, now: datetime) -> tuple[datetime, datetime]:
    """The window ``now`` lies in, as [start, end) in UTC. A rolling window ends at ``now``'s
    minute; a calendar window at the end of its period (in the future)."""
    end = floor_minute(now)
    if is_rolling(window):
        return end - timedelta(days=ROLLING_DAYS[window]), end
    tz = zone(time_zone)
    local = end.astimezone(tz).replace(tzinfo=None)
    start = _local_start(window, local)
    return _utc(start, tz), _utc(_next_local_start(window, start), tz)


def length(window: str, time_zone: str, now: datetime) -> timedelta:
    start, end = bounds(window, time_zone, now)
    return end - start
