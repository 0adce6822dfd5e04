"""The PagerDuty Events API v2 (``POST /v2/enqueue``), so existing PagerDuty clients work.

Point a client's base URL at ``<tocsin>/ingest/pagerduty`` and use an Events v2 integration's key
as the ``routing_key``. One event per request:

- ``trigger`` needs ``payload.summary``, ``payload.source`` and ``payload.severity``
  (critical/error/warning/info); a missing ``dedup_key`` is generated and returned;
- ``acknowledge`` and ``resolve`` need only ``routing_key``, ``dedup_key`` and ``event_action``.

The ``dedup_key`` is the alert's fingerprint. ``source``, ``component``, ``group`` and ``class``
become labels (so silences can match them; at most 2,048 characters each), ``custom_details`` the
details, ``links`` and ``images`` links (http or https URLs only). An ``acknowledge`` is recorded
as ``alert.acknowledged`` naming the integration as the actor; incidents acknowledges the
incident.

Change events (``POST /v2/change/enqueue``, PagerDuty's Change Events API) use the same routing
key: ``payload.summary`` (required, at most 1,024 characters), ``payload.source``,
``payload.timestamp``, ``payload.custom_details`` and ``links``. They never page; they are stored
for the service (``monitoring.ingest.changes``) and shown next to its alerts.

Replies are PagerDuty's: ``202 {"status": "success", "message": "Event processed", "dedup_key":
…}`` (``"Change event processed"`` for changes) and ``{"status": "invalid event", "message":
"Event object is invalid", "errors": […]}`` for a 400.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring.ingest.kinds.base import (
    MAX_FINGERPRINT,
    MAX_LABEL_VALUE,
    MAX_LINKS,
    Invalid,
    Problems,
    Route,
    Step,
    at,
    obj,
    required_url,
    text,
    time_of,
    url_of,
)
from monitoring.inputs import AlertInput
from monitoring.models.choices import AlertStatus

KIND = "events_v2"
LABEL = "Events API v2 (PagerDuty-compatible)"
SOURCE = KIND
# The key travels in the body as routing_key, as PagerDuty clients send it.
ROUTES = [
    Route(r"^pagerduty/v2/enqueue/?$", "ingest-events-v2", view="events_v2_enqueue"),
    Route(r"^pagerduty/v2/change/enqueue/?$", "ingest-change-events", view="change_enqueue"),
]
SETUP_TITLE = "Events API v2 (PagerDuty-compatible)"
SETUP_PATH = "/ingest/pagerduty/v2/enqueue"
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
# PagerDuty's own limit on a summary; longer ones are cut, as PagerDuty does.
MAX_SUMMARY = 1024
LABEL_FIELDS = ("source", "component", "group", "class")


@dataclass
class ParsedEvent:
    routing_key: str
    action: str
    dedup_key: str
    item: AlertInput


def routing_key_of(data: Any) -> str:
    """The integration key, read before the rest of the event is validated."""
    if isinstance(data, dict) and isinstance(data.get("routing_key"), str):
        return data["routing_key"].strip()
    return ""


def parse_event(data: Any, now: datetime) -> ParsedEvent:
    if not isinstance(data, dict):
        raise Invalid({"": ["Event must be a JSON object"]})
    problems = Problems()
    routing_key = text(data, "routing_key", "", problems, required=True)
    action = data.get("event_action")
    if action not in ACTIONS:
        problems.add("event_action", "must be one of " + ", ".join(ACTIONS))
    dedup_key = text(data, "dedup_key", "", problems, max_length=MAX_FINGERPRINT).strip()
    if action in ("acknowledge", "resolve") and not dedup_key:
        problems.add("dedup_key", f"is required to {action}")

    if action == "trigger":
        item = _trigger(data, dedup_key, problems)
        dedup_key = item.fingerprint
    elif action == "resolve":
        item = AlertInput(labels={}, status=AlertStatus.RESOLVED, fingerprint=dedup_key)
    else:
        item = AlertInput(labels={}, acknowledge=True, fingerprint=dedup_key)
    problems.check()
    return ParsedEvent(routing_key.strip(), action, dedup_key, item)


def parse(data: Any, now: datetime) -> list[AlertInput]:
    return [parse_event(data, now).item]


def _trigger(data: dict[str, Any], dedup_key: str, problems: Problems) -> AlertInput:
    payload = obj(data.get("payload"), "payload", problems) or {}
    summary = text(payload, "summary", "payload", problems, required=True)
    text(payload, "source", "payload", problems, required=True)
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        problems.add("payload.severity", "must be one of " + ", ".join(SEVERITIES))
    starts_at = time_of(payload.get("timestamp"), "payload.timestamp", problems)
    labels = {}
    for name in LABEL_FIELDS:
        value = text(payload, name, "payload", problems, max_length=MAX_LABEL_VALUE)
        if value:
            labels[name] = value

    details = _custom_details(payload)

    links = []
    client = text(data, "client", "", problems)
    client_url = url_of(data.get("client_url"), "client_url", problems)
    if client_url:
        links.append({"href": client_url, "text": client or "Client"})
    links += links_of(data, problems)
    for index, raw in enumerate(_list(data, "images", problems)):
        path = at("images", index)
        if obj(raw, path, problems) is not None:
            src = required_url(raw, "src", path, problems)
            href = url_of(raw.get("href"), at(path, "href"), problems)
            alt = text(raw, "alt", path, problems)
            links.append({"href": href or src, "text": alt or "Image", "image": src})
    if len(links) > MAX_LINKS:
        problems.add("links", f"at most {MAX_LINKS} links and images (got {len(links)})")

    return AlertInput(
        labels=labels,
        severity=severity if severity in SEVERITIES else "error",
        summary=summary.strip()[:MAX_SUMMARY],
        details=details,
        links=links,
        fingerprint=dedup_key or uuid.uuid4().hex,
        starts_at=starts_at,
    )


def links_of(data: dict[str, Any], problems: Problems) -> list[dict[str, str]]:
    """``links``: ``[{"href": …, "text": …}]``, http(s) URLs only."""
    links = []
    for index, raw in enumerate(_list(data, "links", problems)):
        path = at("links", index)
        if obj(raw, path, problems) is not None:
            href = required_url(raw, "href", path, problems)
            links.append({"href": href, "text": text(raw, "text", path, problems) or href})
    return links


def _custom_details(payload: dict[str, Any]) -> dict[str, Any]:
    custom = payload.get("custom_details")
    if custom is None:
        return {}
    if isinstance(custom, dict):
        return dict(custom)
    return {"custom_details": custom}


def _list(data: dict[str, Any], name: str, problems: Problems) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(name, "must be a list")
        return []
    return value


# --- Change events ------------------------------------------------------------------------------


@dataclass
class ParsedChange:
    routing_key: str
    summary: str
    source: str
    timestamp: datetime | None
    links: list[dict[str, str]]
    custom_details: dict[str, Any]


def parse_change(data: Any, now: datetime) -> ParsedChange:
    if not isinstance(data, dict):
        raise Invalid({"": ["Event must be a JSON object"]})
    problems = Problems()
    routing_key = text(data, "routing_key", "", problems, required=True)
    payload = obj(data.get("payload"), "payload", problems) or {}
    summary = text(payload, "summary", "payload", problems, required=True, max_length=MAX_SUMMARY)
    source = text(payload, "source", "payload", problems, max_length=255)
    timestamp = time_of(payload.get("timestamp"), "payload.timestamp", problems)
    details = _custom_details(payload)
    links = links_of(data, problems)
    if len(links) > MAX_LINKS:
        problems.add("links", f"at most {MAX_LINKS} links (got {len(links)})")
    problems.check()
    return ParsedChange(routing_key.strip(), summary.strip(), source, timestamp, links, details)


# --- PagerDuty's replies ------------------------------------------------------------------------


def accepted(dedup_key: str | None = None, *, change: bool = False) -> dict[str, Any]:
    if change:
        return {"status": "success", "message": "Change event processed"}
    return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def refused(status: int, code: str, message: str, errors: list[str]) -> dict[str, Any]:
    if status == 400:
        return {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    if status == 429:
        return {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
            "errors": errors,
        }
    return {"status": code, "message": message, "errors": errors}


def setup_steps(url: str, key: str) -> list[Step]:
    base = url.removesuffix("/v2/enqueue")
    return [
        {
            "text": "Any PagerDuty Events API v2 client works: use this base URL instead of "
            "https://events.pagerduty.com, and the key as the routing key (integration key).",
            "code": base,
        },
        {"text": "Routing key:", "code": key},
        {
            "text": "Alertmanager's PagerDuty receiver, for example:",
            "code": (
                "receivers:\n"
                "  - name: tocsin\n"
                "    pagerduty_configs:\n"
                f'      - url: "{url}"\n'
                f'        routing_key: "{key}"\n'
            ),
        },
        {
            "text": "Or trigger a test event with curl:",
            "code": (
                f"curl -X POST '{url}' \\\n"
                "  -H 'Content-Type: application/json' \\\n"
                f'  -d \'{{"routing_key": "{key}", "event_action": "trigger", '
                '"dedup_key": "tocsin-test", "payload": {"summary": "Test from curl", '
                '"source": "my-laptop", "severity": "warning"}}\''
            ),
        },
        {
            "text": "Report deploys and other changes with the same key (they never page, and "
            "show next to this service's alerts):",
            "code": f"{base}/v2/change/enqueue",
        },
    ]
