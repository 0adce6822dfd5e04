"""The ingest endpoints: where senders post alerts, each in its own wire format.

Plain Django views rather than DRF: senders are not users (the integration key is the only
credential, no session, no CSRF) and each expects its own answer (the kind module's ``reply``) —
Alertmanager and Grafana any 2xx, Prometheus Alertmanager's empty 200, PagerDuty clients
PagerDuty's 202/400/429 bodies. Refusals from the PagerDuty endpoints use PagerDuty's shape;
every other refusal (including unknown paths under /ingest/) uses Tocsin's one error shape,
``{"error": {"code", "message", "fields"}}``: always JSON, never an HTML page.

Every request: the integration its key opens (remembered for a few seconds per process,
:mod:`monitoring.ingest.key_cache`; a rotated or revoked key stops working at once), the rate
limit (one cache round trip, none when the integration is unlimited), the parser validates the
whole body, then ``pipeline.process`` — so a bad batch stores nothing and an identical re-send
costs two queries. Keys appear in URLs, so nothing here logs the path
and every response is marked as logged to keep Django's request logger from logging it either.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from monitoring.ingest import batching, changes, key_cache, kinds
from monitoring.ingest import stats as ingest_stats
from monitoring.ingest.batching import Submission
from monitoring.ingest.kinds import Invalid, events_v2
from monitoring.ingest.kinds.base import load_json
from monitoring.models import Integration, IntegrationKind
from tocsin.api.errors import error_body

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024 * 1024
# The rate limit's clock (seconds since the epoch); tests pin it.
clock = time.time
# Longer "keys" are not ours; refuse them without hashing or querying.
MAX_KEY_LENGTH = 200


class Refused(Exception):
    """A request turned away before its alerts were processed."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        result: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.result = result
        self.fields = fields or {}
        self.headers = headers or {}

    @classmethod
    def invalid(cls, exc: Invalid) -> Refused:
        fields = {path: messages for path, messages in exc.fields.items() if path}
        return cls(400, exc.code, exc.message, result="invalid", fields=fields)


# --- The steps every endpoint takes -----------------------------------------------------------


def _check_method(request: HttpRequest) -> None:
    if request.method != "POST":
        raise Refused(
            405,
            "method_not_allowed",
            f"Method {request.method} is not allowed here; send alerts with POST.",
            result="method_not_allowed",
            headers={"Allow": "POST"},
        )


def _bearer_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        message = (
            "Authentication credentials were not provided."
            if not header
            else 'The Authorization header must be "Bearer <integration key>".'
        )
        raise Refused(
            401,
            "not_authenticated",
            message + " Send the integration key as a Bearer token or in the URL.",
            result="not_authenticated",
            headers={"WWW-Authenticate": 'Bearer realm="tocsin-ingest"'},
        )
    return credentials.strip()


