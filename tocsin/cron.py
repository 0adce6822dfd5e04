"""Schedules people write: cron expressions read on a time zone's wall clock, and time zones.

Cron expressions are evaluated with cronsim (the library Healthchecks.io uses), on the local
wall clock of the given zone, so "30 2 * * *" in Europe/Berlin means 02:30 Berlin time in
winter and summer alike. Across a DST change it behaves as Debian's cron does: a job whose time
is skipped in spring runs right after the gap, and one whose time repeats in autumn runs once.
Heartbeats and backup plans both schedule with these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError

# A cron expression that names no real date ("0 0 30 2 *") never fires; cronsim gives up after
# searching this far ahead, and so do we, rather than looping.
SEARCH_ERRORS = (CronSimError, StopIteration)


def zone(name: str) -> ZoneInfo:
    """The zone by IANA name; a ValidationError (not a crash) for a name the system lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"“{name}” is not a known time zone (e.g. Europe/Berlin).") from None


def validate_timezone(name: str) -> None:
    zone(name)


def validate_cron(expression: str) -> None:
    """Five fields (minute hour day month weekday), as in a crontab; refused when malformed or
    when it never fires (30 February)."""
    if len(expression.split()) != 5:
        raise ValidationError(
            "A cron expression has five fields: minute hour day-of-month month day-of-week."
        )
    try:
        next(CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC)))
    except SEARCH_ERRORS as exc:
        raise ValidationError(f"Not a valid cron expression: {exc or 'it never fires'}.") from None


def next_cron_time(expression: str, tz_name: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``expression`` names on the zone's wall clock,
    returned in UTC."""
    local = after.astimezone(zone(tz_name))
    fired = next(CronSim(expression, local))
    return fired.astimezone(UTC)


def humanize(seconds: float) -> str:
    """A short duration for people: "45 s", "5 min", "2 h 5 min", "3 d"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs and minutes < 10 else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def common_timezones() -> list[str]:
    """Time zone choices for forms, sorted, UTC first."""
    return ["UTC", *sorted(z for z in available_timezones() if "/" in z and z != "UTC")]
