"""Monthly SLA reports: per service and calendar month, availability against its target,
downtime, maintenance, incidents, MTTA and MTTR.

How minutes are counted (down, unmeasured, maintenance) is in ``incidents.reports.sla_minutes``;
probe history comes from ``monitoring.availability`` (the "probe" source), never from the
probes app itself. Everything the page, the print view, the CSV, the API and the monthly mail
show is built here, in a number of queries that does not grow with the services or incidents.

Incidents: every incident of the service that was open at some moment of the month (created
before the month ended, not resolved before it began) is listed, with its full duration
(created → resolved) and the part of it inside the month (clipped to the month's bounds).
MTTA and MTTR are computed as the weekly report computes them (``queries.Figures``), over the
incidents *created* in the month: MTTA over those acknowledged, MTTR over those resolved, each
from creation, not clipped. Merged incidents and Tocsin's own SLA alerts are left out, as there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents.models import Incident
from incidents.reports.queries import Figures, csv_text
from incidents.reports.queries import _minutes as csv_minutes
from incidents.reports.sla_minutes import (
    MINUTE,
    MinuteTally,
    ceil_hour,
    classify,
    floor_hour,
    floor_minute,
    month_bounds,
    occurrences,
)
from incidents.slas.services import SLA_SERVICE_SLUG
from monitoring import availability
from monitoring.models import MaintenanceWindow, Service, ServiceLevelObjective
from tocsin.models import Team

DEFAULT_TARGET = 99.9

CSV_COLUMNS = [
    "month",
    "time_zone",
    "team",
    "service",
    "target_percent",
    "availability_percent",
    "met",
    "minutes",
    "measured_minutes",
    "downtime_minutes",
    "allowed_downtime_minutes",
    "maintenance_minutes",
    "down_in_maintenance_minutes",
    "unmeasured_minutes",
    "estimated_minutes",
    "incidents",
    "acknowledged",
    "mtta_minutes",
    "resolved",
    "mttr_minutes",
]


def default_target() -> float:
    """``TOCSIN_SLA_TARGET`` (percent), 99.9 unless set."""
    return float(getattr(settings, "TOCSIN_SLA_TARGET", DEFAULT_TARGET))


def default_time_zone() -> str:
    """``TOCSIN_SLA_TIME_ZONE``, else the site's ``TIME_ZONE``: teams have no time zone yet."""
    return getattr(settings, "TOCSIN_SLA_TIME_ZONE", None) or settings.TIME_ZONE or "UTC"


def last_month(today: date) -> date:
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


@dataclass
class IncidentLine:
    id: int
    title: str
    priority: str
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    duration: timedelta | None  # created → resolved; None while open
    in_month: timedelta  # the part of [created, resolved or now) inside the month
    before_month: bool  # created before the month began (not in MTTA/MTTR)

    @property
    def duration_minutes(self) -> float | None:
        return None if self.duration is None else self.duration.total_seconds() / 60

    @property
    def in_month_minutes(self) -> float:
        return self.in_month.total_seconds() / 60

    @property
    def ack_minutes(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.created_at).total_seconds() / 60

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "priority": self.priority,
            "created_at": self.created_at.isoformat(),
            "acknowledged_at": self.acknowledged_at and self.acknowledged_at.isoformat(),
            "resolved_at": self.resolved_at and self.resolved_at.isoformat(),
            "duration_minutes": self.duration_minutes,
            "in_month_minutes": self.in_month_minutes,
            "before_month": self.before_month,
        }


@dataclass
class Occurrence:
    title: str
    starts_at: datetime
    ends_at: datetime
    minutes: int  # of this occurrence inside the month

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "minutes_in_month": self.minutes,
        }


@dataclass
class ServiceMonth:
    service: Service
    target: float
    checks: list[str]
    tally: MinuteTally
    maintenance: list[Occurrence]
    incidents: list[IncidentLine]
    figures: Figures = field(default_factory=Figures)

    @property
    def availability(self) -> float | None:
        return self.tally.availability

    @property
    def met(self) -> bool | None:
        value = self.availability
        return None if value is None else round(value, 6) >= self.target

    @property
    def allowed_downtime(self) -> float:
        """Minutes of downtime the target allows over the measured minutes."""
        return self.tally.measured * (100 - self.target) / 100

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": {"id": self.service.pk, "name": self.service.name},
            "target": self.target,
            "met": self.met,
            "allowed_downtime_minutes": round(self.allowed_downtime, 1),
            "checks": self.checks,
            **self.tally.as_dict(),
            "maintenance": [o.as_dict() for o in self.maintenance],
            "incident_list": [i.as_dict() for i in self.incidents],
            **self.figures.as_dict(),
        }


