"""Maintenance windows: one-off or weekly periods during which a service's alerts are muted.
Create, change and delete them here; each records an event and re-evaluates the team's alerts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.db import transaction
from django.utils import timezone

from monitoring.models import MaintenanceWindow
from monitoring.suppression.evaluate import reevaluate_team
from tocsin.events import record
from tocsin.services import ServiceError

WINDOW_FIELDS = (
    "title",
    "description",
    "starts_at",
    "ends_at",
    "weekdays",
    "start_time",
    "duration",
    "time_zone",
)
MAX_RECURRING_DURATION = timedelta(days=7)
# One-off windows lie between these years (in UTC): a date near the year 1 or 9999 may not even
# exist in UTC once its zone is applied (OverflowError), and PostgreSQL stores the year 10000
# that psycopg cannot read back, breaking every query that loads windows.
EARLIEST_YEAR = 2000
YEARS_AHEAD = 10
_DURATION_RE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``1h30m``, ``2d``, ``1w``: Alertmanager's (amtool's) way of writing durations."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1h30m or 1d")
    w, d, h, m, s = (int(g or 0) for g in match.groups())
    try:
        return timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)
    except OverflowError:
        # Past timedelta's range (about 2.7 million years): a ValueError like any bad input,
        # so forms and the API answer with a field error rather than a 500.
        raise ValueError(f"{text!r} is far too long a duration") from None


def _valid_zone(name: str) -> str:
    name = (name or "UTC").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(
            f"unknown time zone {name!r}; use a name such as Europe/Berlin", "time_zone"
        ) from None
    return name


def check_window_moment(moment: datetime, field: str) -> datetime:
    """``moment`` (aware, in any zone) if it lies between the years one-off windows may use,
    else a ServiceError on ``field``."""
    latest = timezone.now().year + YEARS_AHEAD
    refusal = ServiceError(f"a date between the years {EARLIEST_YEAR} and {latest}", field)
    try:
        in_utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):  # 9999-12-31 23:00 in New York is in the year 10000
        raise refusal from None
    if not EARLIEST_YEAR <= in_utc.year <= latest:
        raise refusal
    return moment


def _check_window(values: dict[str, Any]) -> dict[str, Any]:
    """The whole window must be either one-off or recurring, and sensible."""
    title = (values.get("title") or "").strip()
    if not title:
        raise ServiceError("a maintenance window needs a title", "title")
    values["title"] = title[:200]
    weekdays = values.get("weekdays") or []
    if not isinstance(weekdays, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays
    ):
        raise ServiceError("weekdays are numbers from 0 (Monday) to 6 (Sunday)", "weekdays")
    values["weekdays"] = sorted(set(weekdays))
    values["time_zone"] = _valid_zone(values.get("time_zone") or "UTC")
    if values["weekdays"]:
        if values.get("starts_at") or values.get("ends_at"):
            raise ServiceError(
                "a recurring window has weekdays, start_time and duration, not starts_at/ends_at",
                "starts_at",
            )
        if not isinstance(values.get("start_time"), time):
            raise ServiceError("a recurring window needs a start time", "start_time")
        duration = values.get("duration")
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            raise ServiceError("a recurring window needs a positive duration", "duration")
        if duration > MAX_RECURRING_DURATION:
            raise ServiceError("at most 7 days (it repeats every week)", "duration")
    else:
        if values.get("start_time") is not None or values.get("duration") is not None:
            raise ServiceError(
                "start_time and duration belong to recurring windows: give weekdays too",
                "weekdays",
            )
        starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
        if starts_at is None:
            raise ServiceError(
                "a one-off window needs starts_at (or weekdays to recur)", "starts_at"
            )
        if ends_at is None:
            raise ServiceError("a one-off window needs ends_at", "ends_at")
        check_window_moment(starts_at, "starts_at")
        check_window_moment(ends_at, "ends_at")
        if ends_at <= starts_at:
            raise ServiceError("must be later than starts_at", "ends_at")
    return values


def _window_payload(window: Any) -> dict[str, Any]:
    return {
        "window_id": window.pk,
        "service_id": window.service_id,
        "title": window.title,
        "starts_at": window.starts_at.isoformat() if window.starts_at else None,
        "ends_at": window.ends_at.isoformat() if window.ends_at else None,
        "weekdays": window.weekdays,
        "start_time": window.start_time.isoformat() if window.start_time else None,
        "duration_seconds": window.duration.total_seconds() if window.duration else None,
        "time_zone": window.time_zone,
    }


def create_maintenance_window(*, service: Any, title: str, actor: Any = None, **fields: Any) -> Any:
    unknown = set(fields) - set(WINDOW_FIELDS)
    if unknown:
        raise ServiceError(f"unknown field {sorted(unknown)[0]}", sorted(unknown)[0])
    values = _check_window({"title": title, **fields})
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            service=service,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **values,
        )
        record(
            "maintenance.created",
            team=service.team_id,
            subject=window,
            actor=actor,
            payload=_window_payload(window),
        )
    reevaluate_team(service.team_id, actor=actor)
    return window


def update_maintenance_window(window: Any, *, actor: Any = None, **changes: Any) -> Any:
    unknown = set(changes) - set(WINDOW_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    current = {name: getattr(window, name) for name in WINDOW_FIELDS}
    values = _check_window({**current, **changes})
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return window
    before = _window_payload(window)
    with transaction.atomic():
        for key, value in changed.items():
            setattr(window, key, value)
        window.save()
        after = _window_payload(window)
        record(
            "maintenance.updated",
            team=window.team_id,
            subject=window,
            actor=actor,
            payload={
                **after,
                "changes": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
            },
        )
    reevaluate_team(window.team_id, actor=actor)
    return window


def delete_maintenance_window(window: Any, *, actor: Any = None) -> None:
    team_id = window.team_id
    with transaction.atomic():
        record(
            "maintenance.deleted",
            team=team_id,
            subject=window,
            actor=actor,
            payload=_window_payload(window),
        )
        window.delete()
    reevaluate_team(team_id, actor=actor)


def time_zone_names() -> list[str]:
    return sorted(available_timezones())
