"""Ingest routes, mounted at ``/ingest/``. Trailing slashes are optional: senders differ.

The key goes in the path or, on the routes without one, in ``Authorization: Bearer <key>``.
Prometheus appends ``/api/v2/alerts`` to its ``path_prefix``; PagerDuty clients append
``/v2/enqueue`` to their base URL.
"""

from django.urls import re_path

from monitoring import ingest_views as views
from monitoring.models import IntegrationKind

KEY = r"(?P<key>[^/]+)"

urlpatterns = [
    re_path(
        r"^prometheus/api/v2/alerts/?$",
        views.webhook,
        {"kind": IntegrationKind.PROMETHEUS},
        name="ingest-prometheus-bearer",
    ),
    re_path(
        rf"^prometheus/{KEY}/api/v2/alerts/?$",
        views.webhook,
        {"kind": IntegrationKind.PROMETHEUS},
        name="ingest-prometheus",
    ),
    re_path(r"^pagerduty/v2/enqueue/?$", views.events_v2_enqueue, name="ingest-events-v2"),
]

for kind in (IntegrationKind.ALERTMANAGER, IntegrationKind.GRAFANA, IntegrationKind.GENERIC):
    urlpatterns += [
        re_path(rf"^{kind}/?$", views.webhook, {"kind": kind}, name=f"ingest-{kind}-bearer"),
        re_path(rf"^{kind}/{KEY}/?$", views.webhook, {"kind": kind}, name=f"ingest-{kind}"),
    ]
