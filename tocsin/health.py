"""Health endpoints for load balancers, orchestrators and humans.

- ``/health/live``: the process answers (no dependencies checked).
- ``/health/ready``: the database answers and is fully migrated, Redis answers when configured,
  and a worker cluster has executed its heartbeat task recently; 503 naming what failed otherwise.
- ``/health``: every component with its status and latency, as JSON.
Nothing secret is shown: no host names, DSNs or versions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

_migrated = False  # once true it stays true for the life of the process


class ComponentDown(Exception):
    pass


def check_database() -> dict[str, Any]:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_migrations() -> dict[str, Any]:
    global _migrated
    if not _migrated:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            raise ComponentDown(f"{len(plan)} migration(s) not applied")
        _migrated = True
    return {}


def check_redis() -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def check_worker() -> dict[str, Any]:
    from tocsin.models import WorkerHeartbeat

    last = WorkerHeartbeat.objects.order_by("-last_seen_at").values_list("last_seen_at", flat=True)
    last_seen = last.first()
    if last_seen is None:
        raise ComponentDown("no worker has reported yet")
    age = (timezone.now() - last_seen).total_seconds()
    stale_after = timedelta(seconds=settings.TOCSIN_WORKER_STALE_AFTER).total_seconds()
    alive = WorkerHeartbeat.objects.filter(
        last_seen_at__gte=timezone.now() - timedelta(seconds=stale_after)
    ).count()
    if age > stale_after:
        raise ComponentDown(f"last worker heartbeat {age:.0f}s ago")
    return {"age_seconds": round(age, 1), "workers": alive}


def components() -> dict[str, Callable[[], dict[str, Any]]]:
    checks: dict[str, Callable[[], dict[str, Any]]] = {
        "database": check_database,
        "migrations": check_migrations,
    }
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    checks["worker"] = check_worker
    return checks


def run_checks(only: list[str] | None = None) -> tuple[bool, dict[str, dict[str, Any]]]:
    results: dict[str, dict[str, Any]] = {}
    healthy = True
    for name, check in components().items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        try:
            detail = check()
            status = "ok"
        except ComponentDown as exc:
            detail, status = {"error": str(exc)}, "fail"
        except Exception as exc:  # a check must report, never crash the endpoint
            detail, status = {"error": type(exc).__name__}, "fail"
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        results[name] = {"status": status, "latency_ms": latency_ms, **detail}
        healthy = healthy and status == "ok"
    return healthy, results


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    healthy, results = run_checks()
    failing = {name: r for name, r in results.items() if r["status"] != "ok"}
    if healthy:
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "fail", "failing": failing}, status=503)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    healthy, results = run_checks()
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "components": results},
        status=200 if healthy else 503,
    )


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links (the admin, a JSON response). The
    static URL is resolved per request: with hashed static names it exists only after
    ``collectstatic``, which must not need it."""
    return HttpResponsePermanentRedirect(static("img/tocsin.svg"))
