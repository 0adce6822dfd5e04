"""Grafana unified alerting's webhook contact point (body ``version: "1"``).

Alertmanager's grouped shape plus Grafana's own fields per alert: the query ``values`` (or, from
older Grafana, ``valueString``) go into details; ``silenceURL``, ``dashboardURL``, ``panelURL``
and ``imageURL`` become links. The deprecated top-level ``title``/``state``/``message`` are
ignored: every alert says its own status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.integrations.alertmanager import parse_group
from monitoring.integrations.base import Problems, at, link, text
from monitoring.pipeline import AlertInput

SOURCE = "grafana"
EXPECTED = 'a JSON object with an "alerts" list (Grafana webhook contact point, version "1")'

LINKS = (
    ("silenceURL", "Silence"),
    ("dashboardURL", "Dashboard"),
    ("panelURL", "Panel"),
    ("imageURL", "Image"),
)


def parse(data: Any, now: datetime) -> list[AlertInput]:
    return parse_group(
        data, now, expected=EXPECTED, version="1", ui_name="Grafana", extra=_grafana_fields
    )


def _grafana_fields(raw: dict[str, Any], item: AlertInput, path: str, problems: Problems) -> None:
    values = raw.get("values")
    if values is not None:
        if isinstance(values, dict):
            item.details["values"] = values
        else:
            problems.add(at(path, "values"), "must be an object")
    value_string = text(raw, "valueString", path, problems)
    if value_string:
        item.details["valueString"] = value_string
    for name, label in LINKS:
        found = link(text(raw, name, path, problems), label)
        if found is not None:
            item.links.append(found)