@dataclass
class SlaReport:
    team: Team
    month: date
    time_zone: str
    start: datetime
    end: datetime  # the month's end, or now while the month runs
    complete: bool
    services: list[ServiceMonth]

    @property
    def label(self) -> str:
        return self.month.strftime("%B %Y")

    def as_dict(self) -> dict[str, Any]:
        return {
            "team": {"id": self.team.pk, "slug": self.team.slug, "name": self.team.name},
            "month": self.month.strftime("%Y-%m"),
            "time_zone": self.time_zone,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "complete": self.complete,
            "services": [s.as_dict() for s in self.services],
        }

    def csv_rows(self) -> list[list[Any]]:
        rows = []
        for s in self.services:
            f, t = s.figures, s.tally
            rows.append(
                [
                    self.month.strftime("%Y-%m"),
                    self.time_zone,
                    self.team.name,
                    s.service.name,
                    f"{s.target:g}",
                    percent(s.availability, blank=""),
                    "" if s.met is None else ("yes" if s.met else "no"),
                    t.minutes,
                    t.measured,
                    t.down,
                    f"{s.allowed_downtime:.1f}",
                    t.maintenance,
                    t.down_in_maintenance,
                    t.unmeasured,
                    t.estimated,
                    f.incidents,
                    f.acknowledged,
                    csv_minutes(f.mtta_seconds),
                    f.resolved,
                    csv_minutes(f.mttr_seconds),
                ]
            )
        return rows

    def to_csv(self) -> str:
        return csv_text(CSV_COLUMNS, self.csv_rows())


def percent(value: float | None, blank: str = "-") -> str:
    """Four decimals, truncated (99.99996 is not 100 %): what an SLA page is read to."""
    if value is None:
        return blank
    return f"{math.floor(value * 10_000) / 10_000:.4f}"


def build(
    team: Team,
    month: date,
    *,
    time_zone: str | None = None,
    target: float | None = None,
    services: QuerySet[Service] | None = None,
    now: datetime | None = None,
) -> SlaReport:
    """The report of ``team``'s services (or of ``services``, which must be the team's) for
    the month containing ``month``. Callers check the user may view the team."""
    zone_name = time_zone or default_time_zone()
    zone = ZoneInfo(zone_name)
    now = now or timezone.now()
    start, end = month_bounds(month, zone)
    complete = end <= now
    if not complete:
        end = max(start, floor_minute(now))
    chosen = Service.objects.filter(team=team) if services is None else services
    chosen = list(chosen.exclude(slug=SLA_SERVICE_SLUG).order_by("name", "pk"))
    ids = [s.pk for s in chosen]
    goals = {} if target is not None else slo_targets(ids)
    fallback = default_target() if target is None else float(target)
    maintenance = _maintenance(ids, start, end)
    tallies, checks = _availability(ids, start, end, maintenance)
    incidents, figures = _incidents(ids, start, end, now)
    months = [
        ServiceMonth(
            service=s,
            target=goals.get(s.pk, fallback),
            checks=checks.get(s.pk, []),
            tally=tallies[s.pk],
            maintenance=maintenance.get(s.pk, []),
            incidents=incidents.get(s.pk, []),
            figures=figures.get(s.pk, Figures()),
        )
        for s in chosen
    ]
    return SlaReport(
        team=team,
        month=month.replace(day=1),
        time_zone=zone_name,
        start=start,
        end=end,
        complete=complete,
        services=months,
    )


def slo_targets(ids: list[int]) -> dict[int, float]:
    """Each service's target from its probe-availability SLO: a calendar-month one first (an
    SLA is monthly), else the strictest. Services without one use the default target."""
    rows = ServiceLevelObjective.objects.filter(
        service_id__in=ids, sli_kind="probe_availability"
    ).values_list("service_id", "window", "objective")
    best: dict[int, tuple[bool, float]] = {}
    for service_id, window, objective in rows:
        key = (window == "calendar_month", float(objective))
        if service_id not in best or key > best[service_id]:
            best[service_id] = key
    return {pk: objective for pk, (_, objective) in best.items()}


