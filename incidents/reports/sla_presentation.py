"""The SLA report as the page, the print view and the monthly mail show it: figures formatted
once, times in the report's time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from incidents.reports.sla import ServiceMonth, SlaReport, percent


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _minutes(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _seconds_as_minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def service_row(month: ServiceMonth, zone: ZoneInfo) -> dict[str, Any]:
    t, f = month.tally, month.figures
    met = month.met
    return {
        "id": month.service.pk,
        "name": month.service.name,
        "checks": month.checks,
        "target": f"{month.target:g}",
        "availability": percent(month.availability),
        "met": met,
        "verdict": "no data" if met is None else ("met" if met else "missed"),
        "minutes": f"{t.minutes:,}",
        "measured": f"{t.measured:,}",
        "downtime": f"{t.down:,}",
        "allowed": f"{month.allowed_downtime:,.1f}",
        "maintenance": f"{t.maintenance:,}",
        "down_in_maintenance": t.down_in_maintenance,
        "unmeasured": f"{t.unmeasured:,}",
        "estimated": f"{t.estimated:,}" if t.estimated else "",
        "incident_count": f.incidents,
        "mtta": _seconds_as_minutes(f.mtta_seconds),
        "mttr": _seconds_as_minutes(f.mttr_seconds),
        "maintenance_list": [
            {
                "title": o.title,
                "starts": _local(o.starts_at, zone),
                "ends": _local(o.ends_at, zone),
                "minutes": o.minutes,
            }
            for o in month.maintenance
        ],
        "incidents": [
            {
                "id": i.id,
                "title": i.title,
                "priority": i.priority,
                "created": _local(i.created_at, zone),
                "acknowledged": _local(i.acknowledged_at, zone),
                "resolved": _local(i.resolved_at, zone),
                "ack_minutes": _minutes(i.ack_minutes),
                "duration": "open" if i.duration is None else _minutes(i.duration_minutes),
                "in_month": _minutes(i.in_month_minutes),
                "before_month": i.before_month,
            }
            for i in month.incidents
        ],
    }


def context(report: SlaReport) -> dict[str, Any]:
    zone = ZoneInfo(report.time_zone)
    rows = [service_row(s, zone) for s in report.services]
    return {
        "report": report,
        "month_label": report.label,
        "starts": _local(report.start, zone),
        "ends": _local(report.end, zone),
        "hours": _minutes(round((report.end - report.start).total_seconds() / 3600, 2)),
        "rows": rows,
        "missed": sum(1 for r in rows if r["met"] is False),
    }
