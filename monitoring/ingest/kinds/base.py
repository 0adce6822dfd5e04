"""What every integration kind shares: the declaration's parts, problems by field path, and the
validators and bounds every sender's alerts pass.

A parser validates the whole request before the pipeline sees any of it, so a batch with one bad
alert stores nothing and the 400 names every problem (``alerts[2].labels``), not just the first.

Bounds, the same for every sender (Prometheus and Alertmanager practice: labels identify an
alert and stay short; annotations carry prose):

- labels: at most ``MAX_LABELS`` (100) per alert; names at most ``MAX_NAME`` (128) characters;
  values at most ``MAX_LABEL_VALUE`` (2,048) characters;
- annotations: at most ``MAX_ANNOTATIONS`` (100); names at most 128 characters; values at most
  ``MAX_ANNOTATION_VALUE`` (16,384 = 16 KiB) characters;
- links (``runbook_url``, ``generatorURL``, ``externalURL``, Grafana's URLs, Events v2 ``links``,
  ``images`` and ``client_url``, generic ``links``): http or https URLs only (no ``javascript:``,
  ``data:`` …), at most ``MAX_URL`` (2,048) characters, at most ``MAX_LINKS`` (50) per alert.

A refusal names the field path and the bound: ``alerts[0].labels: at most 100 labels (got 250)``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime

from monitoring.inputs import AlertInput
from monitoring.models.choices import Severity

# The fingerprint column's size; senders' fingerprints and dedup keys must fit.
MAX_FINGERPRINT = 255
# One 400 need not list thousands of problems to be useful.
MAX_PROBLEMS = 50
MAX_LABELS = 100
MAX_ANNOTATIONS = 100
MAX_NAME = 128
MAX_LABEL_VALUE = 2048
MAX_ANNOTATION_VALUE = 16 * 1024
MAX_URL = 2048
MAX_LINKS = 50
URL_SCHEMES = ("http", "https")

# Where a kind's URLs live: a regex under /ingest/ capturing ``key`` when the key is in the path.
KEY = r"(?P<key>[^/]+)"


@dataclass(frozen=True)
class Route:
    """One ingest URL of a kind. ``view`` names the function in ``monitoring.ingest.views``
    that answers it; the view receives ``kind`` (and ``key`` when the pattern captures it)."""

    pattern: str
    name: str
    view: str = "webhook"
    kwargs: dict[str, Any] = field(default_factory=dict)


def keyed_routes(kind: str) -> list[Route]:
    """``/ingest/<kind>/<key>/`` and ``/ingest/<kind>/`` with ``Authorization: Bearer <key>``."""
    return [
        Route(rf"^{kind}/?$", f"ingest-{kind}-bearer"),
        Route(rf"^{kind}/{KEY}/?$", f"ingest-{kind}"),
    ]


# A setup step on the service page: a sentence and a snippet to paste.
Step = dict[str, str]


def json_reply(outcomes: list[Any], received: int) -> HttpResponse:
    """Tocsin's answer to a webhook: what happened to each alert, counted."""
    results: dict[str, int] = {}
    for outcome in outcomes:
        results[outcome.result] = results.get(outcome.result, 0) + 1
    return JsonResponse({"status": "ok", "received": received, "results": results})


Parser = Callable[[Any, datetime], list[AlertInput]]

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
    what: str = "labels",
    max_entries: int = MAX_LABELS,
    max_value: int = MAX_LABEL_VALUE,
) -> dict[str, str]:
    """Labels and annotations: an object of string values (scalars stringified if ``coerce``),
    within the bounds (entries, name and value lengths) that the module docstring states."""
    if value is None:
        if required:
            problems.add(path, "is required")
        return {}
    if not isinstance(value, dict):
        problems.add(path, "must be an object of string values")
        return {}
    if len(value) > max_entries:
        problems.add(path, f"at most {max_entries} {what} (got {len(value)})")
        return {}
    out: dict[str, str] = {}
    for name, item in value.items():
        if not name:
            problems.add(path, "names must not be empty")
            continue
        if len(name) > MAX_NAME:
            problems.add(path, f"names must be at most {MAX_NAME} characters ({name[:40]!r}…)")
            continue
        if isinstance(item, str):
            out[name] = item
        elif coerce and isinstance(item, bool):
            out[name] = "true" if item else "false"
        elif coerce and isinstance(item, int | float) and math.isfinite(item):
            out[name] = str(item)
        else:
            problems.add(at(path, name), "must be a string")
            continue
        if len(out[name]) > max_value:
            problems.add(at(path, name), f"must be at most {max_value} characters")
    if non_empty and not value:
        problems.add(path, "must have at least one entry")
    return out