def _availability(
    ids: list[int], start: datetime, end: datetime, maintenance: dict[int, list[Occurrence]]
) -> tuple[dict[int, MinuteTally], dict[int, list[str]]]:
    """Per service: its minutes tallied, and the names of its checks. One read of minutes and
    one of hours for all the services' checks together."""
    n = int((end - start) / MINUTE)
    probe = availability.source("probe")
    targets = probe.targets(service_ids=ids) if probe is not None and ids else []
    minutes: dict[int, list] = {}
    hours: dict[int, list] = {}
    if targets and n:
        target_ids = [t.id for t in targets]
        minutes = probe.counts(target_ids, start, end, "minute")
        hours = probe.counts(target_ids, floor_hour(start), ceil_hour(end), "hour")
    by_service: dict[int, list[availability.Target]] = {pk: [] for pk in ids}
    for t in targets:
        by_service[t.service_id].append(t)
    tallies = {
        pk: classify(
            start,
            n,
            [(o.starts_at, o.ends_at) for o in maintenance.get(pk, [])],
            [minutes.get(t.id) or [None] * n for t in mine],
            [hours.get(t.id) or [] for t in mine],
            # A verdict stands until the check's next run, when the source tells its interval.
            [max(1, math.ceil(getattr(t, "interval", 60) / 60)) for t in mine],
        )
        for pk, mine in by_service.items()
    }
    return tallies, {pk: [t.name for t in mine] for pk, mine in by_service.items()}


def _maintenance(ids: list[int], start: datetime, end: datetime) -> dict[int, list[Occurrence]]:
    windows = MaintenanceWindow.objects.filter(service_id__in=ids).filter(
        Q(ends_at__isnull=True) | Q(starts_at__lt=end, ends_at__gt=start)
    )
    found: dict[int, list[Occurrence]] = {}
    for window in windows.order_by("pk"):
        for begins, ends in occurrences(window, start, end):
            inside = min(ends, end) - max(begins, start)
            found.setdefault(window.service_id, []).append(
                Occurrence(window.title, begins, ends, math.ceil(inside / MINUTE))
            )
    for items in found.values():
        items.sort(key=lambda o: (o.starts_at, o.title))
    return found


def _incidents(ids: list[int], start: datetime, end: datetime, now: datetime) -> tuple[dict, dict]:
    rows = (
        Incident.objects.filter(service_id__in=ids, merged_into__isnull=True, created_at__lt=end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=start))
        .only(
            "id",
            "service_id",
            "title",
            "priority",
            "created_at",
            "acknowledged_at",
            "resolved_at",
            "ack_breached_at",
            "resolve_breached_at",
        )
        .order_by("created_at", "id")
    )
    lines: dict[int, list[IncidentLine]] = {}
    figures: dict[int, Figures] = {}
    for i in rows:
        stop = i.resolved_at or now
        lines.setdefault(i.service_id, []).append(
            IncidentLine(
                id=i.pk,
                title=i.title,
                priority=i.priority,
                created_at=i.created_at,
                acknowledged_at=i.acknowledged_at,
                resolved_at=i.resolved_at,
                duration=i.resolved_at - i.created_at if i.resolved_at else None,
                in_month=max(timedelta(), min(stop, end) - max(i.created_at, start)),
                before_month=i.created_at < start,
            )
        )
        if i.created_at >= start:
            f = figures.setdefault(i.service_id, Figures())
            f.add(_figures_of(i))
    return lines, figures


def _figures_of(incident: Incident) -> Figures:
    acked, resolved = incident.acknowledged_at, incident.resolved_at
    return Figures(
        incidents=1,
        acknowledged=int(acked is not None),
        ack_total=(acked - incident.created_at) if acked else timedelta(),
        resolved=int(resolved is not None),
        resolve_total=(resolved - incident.created_at) if resolved else timedelta(),
        ack_breaches=int(incident.ack_breached_at is not None),
        resolve_breaches=int(incident.resolve_breached_at is not None),
    )
