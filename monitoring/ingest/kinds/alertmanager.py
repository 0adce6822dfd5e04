"""Prometheus Alertmanager's webhook receiver (``webhook_configs``, body ``version: "4"``).

Alertmanager posts one group of alerts per request and re-sends the whole group every
``repeat_interval``; each alert carries its own ``status`` and Alertmanager's ``fingerprint``,
which we keep so the alert has the same identity here as in Alertmanager's UI. A firing alert's
``endsAt`` is Go's zero time (no end): it fires until Alertmanager says ``resolved``.

URLs: ``/ingest/alertmanager/<key>/`` or ``/ingest/alertmanager/`` with a Bearer key; reply:
Tocsin's JSON tally (Alertmanager accepts any 2xx).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitoring.ingest.kinds.base import (
    Invalid,
    Problems,
    Step,
    alert_links,
    at,
    json_reply,
    keyed_routes,
    link,
    parse_alertmanager_alert,
    url_of,
)
from monitoring.inputs import AlertInput

KIND = "alertmanager"
LABEL = "Prometheus Alertmanager webhook"
SOURCE = KIND
ROUTES = keyed_routes(KIND)
SETUP_TITLE = "Prometheus Alertmanager"
SETUP_PATH = "/ingest/alertmanager/{key}/"
reply = json_reply
EXPECTED = 'a JSON object with an "alerts" list (Alertmanager webhook, version "4")'


def parse(data: Any, now: datetime) -> list[AlertInput]:
    return parse_group(data, now, expected=EXPECTED, version="4", ui_name="Alertmanager")


# Adds a sender's own per-alert fields: (raw alert, parsed alert, its path, problems).
Extra = Callable[[dict[str, Any], AlertInput, str, Problems], None]


def parse_group(
    data: Any,
    now: datetime,
    *,
    expected: str,
    version: str,
    ui_name: str,
    extra: Extra | None = None,
) -> list[AlertInput]:
    """The grouped webhook body Alertmanager and Grafana share: ``{"alerts": […], …}``."""
    if not isinstance(data, dict):
        raise Invalid({"": [f"Expected {expected}."]})
    problems = Problems()
    sent_version = data.get("version")
    if sent_version is not None and str(sent_version) != version:
        problems.add("version", f'unsupported version {sent_version!r}; expected "{version}"')
    external_url = url_of(data.get("externalURL"), "externalURL", problems)
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        problems.add("alerts", "is required" if alerts is None else "must be a list of alerts")
        problems.check()
    items = []
    for index, raw in enumerate(alerts):
        path = at("alerts", index)
        item = parse_alertmanager_alert(raw, path, problems, now, has_status=True)
        if item is not None:
            sender = link(external_url, ui_name, "externalURL", problems)
            item.links = alert_links(item.annotations, path, problems, sender)
            if extra is not None:
                extra(raw, item, path, problems)
            items.append(item)
    problems.check()
    return items


def setup_steps(url: str, key: str) -> list[Step]:
    return [
        {
            "text": "Add a webhook receiver to alertmanager.yml and route alerts to it. "
            "Keep send_resolved on, so alerts resolve here when they resolve there.",
            "code": (
                "route:\n"
                "  receiver: tocsin\n"
                "receivers:\n"
                "  - name: tocsin\n"
                "    webhook_configs:\n"
                f'      - url: "{url}"\n'
                "        send_resolved: true\n"
            ),
        },
    ]
