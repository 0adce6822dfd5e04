"""The PagerDuty Events API v2 (``POST /v2/enqueue``), so existing PagerDuty clients work.

Point a client's base URL at ``<tocsin>/ingest/pagerduty`` and use an Events v2 integration's key
as the ``routing_key``. One event per request:

- ``trigger`` needs ``payload.summary``, ``payload.source`` and ``payload.severity``
  (critical/error/warning/info); a missing ``dedup_key`` is generated and returned;
- ``acknowledge`` and ``resolve`` need only ``routing_key``, ``dedup_key`` and ``event_action``.

The ``dedup_key`` is the alert's fingerprint. ``source``, ``component``, ``group`` and ``class``
become labels (so silences can match them), ``custom_details`` the details, ``links`` and
``images`` links.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring.integrations.base import (
    MAX_FINGERPRINT,
    Invalid,
    Problems,
    at,
    obj,
    text,
    time_of,
)
from monitoring.models import AlertStatus
from monitoring.pipeline import AlertInput

SOURCE = "events_v2"
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
        value = text(payload, name, "payload", problems)
        if value:
            labels[name] = value

    custom = payload.get("custom_details")
    if custom is None:
        details: dict[str, Any] = {}
    elif isinstance(custom, dict):
        details = dict(custom)
    else:
        details = {"custom_details": custom}

    links = []
    client = text(data, "client", "", problems)
    client_url = text(data, "client_url", "", problems)
    if client_url:
        links.append({"href": client_url, "text": client or "Client"})
    for index, raw in enumerate(_list(data, "links", problems)):
        path = at("links", index)
        if obj(raw, path, problems) is not None:
            href = text(raw, "href", path, problems, required=True)
            links.append({"href": href, "text": text(raw, "text", path, problems) or href})
    for index, raw in enumerate(_list(data, "images", problems)):
        path = at("images", index)
        if obj(raw, path, problems) is not None:
            src = text(raw, "src", path, problems, required=True)
            href = text(raw, "href", path, problems)
            alt = text(raw, "alt", path, problems)
            links.append({"href": href or src, "text": alt or "Image", "image": src})

    return AlertInput(
        labels=labels,
        severity=severity if severity in SEVERITIES else "error",
        summary=summary.strip()[:MAX_SUMMARY],
        details=details,
        links=links,
        fingerprint=dedup_key or uuid.uuid4().hex,
        starts_at=starts_at,
    )


def _list(data: dict[str, Any], name: str, problems: Problems) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(name, "must be a list")
        return []
    return value
