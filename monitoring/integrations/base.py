"""What every sender's parser shares: collecting problems by field path, and small validators.

A parser validates the whole request before the pipeline sees any of it, so a batch with one bad
alert stores nothing and the 400 names every problem (``alerts[2].labels``), not just the first.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from monitoring.models import Severity
from monitoring.pipeline import AlertInput

# The fingerprint column's size; senders' fingerprints and dedup keys must fit.
MAX_FINGERPRINT = 255
# One 400 need not list thousands of problems to be useful.
MAX_PROBLEMS = 50

# The words senders use for severity, folded to ours. Alertmanager and Grafana carry it in a free
# ``severity`` label, so the common conventions (PagerDuty, Opsgenie P1-P5, syslog) all appear.
SEVERITY_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ("critical", "crit", "page", "p1", "fatal", "emergency", "emerg", "alert", "disaster"),
        Severity.CRITICAL,
    ),
    **dict.fromkeys(("error", "err", "high", "major", "p2", "severe"), Severity.ERROR),
    **dict.fromkeys(
        ("warning", "warn", "medium", "minor", "p3", "average", "moderate"), Severity.WARNING
    ),
    **dict.fromkeys(
        ("info", "informational", "information", "low", "none", "notice", "p4", "p5", "ok"),
        Severity.INFO,
    ),
}


class Invalid(ValueError):
    """The request is wrong; ``fields`` maps a path (``alerts[2].labels``, "" for the body)
    to what is wrong there."""

    def __init__(self, fields: dict[str, list[str]], code: str = "invalid") -> None:
        self.fields = fields
        self.code = code
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(
            f"{path}: {messages[0]}" if path else messages[0]
            for path, messages in self.fields.items()
        )


class Problems:
    """Collects everything wrong with a payload before anything is processed."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        if path in self.fields or len(self.fields) < MAX_PROBLEMS:
            self.fields.setdefault(path, []).append(message)

    def check(self) -> None:
        if self.fields:
            raise Invalid(self.fields)


def at(path: str, name: str | int) -> str:
    """``alerts[2]`` + ``labels`` → ``alerts[2].labels``; ``alerts`` + 2 → ``alerts[2]``."""
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no NUL characters (PostgreSQL's jsonb refuses both)."""
    try:
        text = body.decode("utf-8-sig")
        if "\\u0000" in text:
            raise ValueError("NUL characters (\\u0000) are not allowed")
        return json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise Invalid({"": ["The body is not UTF-8 text."]}, code="parse_error") from None
    except RecursionError:
        raise Invalid({"": ["The JSON is nested too deeply."]}, code="parse_error") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        if not body.strip():
            message = "The body is empty; expected a JSON document."
        else:
            message = f"The body is not valid JSON: {exc}."
        raise Invalid({"": [message]}, code="parse_error") from None


def severity_of(word: Any) -> str | None:
    """Our severity for a sender's word, or None when the word means nothing to us."""
    if not isinstance(word, str | int):
        return None
    return SEVERITY_WORDS.get(str(word).strip().lower())


def obj(value: Any, path: str, problems: Problems) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.add(path, "must be a JSON object")
        return None
    return value


def text(
    data: dict[str, Any],
    name: str,
    path: str,
    problems: Problems,
    *,
    required: bool = False,
    max_length: int | None = None,
) -> str:
    """A string field; missing or null is "" (or a problem when required)."""
    value = data.get(name)
    where = at(path, name)
    if value is None:
        if required:
            problems.add(where, "is required")
        return ""
    if not isinstance(value, str):
        problems.add(where, "must be a string")
        return ""
    if required and not value.strip():
        problems.add(where, "must not be blank")
    if max_length is not None and len(value) > max_length:
        problems.add(where, f"must be at most {max_length} characters")
    return value


def string_map(
    value: Any,
    path: str,
    problems: Problems,
    *,
    required: bool = False,
    non_empty: bool = False,
    coerce: bool = False,
) -> dict[str, str]:
    """Labels and annotations: an object of string values (scalars stringified if ``coerce``)."""
    if value is None:
        if required:
            problems.add(path, "is required")
        return {}
    if not isinstance(value, dict):
        problems.add(path, "must be an object of string values")
        return {}
    out: dict[str, str] = {}
    for name, item in value.items():
        if not name:
            problems.add(path, "names must not be empty")
        elif isinstance(item, str):
            out[name] = item
        elif coerce and isinstance(item, bool):
            out[name] = "true" if item else "false"
        elif coerce and isinstance(item, int | float) and math.isfinite(item):
            out[name] = str(item)
        else:
            problems.add(at(path, name), "must be a string")
    if non_empty and not value:
        problems.add(path, "must have at least one entry")
    return out


def time_of(value: Any, path: str, problems: Problems) -> datetime | None:
    """An RFC 3339 time; Go's zero time (``0001-01-01T00:00:00Z``) means "not set"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.add(path, "must be an RFC 3339 time string")
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        problems.add(path, f"is not an RFC 3339 time: {value[:40]!r}")
        return None
    if parsed.tzinfo is None:
        problems.add(path, "must include a time zone (Z or ±hh:mm)")
        return None
    if parsed.year <= 1:
        return None
    return parsed


def fingerprint_of(data: dict[str, Any], name: str, path: str, problems: Problems) -> str:
    value = text(data, name, path, problems, max_length=MAX_FINGERPRINT)
    return value.strip()


def link(href: Any, text_: str) -> dict[str, str] | None:
    if isinstance(href, str) and href.strip():
        return {"href": href.strip(), "text": text_}
    return None


def alert_links(annotations: dict[str, str], *extra: dict[str, str] | None) -> list[dict[str, str]]:
    """Links people want on an alert: the runbook from the annotations, then the sender's own."""
    found = [link(annotations.get("runbook_url"), "Runbook"), *extra]
    return [item for item in found if item is not None]


def parse_alertmanager_alert(
    raw: Any,
    path: str,
    problems: Problems,
    now: datetime,
    *,
    has_status: bool,
) -> AlertInput | None:
    """One alert in Alertmanager's shape (webhook, API v2 and Grafana all share it).

    ``has_status``: webhook bodies say ``firing``/``resolved``; the API v2 (what Prometheus
    posts) does not, and an ``endsAt`` in the past is how it says "resolved".
    """
    data = obj(raw, path, problems)
    if data is None:
        return None
    labels = string_map(
        data.get("labels"), at(path, "labels"), problems, required=True, non_empty=True
    )
    annotations = string_map(data.get("annotations"), at(path, "annotations"), problems)
    starts_at = time_of(data.get("startsAt"), at(path, "startsAt"), problems)
    ends_at = time_of(data.get("endsAt"), at(path, "endsAt"), problems)
    generator_url = text(data, "generatorURL", path, problems)
    fingerprint = fingerprint_of(data, "fingerprint", path, problems)

    status = data.get("status") if has_status else None
    if status is None:
        status = "resolved" if ends_at is not None and ends_at <= now else "firing"
    elif status not in ("firing", "resolved"):
        problems.add(at(path, "status"), 'must be "firing" or "resolved"')
    if status == "firing":
        ends_at = None  # a firing alert's endsAt is the sender's guess at expiry, not an end

    return AlertInput(
        labels=labels,
        status=status,
        severity=severity_of(labels.get("severity")) or Severity.ERROR,
        summary=annotations.get("summary", ""),
        description=annotations.get("description", ""),
        annotations=annotations,
        fingerprint=fingerprint,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
    )
