"""Database health pages: every monitored database of the user's teams with its state and key
figures, and a database's page with its health charts over the last day and its slowest
statements. A database of a team you cannot see is a 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from monitoring.databases.collectors import where
from monitoring.metrics import series_points
from monitoring.models import MetricSeries, MonitoredDatabase
from tocsin.permissions import Action, can, scope

CHART_HOURS = 24
# Per kind: the figures the list shows and the charts the page draws (metric, title, unit).
CHARTS: dict[str, list[tuple[str, str, str]]] = {
    "postgresql": [
        ("pg_connections_used_percent", "Connections used", "% of max_connections"),
        ("pg_longest_transaction_seconds", "Longest transaction", "s"),
        ("pg_sessions_waiting_on_locks", "Sessions waiting on locks", "sessions"),
        ("pg_cache_hit_percent", "Cache hit ratio", "%"),
        ("pg_replication_lag_seconds", "Replication lag", "s"),
        ("pg_database_size_bytes", "Size", "bytes"),
    ],
    "mysql": [
        ("mysql_connections_used_percent", "Connections used", "% of max_connections"),
        ("mysql_threads_running", "Threads running", "threads"),
        ("mysql_innodb_buffer_pool_hit_percent", "Buffer pool hit ratio", "%"),
        ("mysql_longest_query_seconds", "Longest query", "s"),
    ],
    "redis": [
        ("redis_memory_used_bytes", "Memory used", "bytes"),
        ("redis_hit_rate_percent", "Hit rate", "%"),
        ("redis_connected_clients", "Clients", "clients"),
        ("redis_last_save_age_seconds", "Since the last save", "s"),
    ],
}


def visible_databases(user: Any) -> Any:
    return scope(MonitoredDatabase.objects.select_related("team", "service"), user, Action.VIEW)


def latest_values(databases: list[MonitoredDatabase]) -> dict[tuple[int, str, str], float]:
    """(team, database, metric) → last value, for every database shown, in one query."""
    names = {metric for charts in CHARTS.values() for metric, _t, _u in charts}
    rows = MetricSeries.objects.filter(
        team_id__in={d.team_id for d in databases},
        name__in=names | {"pg_up", "mysql_up", "redis_up"},
    ).values_list("team_id", "labels", "name", "last_value")
    return {
        (team_id, (labels or {}).get("database", ""), name): value
        for team_id, labels, name, value in rows
    }


@login_required
def databases(request: HttpRequest) -> HttpResponse:
    rows = list(visible_databases(request.user))
    values = latest_values(rows)
    for database in rows:
        database.where = where(database.kind, database.dsn)
        database.figures = [
            (title, values.get((database.team_id, database.name, metric)), unit)
            for metric, title, unit in CHARTS[database.kind][:2]
        ]
    return render(request, "monitoring/databases.html", {"databases": rows, "current": "databases"})


@login_required
def database(request: HttpRequest, pk: int) -> HttpResponse:
    found = visible_databases(request.user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such database.")
    until = timezone.now()
    since = until - timedelta(hours=CHART_HOURS)
    series = {
        s.name: s
        for s in MetricSeries.objects.filter(
            team_id=found.team_id,
            name__in=[metric for metric, _t, _u in CHARTS[found.kind]],
            labels__database=found.name,
        )
    }
    charts = []
    for metric, title, unit in CHARTS[found.kind]:
        points = (
            series_points(series[metric], since=since, until=until, resolution="1m")
            if metric in series
            else []
        )
        scale = 1_000_000 if unit == "bytes" else 1  # MB keep a phone's axis short
        last = series[metric].last_value if metric in series else None
        charts.append(
            {
                "metric": metric,
                "title": title,
                "unit": "MB" if scale > 1 else unit,
                "t": [int(p["time"].timestamp()) for p in points],
                "v": [round(p["max"] / scale, 3) for p in points],
                "last": None if last is None else last / scale,
            }
        )
    context = {
        "database": found,
        "where": where(found.kind, found.dsn),
        "charts": charts,
        "may_manage": can(request.user, Action.MANAGE, found),
        "current": "databases",
    }
    return render(request, "monitoring/database.html", context)
