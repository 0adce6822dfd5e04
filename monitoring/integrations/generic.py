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
    RFC 3339 times (``2024-05-01T12:00:00Z``); default: when Tocsin receives it.

Example::

    {"title": "Disk almost full on db-1", "severity": "warning",
     "labels": {"host": "db-1", "check": "disk"}, "details": {"free": "3%"}}

Answer: ``200 {"status": "ok", "received": 1, "results": {"created": 1}}``; a 400 names every
problem by its path (``alerts[2].labels.host``) and stores nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.integrations.base import (
    Invalid,
    Problems,
    alert_links,
    at,
    fingerprint_of,
    obj,
    severity_of,
    string_map,
    text,
    time_of,
)
from monitoring.models import AlertStatus, Severity
from monitoring.pipeline import AlertInput, fingerprint_labels

SOURCE = "generic"
STATUSES = (AlertStatus.FIRING, AlertStatus.RESOLVED)


def parse(data: Any, now: datetime) -> list[AlertInput]:
    if isinstance(data, dict) and "alerts" in data:
        alerts = data["alerts"]
        if not isinstance(alerts, list):
            raise Invalid({"alerts": ["must be a list of alerts"]})
        problems = Problems()
        items = [_alert(raw, at("alerts", i), problems) for i, raw in enumerate(alerts)]
    elif isinstance(data, dict):
        problems = Problems()
        items = [_alert(data, "", problems)]
    else:
        raise Invalid({"": ['Expected a JSON object: one alert, or {"alerts": [...]}.']})
    problems.check()
    return [item for item in items if item is not None]


def _alert(raw: Any, path: str, problems: Problems) -> AlertInput | None:
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
    annotations = string_map(
        data.get("annotations"), at(path, "annotations"), problems, coerce=True
    )
    description = text(data, "description", path, problems) or annotations.get("description", "")
    details = data.get("details")
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        problems.add(at(path, "details"), "must be a JSON object")
    links = alert_links(annotations, *_links(data.get("links"), at(path, "links"), problems))
    starts_at = time_of(data.get("starts_at"), at(path, "starts_at"), problems)
    ends_at = time_of(data.get("ends_at"), at(path, "ends_at"), problems)

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
            out.append({"href": raw.strip(), "text": raw.strip()})
        elif isinstance(raw, dict):
            href = text(raw, "href", where, problems, required=True)
            out.append({"href": href, "text": text(raw, "text", where, problems) or href})
        else:
            problems.add(where, "must be a URL or an {href, text} object")
    return out