def _read_body(request: HttpRequest) -> bytes:
    limit = getattr(settings, "TOCSIN_INGEST_MAX_BYTES", DEFAULT_MAX_BYTES)
    too_large = Refused(
        413,
        "too_large",
        f"The body is larger than the {limit} bytes this server accepts; send smaller batches.",
        result="too_large",
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def _integration(key: str, kind: str, what: str = "integration key") -> Integration:
    found = key_cache.integration_for_key(key, kind) if 0 < len(key) <= MAX_KEY_LENGTH else None
    if found is None:
        label = IntegrationKind(kind).label
        raise Refused(
            404,
            "not_found",
            f"No {label} integration has this {what}; it may be wrong, revoked or rotated.",
            result="not_found",
        )
    return found


def rate_key(integration_id: int, minute: int) -> str:
    return f"ingest-rate:{integration_id}:{minute}"


def _check_rate(integration: Integration) -> None:
    """At most ``rate_limit_per_minute`` requests per integration per clock minute.

    Counted in Redis when it is configured (shared by every web process), else in each
    process's memory (the embedded default: with several web processes each counts its own
    share, so the limit is per process there). A cache outage lets the request through: losing
    alerts is worse than losing the limit.
    """
    limit = integration.rate_limit_per_minute
    if not limit:
        return
    now = clock()
    key = rate_key(integration.pk, int(now // 60))
    try:
        count = _count(key)
    except Exception:
        logger.warning("ingest rate limit unavailable (cache error)", exc_info=True)
        return
    if count > limit:
        retry_after = max(1, math.ceil(60 - now % 60))
        raise Refused(
            429,
            "throttled",
            f"This integration accepts {limit} requests per minute; "
            f"retry in {retry_after} seconds.",
            result="rate_limited",
            headers={"Retry-After": str(retry_after)},
        )


def _count(key: str) -> int:
    """Add this request to ``key``'s count and return the count."""
    if settings.REDIS_URL:
        # INCR and EXPIRE in one round trip (Django's cache.add + cache.incr take three).
        redis_key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(redis_key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, 120)
        return pipe.execute()[0]
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key)
    except ValueError:  # expired or evicted between add and incr
        cache.add(key, 1, timeout=120)
        return 1


def _answer(response: HttpResponse, headers: dict[str, str] | None = None) -> HttpResponse:
    for name, value in (headers or {}).items():
        response[name] = value
    # Keep django.request from logging 4xx/5xx with the path, which may hold the key.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _failed(kind: str, started: float) -> None:
    logger.exception("ingest from %s failed", kind)
    ingest_stats.observe(kind, "error", time.perf_counter() - started)


# --- Alertmanager, Grafana, Prometheus, generic -----------------------------------------------


def accept(
    request: HttpRequest,
    kind: str,
    key: str,
    started: float,
    integration: Integration | None = None,
) -> Submission:
    """Everything before the pipeline: method, key, body, integration (looked up unless the
    caller already holds the key's), rate limit, and the sender's format parsed and validated
    whole. Raises Refused."""
    _check_method(request)
    key = key or _bearer_key(request)
    body = _read_body(request)
    integration = integration or _integration(key, kind)
    _check_rate(integration)
    try:
        items = kinds.get(kind).parse(load_json(body), timezone.now())
    except Invalid as exc:
        raise Refused.invalid(exc) from None
    return Submission(integration, kind, items, started)


def _accept_or_answer(
    request: HttpRequest,
    kind: str,
    key: str,
    started: float,
    integration: Integration | None = None,
) -> Submission | HttpResponse:
    try:
        return accept(request, kind, key, started, integration)
    except Refused as refused:
        ingest_stats.observe(kind, refused.result, time.perf_counter() - started)
        return _refusal(refused)
    except Exception:
        return _error(kind, started)


def _reply(submission: Submission) -> HttpResponse:
    if submission.error is not None:
        logger.error("ingest from %s failed", submission.kind, exc_info=submission.error)
        ingest_stats.observe(submission.kind, "error", time.perf_counter() - submission.started)
        return _error_response()
    module = kinds.get(submission.kind)
    return _answer(module.reply(submission.outcomes, len(submission.items)))


def _error(kind: str, started: float) -> HttpResponse:
    _failed(kind, started)
    return _error_response()


def _error_response() -> HttpResponse:
    body = error_body("error", "The alerts could not be processed; retry later.")
    return _answer(JsonResponse(body, status=500))


@csrf_exempt
def webhook(request: HttpRequest, kind: str, key: str = "") -> HttpResponse:
    """``POST /ingest/<kind>/<key>/`` or ``/ingest/<kind>/`` with ``Authorization: Bearer``.

    Served by :func:`webhook_async` under ASGI (the web server); this synchronous form is the
    same steps for a lone request (WSGI, the test client)."""
    accepted = _accept_or_answer(request, kind, key, time.perf_counter())
    if isinstance(accepted, HttpResponse):
        return accepted
    batching.run([accepted])
    return _reply(accepted)


async def webhook_async(request: HttpRequest, kind: str, key: str = "") -> HttpResponse:
    """The webhook endpoint on the event loop: concurrent requests of this process are
    processed together (:mod:`monitoring.ingest.batching`), each answered after its alerts
    are committed, with its own outcomes."""
    started = time.perf_counter()
    known = _known_without_io(request, kind, key)
    if known is not None:  # the usual case in a storm: no thread hop before the batch
        accepted = _accept_or_answer(request, kind, key, started, known)
    else:
        accepted = await sync_to_async(_accept_in_thread, thread_sensitive=False)(
            request, kind, key, started
        )
    if isinstance(accepted, HttpResponse):
        return accepted
    await batching.batcher().submit(accepted)
    return _reply(accepted)


webhook.async_form = webhook_async  # type: ignore[attr-defined]  # tocsin.asgi serves it


def _known_without_io(request: HttpRequest, kind: str, key: str) -> Integration | None:
    """The key's integration when accepting the request needs no I/O at all, so it can be
    accepted on the event loop: the key's answer is remembered and trusted without a round trip
    and the rate limit is off or counted in this process's memory. Else None (the thread does
    every step, refusals included)."""
    if not key:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        key = credentials.strip() if scheme.lower() == "bearer" else ""
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        return None
    integration = key_cache.remembered(key, kind)
    if integration is None or (integration.rate_limit_per_minute and settings.REDIS_URL):
        return None
    return integration


def _accept_in_thread(
    request: HttpRequest, kind: str, key: str, started: float
) -> Submission | HttpResponse:
    try:
        return _accept_or_answer(request, kind, key, started)
    finally:
        close_old_connections()  # a key not remembered yet was read from the database


def _refusal(refused: Refused) -> HttpResponse:
    body = error_body(refused.code, refused.message, refused.fields)
    return _answer(JsonResponse(body, status=refused.status), refused.headers)


def unknown_path(request: HttpRequest) -> HttpResponse:
    """Anything under /ingest/ that no kind routes: a JSON 404 (senders parse JSON, not HTML)."""
    return _refusal(
        Refused(
            404,
            "not_found",
            "No ingest endpoint at this path; see the service page for the URL to use.",
            result="not_found",
        )
    )


# --- PagerDuty Events API v2: alert events and change events ---------------------------------


def _pd_error(refused: Refused, errors: list[str] | None = None) -> HttpResponse:
    body = events_v2.refused(
        refused.status, refused.code, refused.message, errors or [refused.message]
    )
    return _answer(JsonResponse(body, status=refused.status), refused.headers)


def _pd_errors(exc: Invalid) -> list[str]:
    return [
        f"{path} {message}" if path else message
        for path, messages in exc.fields.items()
        for message in messages
    ]


def _pd_endpoint(
    request: HttpRequest,
    kind: str,
    source: str,
    parse: Callable[[Any, Any], Any],
    handle: Callable[[Integration, Any, float], dict[str, Any]],
) -> HttpResponse:
    """The steps both PagerDuty endpoints take; ``handle`` stores the parsed event and returns
    the 202 body."""
    started = time.perf_counter()
    try:
        _check_method(request)
        body = _read_body(request)
        try:
            data = load_json(body)
            routing_key = events_v2.routing_key_of(data)
            if not routing_key:
                parse(data, timezone.now())  # raises, naming every problem
            integration = _integration(routing_key, kind, what="routing_key")
            _check_rate(integration)
            parsed = parse(data, timezone.now())
        except Invalid as exc:
            ingest_stats.observe(source, "invalid", time.perf_counter() - started)
            return _pd_error(Refused.invalid(exc), _pd_errors(exc))
        answer = handle(integration, parsed, started)
    except Refused as refused:
        ingest_stats.observe(source, refused.result, time.perf_counter() - started)
        return _pd_error(refused)
    except Exception:
        _failed(source, started)
        body = {"status": "error", "message": "Event could not be processed; retry later."}
        return _answer(JsonResponse(body, status=500))
    return _answer(JsonResponse(answer, status=202))


@csrf_exempt
def events_v2_enqueue(request: HttpRequest, kind: str = IntegrationKind.EVENTS_V2) -> HttpResponse:
    """``POST /ingest/pagerduty/v2/enqueue``: PagerDuty's Events API v2, answered as it does."""

    def handle(integration: Integration, event: Any, started: float) -> dict[str, Any]:
        submission = Submission(integration, kind, [event.item], started)
        batching.run([submission])
        if submission.error is not None:
            raise submission.error
        return events_v2.accepted(event.dedup_key)

    return _pd_endpoint(request, kind, kind, events_v2.parse_event, handle)


@csrf_exempt
def change_enqueue(request: HttpRequest, kind: str = IntegrationKind.EVENTS_V2) -> HttpResponse:
    """``POST /ingest/pagerduty/v2/change/enqueue``: PagerDuty's Change Events API. A change
    never pages; it is stored for the service and shown next to its alerts."""
    source = "change_events"

    def handle(integration: Integration, change: Any, started: float) -> dict[str, Any]:
        changes.store(integration, change)
        ingest_stats.observe(source, "stored", time.perf_counter() - started)
        return events_v2.accepted(change=True)

    return _pd_endpoint(request, kind, source, events_v2.parse_change, handle)
