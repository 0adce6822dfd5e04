"""Ping endpoints, wire-compatible with Healthchecks.io's Pinging API.

Existing cron wrappers and ``curl`` lines work by changing the host: the same paths, methods
(HEAD, GET, POST), query parameters (``rid``, ``create``), status codes and bodies ("OK",
"Created", "not found", "invalid url format", "invalid uuid format"), the ``Ping-Body-Limit``
header and ``Access-Control-Allow-Origin: *``. No login, no CSRF token, no session: the UUID (or
the ping key) is the secret. Beyond Healthchecks: ``/snooze/<duration>`` mutes new alerts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from probes.heartbeats import schedule, services
from probes.heartbeats.models import Heartbeat, PingKind
from tocsin.group_commit import GroupCommit, for_this_loop
from tocsin.services import ServiceError

logger = logging.getLogger(__name__)

Lookup = Callable[[], Heartbeat | None]


def _text(body: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
    response["Access-Control-Allow-Origin"] = "*"
    add_never_cache_headers(response)
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


def _pending(
    request: HttpRequest, kind: str, exit_status: int | None, **target: Any
) -> services.PendingPing | HttpResponse:
    """The ping a request carries, read and bounded (no database work), or the 400 to answer."""
    received_at = timezone.now()
    if exit_status is not None and exit_status > 255:
        return _text("invalid url format", 400)
    rid = None
    if "rid" in request.GET:
        try:
            rid = uuid.UUID(request.GET["rid"])
        except ValueError:
            return _text("invalid uuid format", 400)
    body, size = _read_body(request, services.body_limit())
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
    return services.PendingPing(data=data, received_at=received_at, **target)


def _answer(pending: services.PendingPing) -> HttpResponse:
    if pending.error is not None:
        logger.error("a ping could not be recorded", exc_info=pending.error)
        response = _text("error, retry later", 500)
    elif not pending.found:
        response = _text("not found", 404)
    elif pending.created:
        response = _text("Created", 201)
    else:
        response = _text("OK")
    if pending.found:
        response["Ping-Body-Limit"] = str(services.body_limit())
    response._has_been_logged = True  # type: ignore[attr-defined]  # the path holds the secret
    return response


def _ping(request: HttpRequest, kind: str, exit_status: int | None, **target: Any) -> HttpResponse:
    """A lone request (WSGI, the test client): the same batch write, of one."""
    pending = _pending(request, kind, exit_status, **target)
    if isinstance(pending, HttpResponse):
        return pending
    services.record_pings([pending])
    return _answer(pending)


async def _ping_async(
    request: HttpRequest, kind: str, exit_status: int | None, **target: Any
) -> HttpResponse:
    """Under ASGI: concurrent pings of this process are written together
    (:mod:`tocsin.group_commit`), each answered once its batch has committed."""
    pending = _pending(request, kind, exit_status, **target)
    if isinstance(pending, HttpResponse):
        return pending
    await for_this_loop("heartbeat-pings", _new_ping_batcher).submit(pending)
    return _answer(pending)


def _new_ping_batcher() -> GroupCommit[services.PendingPing]:
    return GroupCommit(services.record_pings, name="heartbeat-pings")


def _ping_view(target: Callable[..., dict[str, Any]]) -> Callable[..., HttpResponse]:
    """A ping endpoint: the synchronous view (WSGI, the test client) and its async form, which
    tocsin.asgi serves on the event loop; ``target`` reads the URL's heartbeat reference."""

    @csrf_exempt
    def view(
        request: HttpRequest, kind: str = PingKind.SUCCESS, exit_status: int | None = None, **url
    ) -> HttpResponse:
        return _ping(request, kind, exit_status, **target(request, **url))

    async def async_form(
        request: HttpRequest, kind: str = PingKind.SUCCESS, exit_status: int | None = None, **url
    ) -> HttpResponse:
        return await _ping_async(request, kind, exit_status, **target(request, **url))

    view.async_form = async_form  # type: ignore[attr-defined]
    return view


def _uuid_target(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    return {"code": code}


def _slug_target(request: HttpRequest, key: str, slug: str) -> dict[str, Any]:
    return {"key": key, "slug": slug, "create": request.GET.get("create") == "1"}


ping_by_uuid = _ping_view(_uuid_target)
ping_by_slug = _ping_view(_slug_target)


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
            services.snooze(heartbeat, seconds, actor_label="ping URL")
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
