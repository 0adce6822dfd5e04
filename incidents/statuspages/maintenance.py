"""Scheduled maintenance as the public sees it, derived from monitoring's maintenance windows.

A one-off window is *scheduled* before it starts, *in progress* while it runs and *completed*
after; a recurring window shows its running occurrence, else its next one within a week. The
window's own title and description are internal: the public sees the title and note of the
page's ``MaintenanceNotice`` for it, or "Scheduled maintenance", and a notice can hide it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q

from incidents.statuspages.models import Component, MaintenanceNotice, StatusPage
from monitoring.models import MaintenanceWindow

SCHEDULED = "scheduled"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
STATUS_LABELS = {SCHEDULED: "Scheduled", IN_PROGRESS: "In progress", COMPLETED: "Completed"}
DEFAULT_TITLE = "Scheduled maintenance"
# How long a completed one-off window stays on the page, and how far ahead recurring ones show.
COMPLETED_SHOWN = timedelta(days=1)
RECURRING_AHEAD = timedelta(days=7)


@dataclass
class Occurrence:
    window_id: int
    service_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    title: str = DEFAULT_TITLE
    note: str = ""
    notice_id: int | None = None
    updated_at: datetime | None = None
    created_at: datetime | None = None
    components: list[Component] = field(default_factory=list)

    @property
    def id(self) -> str:
        """Stable per occurrence: a recurring window's occurrences differ by start."""
        return f"m{self.window_id}-{int(self.starts_at.timestamp())}"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def is_active(self) -> bool:
        return self.status == IN_PROGRESS


def windows_for(service_ids: Iterable[int], now: datetime) -> list[MaintenanceWindow]:
    """The windows of these services that may show (one query): recurring ones and one-off ones
    not over for more than ``COMPLETED_SHOWN``."""
    ids = list(service_ids)
    if not ids:
        return []
    return list(
        MaintenanceWindow.objects.filter(service_id__in=ids)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now - COMPLETED_SHOWN))
        .only(
            "id",
            "service_id",
            "starts_at",
            "ends_at",
            "weekdays",
            "start_time",
            "duration",
            "time_zone",
            "created_at",
        )
        .order_by("id")
    )


def next_occurrence(window: MaintenanceWindow, now: datetime) -> tuple[datetime, datetime] | None:
    """A recurring window's running occurrence, else its next start within ``RECURRING_AHEAD``."""
    running = window.occurrence_at(now)
    if running is not None:
        return running
    if window.start_time is None or not window.duration:
        return None
    zone = ZoneInfo(window.time_zone or "UTC")
    today = now.astimezone(zone).date()
    for ahead in range(RECURRING_AHEAD.days + 1):
        day = today + timedelta(days=ahead)
        if day.weekday() not in window.weekdays:
            continue
        start = datetime.combine(day, window.start_time, tzinfo=zone).astimezone(UTC)
        if start > now:
            return start, start + window.duration
    return None


def occurrence_of(window: MaintenanceWindow, now: datetime) -> Occurrence | None:
    if window.is_recurring:
        span = next_occurrence(window, now)
    elif window.starts_at and window.ends_at:
        span = (window.starts_at, window.ends_at)
    else:
        span = None
    if span is None:
        return None
    start, end = span
    status = SCHEDULED if now < start else IN_PROGRESS if now < end else COMPLETED
    return Occurrence(
        window_id=window.pk,
        service_id=window.service_id,
        starts_at=start,
        ends_at=end,
        status=status,
        created_at=window.created_at,
        updated_at=window.created_at,
    )


def for_page(
    page: StatusPage,
    windows: list[MaintenanceWindow],
    components_by_service: dict[int, list[Component]],
    now: datetime,
) -> list[Occurrence]:
    """The page's maintenance, soonest first (one query, for the page's notices)."""
    notices = {
        n.window_id: n
        for n in MaintenanceNotice.objects.filter(page=page, window__in=[w.pk for w in windows])
    }
    found = []
    for window in windows:
        occurrence = occurrence_of(window, now)
        notice = notices.get(window.pk)
        if occurrence is None or (notice is not None and notice.hidden):
            continue
        occurrence.components = components_by_service.get(window.service_id, [])
        if notice is not None:
            occurrence.title = notice.title or DEFAULT_TITLE
            occurrence.note = notice.note
            occurrence.notice_id = notice.pk
            occurrence.updated_at = notice.updated_at
        found.append(occurrence)
    found.sort(key=lambda o: (o.status == COMPLETED, o.starts_at, o.window_id))
    return found
