"""Ping endpoints, wire-compatible with Healthchecks.io's Pinging API.

Existing cron wrappers and ``curl`` lines work by changing the host: the same paths, methods
(HEAD, GET, POST), query parameters (``rid``, ``create``), status codes and bodies ("OK",
"Created", "not found", "invalid url format", "invalid uuid format"), the ``Ping-Body-Limit``
header and ``Access-Control-Allow-Origin: *``. No login, no CSRF token, no session: the UUID (or
the ping key) is the secret. Beyond Healthchecks: ``/snooze/<duration>`` mutes new alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from probes.heartbeats import schedule, services
from probes.heartbeats.models import Heartbeat, PingKind
from tocsin.services import ServiceError

Lookup = Callable[[], Heartbeat | None]


def _text(body: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _read_body(request: HttpRequest, limit: int) -> tuple[str, int]:
    """The first ``limit`` bytes of the body as text, and the size the client announced.

    Read from the stream, so a body of any size costs at most ``limit`` bytes of memory (and
    never trips DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    if request.method != "POST" or size <= 0 or limit <= 0:
        return "", max(size, 0)
    raw = request.read(limit)
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), size


def _ping(request: HttpRequest, lookup: Lookup, kind: str, exit_status: int | None) -> HttpResponse:
    if exit_status is not None and exit_status > 255:
        return _text("invalid url format", 400)
    rid = None
    if "rid" in request.GET:
        try:
            rid = uuid.UUID(request.GET["rid"])
        except ValueError:
            return _text("invalid uuid format", 400)
    limit = services.body_limit()
    body, size = _read_body(request, limit)
    data = services.PingData(
        kind=kind,
        exit_status=exit_status,
        rid=rid,
        method=request.method or "",
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        body=body,
        body_size=size,
    )
    with transaction.atomic():
        heartbeat = lookup()
        if heartbeat is None:
            return _text("not found", 404)
        services.record_ping(heartbeat, data)
    response = _text("OK")
    response["Ping-Body-Limit"] = str(limit)
    return response


@csrf_exempt
@never_cache
def ping_by_uuid(
    request: HttpRequest,
    code: uuid.UUID,
    kind: str = PingKind.SUCCESS,
    exit_status: int | None = None,
) -> HttpResponse:
    return _ping(request, lambda: services.lock_by_uuid(code), kind, exit_status)


@csrf_exempt
@never_cache
def ping_by_slug(
    request: HttpRequest,
    key: str,
    slug: str,
    kind: str = PingKind.SUCCESS,
    exit_status: int | None = None,
) -> HttpResponse:
    created = False

    def lookup() -> Heartbeat | None:
        nonlocal created
        heartbeat = services.lock_by_slug(key, slug)
        if heartbeat is None and request.GET.get("create") == "1":
            heartbeat = services.auto_provision(key, slug)
            created = heartbeat is not None
        return heartbeat

    response = _ping(request, lookup, kind, exit_status)
    if created and response.status_code == 200:
        response.status_code = 201
        response.content = b"Created"
    return response


def _snooze(request: HttpRequest, lookup: Lookup, duration: str) -> HttpResponse:
    try:
        seconds = schedule.parse_duration(duration)
    except ValueError:
        return _text("invalid url format", 400)
    with transaction.atomic():
        heartbeat = lookup()
        if heartbeat is None:
            return _text("not found", 404)
        try:
            services.snooze(heartbeat, seconds)
        except ServiceError as exc:
            return _text(str(exc), 400)
    return _text("OK")


@csrf_exempt
@never_cache
def snooze_by_uuid(request: HttpRequest, code: uuid.UUID, duration: str) -> HttpResponse:
    return _snooze(request, lambda: services.lock_by_uuid(code), duration)


@csrf_exempt
@never_cache
def snooze_by_slug(request: HttpRequest, key: str, slug: str, duration: str) -> HttpResponse:
    return _snooze(request, lambda: services.lock_by_slug(key, slug), duration)
