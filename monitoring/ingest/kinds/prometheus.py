"""Prometheus posting straight to Tocsin as if it were an Alertmanager (API v2).

Prometheus's ``alerting.alertmanagers`` sends ``POST <path_prefix>/api/v2/alerts`` with a bare
JSON array of ``{labels, annotations, startsAt, endsAt, generatorURL}``, every evaluation
interval while an alert fires. There is no status field: a firing alert's ``endsAt`` is a moment
in the future (Prometheus's guess at expiry, renewed on every send) and a resolved one's is the
time it resolved, so "``endsAt`` not in the future" means resolved. Identity is the label set.
A firing alert keeps its ``endsAt`` as its expected end: if Prometheus stops sending (it died, or
a resolve was lost), ``pipeline.expire_alerts`` resolves the alert then, as Alertmanager does.

URLs: ``/ingest/prometheus/<key>/api/v2/alerts`` (Prometheus appends ``/api/v2/alerts`` to its
``path_prefix``) or ``/ingest/prometheus/api/v2/alerts`` with a Bearer key; reply: Alertmanager's
API v2 answer, an empty 200.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse

from monitoring.ingest.kinds.base import (
    KEY,
    Invalid,
    Problems,
    Route,
    Step,
    alert_links,
    at,
    parse_alertmanager_alert,
)
from monitoring.inputs import AlertInput

KIND = "prometheus"
LABEL = "Prometheus (Alertmanager API v2)"
SOURCE = KIND
ROUTES = [
    Route(r"^prometheus/api/v2/alerts/?$", "ingest-prometheus-bearer"),
    Route(rf"^prometheus/{KEY}/api/v2/alerts/?$", "ingest-prometheus"),
]
SETUP_TITLE = "Prometheus (straight to Tocsin)"
SETUP_PATH = "/ingest/prometheus/{key}/api/v2/alerts"


def parse(data: Any, now: datetime) -> list[AlertInput]:
    if not isinstance(data, list):
        raise Invalid(
            {"": ["Expected a JSON array of alerts (Alertmanager API v2, POST /api/v2/alerts)."]}
        )
    problems = Problems()
    items = []
    for index, raw in enumerate(data):
        path = at("", index)
        item = parse_alertmanager_alert(raw, path, problems, now, has_status=False)
        if item is not None:
            item.links = alert_links(item.annotations, path, problems)
            items.append(item)
    problems.check()
    return items


def reply(outcomes: list[Any], received: int) -> HttpResponse:
    return HttpResponse(status=200)  # Alertmanager's API v2 answers an empty 200


def target(key: str) -> dict[str, str]:
    """What Prometheus' ``alerting.alertmanagers`` entry needs to reach this server: it appends
    ``/api/v2/alerts`` to ``path_prefix`` itself."""
    parts = urlsplit(settings.TOCSIN_BASE_URL.rstrip("/"))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {
        "scheme": parts.scheme,
        "target": f"{parts.hostname}:{port}",
        "path_prefix": f"{parts.path.rstrip('/')}/ingest/prometheus/{key}/",
    }


def setup_steps(url: str, key: str) -> list[Step]:
    found = target(key)
    return [
        {
            "text": "Prometheus can send to Tocsin as if it were an Alertmanager (API v2). Add "
            "this to prometheus.yml; Prometheus appends /api/v2/alerts to the path_prefix.",
            "code": (
                "alerting:\n"
                "  alertmanagers:\n"
                f"    - scheme: {found['scheme']}\n"
                f'      path_prefix: "{found["path_prefix"]}"\n'
                "      api_version: v2\n"
                "      static_configs:\n"
                f'        - targets: ["{found["target"]}"]\n'
            ),
        },
        {"text": "The full URL Prometheus posts to:", "code": url},
    ]
