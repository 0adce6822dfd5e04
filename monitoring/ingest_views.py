"""The ingest endpoints: where senders post alerts, each in its own wire format.

Plain Django views rather than DRF: senders are not users (the integration key is the only
credential, no session, no CSRF) and each expects its own answer — Alertmanager and Grafana any
2xx, Prometheus Alertmanager's empty 200, PagerDuty clients PagerDuty's 202/400/429 bodies.
Refusals from the non-PagerDuty endpoints use Tocsin's one error shape.

Every request: one integration lookup by key hash (with its service and team), the parser
validates the whole body, then ``pipeline.process`` — so a bad batch stores nothing and an
identical re-send costs two more queries. Keys appear in URLs, so nothing here logs the path
and every response is marked as logged to keep Django's request logger from logging it either.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from monitoring import ingest_stats
from monitoring.integrations import Invalid, events_v2, parser_for
from monitoring.integrations.base import load_json
from monitoring.models import Integration, IntegrationKind
from monitoring.pipeline import Outcome, process
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
    found = Integration.by_key(key, kind) if 0 < len(key) <= MAX_KEY_LENGTH else None
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

    ``cache.add`` then ``cache.incr`` is atomic on Redis (shared by every web process) and on
    LocMem (per process, for the embedded single-process default). A cache outage lets the
    request through: losing alerts is worse than losing the limit.
    """
    limit = integration.rate_limit_per_minute
    if not limit:
        return
    now = clock()
    key = rate_key(integration.pk, int(now // 60))
    try:
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # expired or evicted between add and incr
            cache.add(key, 1, timeout=120)
            count = 1
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


def _run(integration: Integration, items: list, kind: str, started: float) -> list[Outcome]:
    outcomes = process(integration.service, items, source=kind, integration=integration)
    tally = Counter(outcome.result for outcome in outcomes)
    seconds: float | None = time.perf_counter() - started
    if not tally:
        ingest_stats.observe(kind, "empty", seconds)  # a request with no alerts in it
    for result, count in tally.items():
        ingest_stats.observe(kind, result, seconds, count=count)
        seconds = None
    return outcomes


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


@csrf_exempt
def webhook(request: HttpRequest, kind: str, key: str = "") -> HttpResponse:
    """``POST /ingest/<kind>/<key>/`` or ``/ingest/<kind>/`` with ``Authorization: Bearer``."""
    started = time.perf_counter()
    try:
        _check_method(request)
        key = key or _bearer_key(request)
        body = _read_body(request)
        integration = _integration(key, kind)
        _check_rate(integration)
        try:
            items = parser_for(kind).parse(load_json(body), timezone.now())
        except Invalid as exc:
            raise Refused.invalid(exc) from None
        outcomes = _run(integration, items, kind, started)
    except Refused as refused:
        ingest_stats.observe(kind, refused.result, time.perf_counter() - started)
        body = error_body(refused.code, refused.message, refused.fields)
        return _answer(JsonResponse(body, status=refused.status), refused.headers)
    except Exception:
        _failed(kind, started)
        body = error_body("error", "The alerts could not be processed; retry later.")
        return _answer(JsonResponse(body, status=500))

    if kind == IntegrationKind.PROMETHEUS:
        return _answer(HttpResponse(status=200))  # Alertmanager's API v2 answers an empty 200
    results = Counter(outcome.result for outcome in outcomes)
    return _answer(JsonResponse({"status": "ok", "received": len(items), "results": results}))


# --- PagerDuty Events API v2 ------------------------------------------------------------------

SOURCE_EVENTS_V2 = IntegrationKind.EVENTS_V2


def _pd_error(refused: Refused, errors: list[str] | None = None) -> HttpResponse:
    if refused.status == 400:
        body: dict[str, Any] = {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors or [refused.message],
        }
    elif refused.status == 429:
        body = {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
            "errors": [refused.message],
        }
    else:
        body = {"status": refused.code, "message": refused.message, "errors": [refused.message]}
    return _answer(JsonResponse(body, status=refused.status), refused.headers)


def _pd_errors(exc: Invalid) -> list[str]:
    return [
        f"{path} {message}" if path else message
        for path, messages in exc.fields.items()
        for message in messages
    ]


@csrf_exempt
def events_v2_enqueue(request: HttpRequest) -> HttpResponse:
    """``POST /ingest/pagerduty/v2/enqueue``: PagerDuty's Events API v2, answered as it does."""
    kind = SOURCE_EVENTS_V2
    started = time.perf_counter()
    try:
        _check_method(request)
        body = _read_body(request)
        try:
            data = load_json(body)
            routing_key = events_v2.routing_key_of(data)
            if not routing_key:
                events_v2.parse_event(data, timezone.now())  # raises, naming every problem
            integration = _integration(routing_key, kind, what="routing_key")
            _check_rate(integration)
            event = events_v2.parse_event(data, timezone.now())
        except Invalid as exc:
            ingest_stats.observe(kind, "invalid", time.perf_counter() - started)
            return _pd_error(Refused.invalid(exc), _pd_errors(exc))
        _run(integration, [event.item], kind, started)
    except Refused as refused:
        ingest_stats.observe(kind, refused.result, time.perf_counter() - started)
        return _pd_error(refused)
    except Exception:
        _failed(kind, started)
        body = {"status": "error", "message": "Event could not be processed; retry later."}
        return _answer(JsonResponse(body, status=500))
    answer = {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}
    return _answer(JsonResponse(answer, status=202))
