"""Incident reports: counts, MTTA, MTTR and SLA breaches per ISO week, team and service.

One aggregate query does the work in the database (SQLite and PostgreSQL alike): incidents
created in the range, of the teams the user may view, grouped by (week, team, service), with
counts and *sums* of durations. Everything the page, the CSV and the API show is rolled up
from those rows in Python; sums and counts add up exactly, so a team's weekly MTTA is the mean
over its incidents, not a mean of its services' means.

What counts: incidents by the week they were created (weeks start on Monday, UTC). MTTA is
created → acknowledged over the incidents acknowledged, MTTR created → resolved over those
resolved. An incident merged into another counts as part of that one, and the alerts Tocsin
raises about missed targets (the "Tocsin SLAs" service) are not incidents of the team's work.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from incidents.models import Incident
from incidents.slas.services import SLA_SERVICE_SLUG
from monitoring.models import Service
from tocsin.api.filters import TeamRefField
from tocsin.api.lookups import MAX_ID
from tocsin.models import Team
from tocsin.permissions import Action, scope, teams_for

DEFAULT_WEEKS = 12
MAX_DAYS = 731  # two years of weeks is plenty for a chart, and bounds the query

CSV_COLUMNS = [
    "week",
    "team",
    "service",
    "incidents",
    "acknowledged",
    "mtta_minutes",
    "resolved",
    "mttr_minutes",
    "ack_breaches",
    "resolve_breaches",
]


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def default_range(today: date | None = None) -> tuple[date, date]:
    """The last 12 ISO weeks, this one included."""
    today = today or timezone.now().astimezone(UTC).date()
    return monday(today) - timedelta(weeks=DEFAULT_WEEKS - 1), today


class ReportFilterForm(forms.Form):
    """The filters of the page, the CSV and the API; checks visibility with the user's roles."""

    team = TeamRefField(queryset=Team.objects.none(), required=False)
    service = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    since = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    until = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def __init__(self, data: Any, *, user: Any) -> None:
        super().__init__(data)
        self.user = user
        self.fields["team"].queryset = teams_for(user, Action.VIEW)
        self.fields["since"].help_text = "First day (YYYY-MM-DD); default: 12 weeks ago, Monday."
        self.fields["until"].help_text = "Last day (YYYY-MM-DD), included; default: today."

    def clean_service(self) -> Service | None:
        pk = self.cleaned_data.get("service")
        if pk is None:
            return None
        service = (
            scope(Service.objects.select_related("team"), self.user, Action.VIEW)
            .filter(pk=pk)
            .first()
        )
        if service is None:
            raise forms.ValidationError("no service with this id that you can view")
        return service

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        team, service = data.get("team"), data.get("service")
        if team is not None and service is not None and service.team_id != team.pk:
            self.add_error("service", "this service belongs to another team")
        default_since, default_until = default_range()
        if "since" in data and not data.get("since"):
            data["since"] = default_since
        if "until" in data and not data.get("until"):
            data["until"] = default_until
        since, until = data.get("since"), data.get("until")
        if since and until:
            if until < since:
                self.add_error("until", "must not be before since")
            elif (until - since).days > MAX_DAYS:
                self.add_error("until", f"at most {MAX_DAYS} days after since")
        return data


@dataclass
class Figures:
    """Counts and duration sums; the means are derived, so figures add up exactly."""

    incidents: int = 0
    acknowledged: int = 0
    ack_total: timedelta = field(default_factory=timedelta)
    resolved: int = 0
    resolve_total: timedelta = field(default_factory=timedelta)
    ack_breaches: int = 0
    resolve_breaches: int = 0

    def add(self, other: Figures) -> None:
        self.incidents += other.incidents
        self.acknowledged += other.acknowledged
        self.ack_total += other.ack_total
        self.resolved += other.resolved
        self.resolve_total += other.resolve_total
        self.ack_breaches += other.ack_breaches
        self.resolve_breaches += other.resolve_breaches

    @property
    def mtta_seconds(self) -> float | None:
        if not self.acknowledged:
            return None
        return round(self.ack_total.total_seconds() / self.acknowledged, 1)

    @property
    def mttr_seconds(self) -> float | None:
        if not self.resolved:
            return None
        return round(self.resolve_total.total_seconds() / self.resolved, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "acknowledged": self.acknowledged,
            "mtta_seconds": self.mtta_seconds,
            "resolved": self.resolved,
            "mttr_seconds": self.mttr_seconds,
            "ack_breaches": self.ack_breaches,
            "resolve_breaches": self.resolve_breaches,
        }


@dataclass
class Row:
    week: date
    team: dict[str, Any]
    service: dict[str, Any]
    figures: Figures