def annotation_map(value: Any, path: str, problems: Problems, *, coerce: bool = False) -> dict:
    return string_map(
        value,
        path,
        problems,
        coerce=coerce,
        what="annotations",
        max_entries=MAX_ANNOTATIONS,
        max_value=MAX_ANNOTATION_VALUE,
    )


def url_of(value: Any, path: str, problems: Problems) -> str:
    """A link's URL: "" when absent, else an http(s) URL of at most ``MAX_URL`` characters."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        problems.add(path, "must be a URL string")
        return ""
    href, problem = _checked_url(value)
    if problem:
        problems.add(path, problem)
    return href


# Senders repeat the same URLs and times across a batch and across re-sends (a rule's
# generatorURL, a group's startsAt): each distinct text is checked once per process.
@functools.lru_cache(maxsize=4096)
def _checked_url(value: str) -> tuple[str, str]:
    """(the URL, "") or ("", what is wrong with it)."""
    href = value.strip()
    if len(href) > MAX_URL:
        return "", f"must be at most {MAX_URL} characters"
    try:
        parts = urlsplit(href)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in URL_SCHEMES or not parts.netloc:
        return "", "must be an http or https URL"
    return href, ""


def time_of(value: Any, path: str, problems: Problems) -> datetime | None:
    """An RFC 3339 time; Go's zero time (``0001-01-01T00:00:00Z``) means "not set"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.add(path, "must be an RFC 3339 time string")
        return None
    parsed, problem = _parsed_time(value)
    if problem:
        problems.add(path, problem)
    return parsed


@functools.lru_cache(maxsize=4096)
def _parsed_time(value: str) -> tuple[datetime | None, str]:
    """(the time or None for Go's zero time, "") or (None, what is wrong with it)."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        return None, f"is not an RFC 3339 time: {value[:40]!r}"
    if parsed.tzinfo is None:
        return None, "must include a time zone (Z or ±hh:mm)"
    if parsed.year <= 1:
        return None, ""
    return parsed, ""


def fingerprint_of(data: dict[str, Any], name: str, path: str, problems: Problems) -> str:
    value = text(data, name, path, problems, max_length=MAX_FINGERPRINT)
    return value.strip()


def required_url(data: dict[str, Any], name: str, path: str, problems: Problems) -> str:
    """A URL field that must be there (a link's ``href``, an image's ``src``)."""
    if data.get(name) in (None, ""):
        problems.add(at(path, name), "is required")
        return ""
    return url_of(data[name], at(path, name), problems)


def link(href: Any, text_: str, path: str, problems: Problems) -> dict[str, str] | None:
    """A link to show with an alert, or None when there is no URL (or it is refused)."""
    checked = url_of(href, path, problems)
    return {"href": checked, "text": text_} if checked else None


def alert_links(
    annotations: dict[str, str],
    path: str,
    problems: Problems,
    *extra: dict[str, str] | None,
) -> list[dict[str, str]]:
    """Links people want on an alert: the runbook from the annotations, then the sender's own."""
    href = annotations.get("runbook_url")
    runbook = None
    if href is not None:
        runbook = link(href, "Runbook", at(at(path, "annotations"), "runbook_url"), problems)
    found = [item for item in (runbook, *extra) if item is not None]
    if len(found) > MAX_LINKS:
        problems.add(at(path, "links"), f"at most {MAX_LINKS} links (got {len(found)})")
    return found


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
    annotations = annotation_map(data.get("annotations"), at(path, "annotations"), problems)
    starts_at = time_of(data.get("startsAt"), at(path, "startsAt"), problems)
    ends_at = time_of(data.get("endsAt"), at(path, "endsAt"), problems)
    generator_url = url_of(data.get("generatorURL"), at(path, "generatorURL"), problems)
    fingerprint = fingerprint_of(data, "fingerprint", path, problems)

    status = data.get("status") if has_status else None
    if status is None:
        status = "resolved" if ends_at is not None and ends_at <= now else "firing"
    elif status not in ("firing", "resolved"):
        problems.add(at(path, "status"), 'must be "firing" or "resolved"')
    expected_end_at = None
    if status == "firing":
        # A firing alert's endsAt is when it resolves unless re-sent (Prometheus renews it on
        # every send); Alertmanager's webhook sends Go's zero time (None here) for "no end".
        expected_end_at = ends_at if ends_at is not None and ends_at > now else None
        ends_at = None

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
        expected_end_at=expected_end_at,
        generator_url=generator_url,
    )
