"""Prometheus posting straight to Tocsin as if it were an Alertmanager (API v2).

Prometheus's ``alerting.alertmanagers`` sends ``POST <path_prefix>/api/v2/alerts`` with a bare
JSON array of ``{labels, annotations, startsAt, endsAt, generatorURL}``, every evaluation
interval while an alert fires. There is no status field: a firing alert's ``endsAt`` is a moment
in the future (Prometheus's guess at expiry, renewed on every send) and a resolved one's is the
time it resolved, so "``endsAt`` not in the future" means resolved. Identity is the label set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.integrations.base import (
    Invalid,
    Problems,
    alert_links,
    at,
    parse_alertmanager_alert,
)
from monitoring.pipeline import AlertInput

SOURCE = "prometheus"


def parse(data: Any, now: datetime) -> list[AlertInput]:
    if not isinstance(data, list):
        raise Invalid(
            {"": ["Expected a JSON array of alerts (Alertmanager API v2, POST /api/v2/alerts)."]}
        )
    problems = Problems()
    items = []
    for index, raw in enumerate(data):
        item = parse_alertmanager_alert(raw, at("", index), problems, now, has_status=False)
        if item is not None:
            item.links = alert_links(item.annotations)
            items.append(item)
    problems.check()
    return items