@dataclass
class Report:
    since: date
    until: date
    weeks: list[date]
    rows: list[Row]  # (week, team, service) with at least one incident

    def _grouped(self, key: str) -> list[dict[str, Any]]:
        groups: dict[int, dict[str, Any]] = {}
        for row in self.rows:
            ref = getattr(row, key)
            group = groups.setdefault(
                ref["id"],
                {key: ref, "total": Figures(), "weeks": {w: Figures() for w in self.weeks}},
            )
            group["total"].add(row.figures)
            group["weeks"][row.week].add(row.figures)
        ordered = sorted(groups.values(), key=lambda g: (g[key].get("team", ""), g[key]["name"]))
        return [
            {
                key: g[key],
                "total": g["total"].as_dict(),
                "weeks": [{"week": w.isoformat(), **f.as_dict()} for w, f in g["weeks"].items()],
            }
            for g in ordered
        ]

    def totals(self) -> tuple[Figures, dict[date, Figures]]:
        total, weekly = Figures(), {w: Figures() for w in self.weeks}
        for row in self.rows:
            total.add(row.figures)
            weekly[row.week].add(row.figures)
        return total, weekly

    def as_dict(self) -> dict[str, Any]:
        total, weekly = self.totals()
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "weeks": [w.isoformat() for w in self.weeks],
            "total": total.as_dict(),
            "by_week": [{"week": w.isoformat(), **f.as_dict()} for w, f in weekly.items()],
            "by_team": self._grouped("team"),
            "by_service": self._grouped("service"),
        }

    def csv_rows(self) -> list[list[Any]]:
        out = []
        for row in self.rows:
            f = row.figures
            out.append(
                [
                    row.week.isoformat(),
                    row.team["name"],
                    row.service["name"],
                    f.incidents,
                    f.acknowledged,
                    _minutes(f.mtta_seconds),
                    f.resolved,
                    _minutes(f.mttr_seconds),
                    f.ack_breaches,
                    f.resolve_breaches,
                ]
            )
        return out

    def to_csv(self) -> str:
        return csv_text(CSV_COLUMNS, self.csv_rows())


def csv_text(columns: list[str], rows: list[list[Any]]) -> str:
    """A report's CSV: a header row, then its rows (the weekly and the monthly report)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _duration(later: str, earlier: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def build(
    user: Any,
    *,
    since: date,
    until: date,
    team: Team | None = None,
    service: Service | None = None,
) -> Report:
    """The report for what ``user`` may view, in one aggregate query."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    incidents = (
        scope(Incident.objects.all(), user, Action.VIEW)
        .filter(created_at__gte=start, created_at__lt=end, merged_into__isnull=True)
        .exclude(service__slug=SLA_SERVICE_SLUG)
    )
    if team is not None:
        incidents = incidents.filter(team=team)
    if service is not None:
        incidents = incidents.filter(service=service)
    grouped = (
        incidents.annotate(week=TruncWeek("created_at", tzinfo=UTC))
        .values("week", "team_id", "team__name", "team__slug", "service_id", "service__name")
        .annotate(
            n=Count("id"),
            acked=Count("id", filter=Q(acknowledged_at__isnull=False)),
            ack_total=Sum(_duration("acknowledged_at", "created_at")),
            done=Count("id", filter=Q(resolved_at__isnull=False)),
            resolve_total=Sum(_duration("resolved_at", "created_at")),
            ack_breaches=Count("id", filter=Q(ack_breached_at__isnull=False)),
            resolve_breaches=Count("id", filter=Q(resolve_breached_at__isnull=False)),
        )
        .order_by("week", "team__name", "service__name")
    )
    rows = []
    for r in grouped:
        week = r["week"]
        week = week.astimezone(UTC).date() if isinstance(week, datetime) else week
        rows.append(
            Row(
                week=week,
                team={"id": r["team_id"], "name": r["team__name"], "slug": r["team__slug"]},
                service={
                    "id": r["service_id"],
                    "name": r["service__name"],
                    "team": r["team__name"],
                },
                figures=Figures(
                    incidents=r["n"],
                    acknowledged=r["acked"],
                    ack_total=r["ack_total"] or timedelta(),
                    resolved=r["done"],
                    resolve_total=r["resolve_total"] or timedelta(),
                    ack_breaches=r["ack_breaches"],
                    resolve_breaches=r["resolve_breaches"],
                ),
            )
        )
    weeks = []
    week = monday(since)
    while week <= until:
        weeks.append(week)
        week += timedelta(weeks=1)
    return Report(since=since, until=until, weeks=weeks, rows=rows)


def build_from(form: ReportFilterForm, user: Any) -> Report:
    """The report for a form's filters (defaults where the form is invalid or empty)."""
    data = form.cleaned_data if form.is_valid() else {}
    default_since, default_until = default_range()
    return build(
        user,
        since=data.get("since") or default_since,
        until=data.get("until") or default_until,
        team=data.get("team"),
        service=data.get("service"),
    )
