"""Prometheus Alertmanager's webhook receiver (``webhook_configs``, body ``version: "4"``).

Alertmanager posts one group of alerts per request and re-sends the whole group every
``repeat_interval``; each alert carries its own ``status`` and Alertmanager's ``fingerprint``,
which we keep so the alert has the same identity here as in Alertmanager's UI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitoring.integrations.base import (
    Invalid,
    Problems,
    alert_links,
    at,
    link,
    parse_alertmanager_alert,
    text,
)
from monitoring.pipeline import AlertInput

SOURCE = "alertmanager"
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
    external_url = text(data, "externalURL", "", problems)
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        problems.add("alerts", "is required" if alerts is None else "must be a list of alerts")
        problems.check()
    items = []
    for index, raw in enumerate(alerts):
        path = at("alerts", index)
        item = parse_alertmanager_alert(raw, path, problems, now, has_status=True)
        if item is not None:
            item.links = alert_links(item.annotations, link(external_url, ui_name))
            if extra is not None:
                extra(raw, item, path, problems)
            items.append(item)
    problems.check()
    return items
