"""Generic JSON: Tocsin's own alert format, for scripts and tools without a native integration.

``POST /ingest/generic/<key>/`` (or ``/ingest/generic/`` with ``Authorization: Bearer <key>``)
with one alert as a JSON object, or a batch as ``{"alerts": [ … ]}``. Every field is optional
except that an alert needs something to name it: ``title``, ``labels`` or ``fingerprint``.

``title`` (alias ``summary``)
    One line for people, up to 500 characters.
``status``
    ``"firing"`` (default) or ``"resolved"``.
``severity``
    ``critical``, ``error`` (default), ``warning`` or ``info``; the common synonyms
    (``page``/``p1``, ``high``/``major``, ``warn``/``medium``/``minor``, ``low``/``none``) are
    understood; anything else is refused.
``fingerprint`` (alias ``dedup_key``)
    The alert's identity: sends with the same fingerprint update one alert. Without one, the
    identity is the ``labels``; without labels, the ``title``.
``labels``
    An object of short string values (numbers and booleans are turned into strings) that
    identify the alert and that silences and inhibition rules match.
``annotations``
    An object of string values with more words about the alert (``runbook_url`` becomes a link).
``description``
    Longer text; defaults to ``annotations.description``.
``links``
    A list of URLs, or of ``{"href": …, "text": …}`` objects.
``details``
    Any JSON object, shown with the alert.
``starts_at`` / ``ends_at``
    RFC 3339 times (``2024-05-01T12:00:00Z``); default: when Tocsin receives it. On a firing
    alert, a future ``ends_at`` is when it resolves unless sent again (as Prometheus does).

Bounds (as for every sender): at most 100 labels and 100 annotations, names of at most 128
characters, label values of at most 2,048 and annotation values of at most 16,384 characters;
links are http(s) URLs only.

Example::

    {"title": "Disk almost full on db-1", "severity": "warning",
     "labels": {"host": "db-1", "check": "disk"}, "details": {"free": "3%"}}

Answer: ``200 {"status": "ok", "received": 1, "results": {"created": 1}}``; a 400 names every
problem by its path (``alerts[2].labels.host``) and stores nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.ingest.kinds.base import (
    Invalid,
    Problems,
    Step,
    alert_links,
    annotation_map,
    at,
    fingerprint_of,
    json_reply,
    keyed_routes,
    obj,
    required_url,
    severity_of,
    string_map,
    text,
    time_of,
    url_of,
)
from monitoring.inputs import AlertInput, fingerprint_labels
from monitoring.models.choices import AlertStatus, Severity

KIND = "generic"
LABEL = "Generic JSON"
SOURCE = KIND
ROUTES = keyed_routes(KIND)
SETUP_TITLE = "Generic JSON (curl, scripts)"
SETUP_PATH = "/ingest/generic/{key}/"
reply = json_reply
STATUSES = (AlertStatus.FIRING, AlertStatus.RESOLVED)


def parse(data: Any, now: datetime) -> list[AlertInput]:
    if isinstance(data, dict) and "alerts" in data:
        alerts = data["alerts"]
        if not isinstance(alerts, list):
            raise Invalid({"alerts": ["must be a list of alerts"]})
        problems = Problems()
        items = [_alert(raw, at("alerts", i), problems, now) for i, raw in enumerate(alerts)]
    elif isinstance(data, dict):
        problems = Problems()
        items = [_alert(data, "", problems, now)]
    else:
        raise Invalid({"": ['Expected a JSON object: one alert, or {"alerts": [...]}.']})
    problems.check()
    return [item for item in items if item is not None]


def _alert(raw: Any, path: str, problems: Problems, now: datetime) -> AlertInput | None:
    data = obj(raw, path or "", problems)
    if data is None:
        return None
    title_field = "title" if data.get("title") is not None else "summary"
    title = text(data, title_field, path, problems, max_length=500).strip()
    status = data.get("status", AlertStatus.FIRING)
    if status not in STATUSES:
        problems.add(at(path, "status"), 'must be "firing" or "resolved"')
    severity = Severity.ERROR
    if data.get("severity") is not None:
        severity = severity_of(data["severity"]) or ""
        if not severity:
            problems.add(at(path, "severity"), "must be one of critical, error, warning, info")
    fp_field = "fingerprint" if data.get("fingerprint") is not None else "dedup_key"
    fingerprint = fingerprint_of(data, fp_field, path, problems)
    labels = string_map(data.get("labels"), at(path, "labels"), problems, coerce=True)
    annotations = annotation_map(
        data.get("annotations"), at(path, "annotations"), problems, coerce=True
    )
    description = text(data, "description", path, problems) or annotations.get("description", "")
    details = data.get("details")
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        problems.add(at(path, "details"), "must be a JSON object")
    links = alert_links(
        annotations, path, problems, *_links(data.get("links"), at(path, "links"), problems)
    )
    starts_at = time_of(data.get("starts_at"), at(path, "starts_at"), problems)
    ends_at = time_of(data.get("ends_at"), at(path, "ends_at"), problems)
    expected_end_at = None
    if status == AlertStatus.FIRING and ends_at is not None:
        expected_end_at, ends_at = (ends_at if ends_at > now else None), None

    if not (title or labels or fingerprint):
        problems.add(path, "needs a title, labels or a fingerprint to identify the alert")
    if not fingerprint:
        fingerprint = fingerprint_labels(labels or {"title": title})
    return AlertInput(
        labels=labels,
        status=status,
        severity=severity,
        summary=title,
        description=description,
        annotations=annotations,
        details=details if isinstance(details, dict) else {},
        links=links,
        fingerprint=fingerprint,
        starts_at=starts_at,
        ends_at=ends_at,
        expected_end_at=expected_end_at,
    )


def _links(value: Any, path: str, problems: Problems) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(path, "must be a list of URLs or {href, text} objects")
        return []
    out = []
    for index, raw in enumerate(value):
        where = at(path, index)
        if isinstance(raw, str) and raw.strip():
            href = url_of(raw, where, problems)
            out.append({"href": href, "text": href})
        elif isinstance(raw, dict):
            href = required_url(raw, "href", where, problems)
            out.append({"href": href, "text": text(raw, "text", where, problems) or href})
        else:
            problems.add(where, "must be a URL or an {href, text} object")
    return out


def setup_steps(url: str, key: str) -> list[Step]:
    return [
        {
            "text": "POST JSON from any script. Send the same labels again to update the "
            'alert, and "status": "resolved" to resolve it.',
            "code": (
                f"curl -X POST '{url}' \\\n"
                "  -H 'Content-Type: application/json' \\\n"
                '  -d \'{"status": "firing", "severity": "warning", '
                '"summary": "Test from curl", '
                '"labels": {"alertname": "CurlTest", "instance": "my-laptop"}}\''
            ),
        },
    ]
