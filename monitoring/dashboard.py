"""Monitoring's dashboard tiles: firing alerts by severity and service, SLO budgets at risk,
database health and the host charts. Registered from ``MonitoringConfig.ready``; each costs a
fixed number of queries whatever the number of alerts, SLOs or databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.urls import reverse

from monitoring.metrics import series_points
from monitoring.metrics.host import SYSTEM_TEAM_SLUG
from monitoring.models import Alert, MetricSeries, MonitoredDatabase, Service
from monitoring.models.choices import AlertStatus, Severity
from monitoring.models.slos import ServiceLevelObjective
from monitoring.slos.budget import AT_RISK, status_of
from tocsin.dashboard import Tile, in_teams, register, setup
from tocsin.models import Team

TOP_SERVICES = 8
TOP_SLOS = 8
TOP_DATABASES = 10
HOST_HOURS = 6
HOST_CHARTS = (
    ("host_cpu_percent", "CPU", "%"),
    ("host_memory_used_percent", "Memory used", "%"),
    ("host_disk_used_percent", "Disk used (/)", "%"),
)
UP_METRIC = {"postgresql": "pg_up", "mysql": "mysql_up", "redis": "redis_up"}


def _services_or_setup(team_ids: set[int] | None) -> dict[str, Any] | None:
    if in_teams(Service.objects.all(), team_ids).exists():
        return None
    return setup(
        "No services yet: alerts arrive through a service's integration.",
        reverse("services"),
        "Create a service",
    )


def alerts_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    if (missing := _services_or_setup(team_ids)) is not None:
        return missing
    firing = in_teams(Alert.objects.filter(status=AlertStatus.FIRING), team_ids).order_by()
    # One grouped count over the firing alerts, no join: per service, severity and whether
    # suppressed; summed here (a few rows per service), the services' names fetched after.
    counts: dict[str, int] = {}
    suppressed = 0
    services: dict[int, dict[str, Any]] = {}
    for service_id, severity, quiet, n in firing.values_list(
        "service_id", "severity", "suppression"
    ).annotate(n=Count("id")):
        if quiet:
            suppressed += n
            continue
        counts[severity] = counts.get(severity, 0) + n
        row = services.setdefault(
            service_id, {"service_id": service_id, "total": 0, "critical": 0, "error": 0}
        )
        row["total"] += n
        if severity in (Severity.CRITICAL, Severity.ERROR):
            row[severity] += n
    by_service = sorted(
        services.values(),
        key=lambda r: (-r["critical"], -r["error"], -r["total"], r["service_id"]),
    )[:TOP_SERVICES]
    names = dict(
        Service.objects.filter(pk__in=[row["service_id"] for row in by_service]).values_list(
            "pk", "name"
        )
    )
    for row in by_service:
        row["name"] = names.get(row["service_id"], "")
    severities = [
        {"value": s.value, "label": s.label, "count": counts.get(s.value, 0)}
        for s in reversed(Severity)
    ]
    return {
        "severities": severities,
        "total": sum(counts.values()),
        "suppressed": suppressed,
        "by_service": by_service,
    }


def slos_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    slos = in_teams(ServiceLevelObjective.objects.all(), team_ids, "service__team")
    counts = slos.aggregate(
        n_total=Count("id"), n_risky=Count("id", filter=Q(budget_remaining__lt=AT_RISK))
    )
    if not counts["n_total"]:
        return setup(
            "No SLOs yet: set an objective on a service to see its error budget here.",
            reverse("admin:monitoring_servicelevelobjective_add"),
            "Add an SLO",
        )
    risky = list(
        slos.filter(budget_remaining__lt=AT_RISK)
        .select_related("service")
        .order_by("budget_remaining", "name")[:TOP_SLOS]
    )
    for slo in risky:
        slo.status = status_of(slo.budget_remaining, slo.attainment is not None)
        slo.budget_text = f"{100 * slo.budget_remaining:.1f} %"
        slo.burn_text = "—" if slo.burn_rate is None else f"{slo.burn_rate:.2f}x"
    return {"total": counts["n_total"], "risky": risky, "at_risk": counts["n_risky"]}


def databases_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    databases = list(
        in_teams(MonitoredDatabase.objects.all(), team_ids).order_by("name", "id")[:TOP_DATABASES]
    )
    if not databases:
        return setup(
            "No databases watched yet: register PostgreSQL, MySQL or Redis to see their health.",
            reverse("admin:monitoring_monitoreddatabase_add"),
            "Add a database",
        )
    ups = {
        (team_id, (labels or {}).get("database", ""), name): value
        for team_id, labels, name, value in MetricSeries.objects.filter(
            team_id__in={d.team_id for d in databases}, name__in=set(UP_METRIC.values())
        ).values_list("team_id", "labels", "name", "last_value")
    }
    for database in databases:
        up = ups.get((database.team_id, database.name, UP_METRIC.get(database.kind, "")))
        if not database.enabled:
            database.health = "paused"
        elif database.last_error or up == 0:
            database.health = "down"
        elif up is None:
            database.health = "unknown"
        else:
            database.health = "up"
    return {"databases": databases, "down": sum(d.health == "down" for d in databases)}


def host_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    system = Team.objects.filter(slug=SYSTEM_TEAM_SLUG).first()
    if system is None and team_ids is None:
        return setup(
            "No host readings yet: the worker records the host's CPU, memory and disk every "
            "minute once it runs (manage.py worker).",
            reverse("health"),
            "Health",
        )
    if system is None or (team_ids is not None and system.pk not in team_ids):
        return setup(
            "The host's CPU, memory and disk are recorded for the built-in “Tocsin (system)” "
            "team: an administrator can add you to it.",
            reverse("teams"),
            "Teams",
        )
    found: dict[str, MetricSeries] = {}
    for series in MetricSeries.objects.filter(
        team=system, name__in=[name for name, _t, _u in HOST_CHARTS]
    ).order_by("name", "id"):
        if series.name != "host_disk_used_percent" or series.labels.get("mount") == "/":
            found.setdefault(series.name, series)
    since = now - timedelta(hours=HOST_HOURS)
    charts = []
    for name, title, unit in HOST_CHARTS:
        series = found.get(name)
        points = series_points(series, since=since, until=now, resolution="1m") if series else []
        charts.append(
            {
                "metric": name,
                "title": title,
                "unit": unit,
                "host": series.labels.get("host", "") if series else "",
                "t": [int(p["time"].timestamp()) for p in points],
                "v": [round(p["max"], 2) for p in points],
                "last": series.last_value if series else None,
            }
        )
    return {"charts": charts, "hours": HOST_HOURS}


def register_tiles() -> None:
    register(
        Tile(
            "alerts",
            "Firing alerts",
            20,
            "tocsin/_tile_alerts.html",
            alerts_context,
            live=("alert",),
            link="alerts",
        )
    )
    register(
        Tile(
            "slos",
            "SLO budgets at risk",
            50,
            "tocsin/_tile_slos.html",
            slos_context,
            live=("slo", "alert"),
            refresh_seconds=60,
            link="slos",
        )
    )
    register(
        Tile(
            "databases",
            "Databases",
            60,
            "tocsin/_tile_databases.html",
            databases_context,
            live=("alert",),
            refresh_seconds=60,
            link="databases",
        )
    )
    register(
        Tile(
            "host",
            "This host",
            90,
            "tocsin/_tile_host.html",
            host_context,
            wide=True,
            link="",
        )
    )
