"""Grafana unified alerting's webhook contact point (body ``version: "1"``).

Alertmanager's grouped shape plus Grafana's own fields per alert: the query ``values`` (or, from
older Grafana, ``valueString``) go into details; ``silenceURL``, ``dashboardURL``, ``panelURL``
and ``imageURL`` become links. The deprecated top-level ``title``/``state``/``message`` are
ignored: every alert says its own status.

URLs: ``/ingest/grafana/<key>/`` or ``/ingest/grafana/`` with a Bearer key; reply: Tocsin's JSON
tally.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.ingest.kinds.alertmanager import parse_group
from monitoring.ingest.kinds.base import Problems, Step, at, json_reply, keyed_routes, link, text
from monitoring.inputs import AlertInput

KIND = "grafana"
LABEL = "Grafana webhook"
SOURCE = KIND
ROUTES = keyed_routes(KIND)
SETUP_TITLE = "Grafana contact point"
SETUP_PATH = "/ingest/grafana/{key}/"
reply = json_reply
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
        found = link(raw.get(name), label, at(path, name), problems)
        if found is not None:
            item.links.append(found)


def setup_steps(url: str, key: str) -> list[Step]:
    return [
        {
            "text": "In Grafana, Alerting → Contact points → Add contact point: choose the "
            "Webhook integration, HTTP method POST, and paste this URL.",
            "code": url,
        },
    ]
