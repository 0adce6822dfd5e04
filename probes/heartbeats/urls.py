"""Ping URLs, as Healthchecks.io has them: by UUID, or by the service's ping key and a slug.

UUID routes come first: a UUID also matches the slug converter, so ``/ping/<uuid>/start`` must be
tried as a UUID before it could be read as ``/ping/<key>/<slug>``.
"""

from django.urls import path

from probes.heartbeats import pages, views
from probes.heartbeats.models import PingKind


def _routes(prefix: str, view, snooze, name: str) -> list:
    return [
        path(prefix, view, name=f"{name}"),
        path(f"{prefix}/start", view, {"kind": PingKind.START}, name=f"{name}-start"),
        path(f"{prefix}/fail", view, {"kind": PingKind.FAIL}, name=f"{name}-fail"),
        path(f"{prefix}/log", view, {"kind": PingKind.LOG}, name=f"{name}-log"),
        path(f"{prefix}/<int:exit_status>", view, name=f"{name}-exit-status"),
        path(f"{prefix}/snooze/<str:duration>", snooze, name=f"{name}-snooze"),
    ]


# The pages (login required), under /probes/ beside the checks' pages.
page_urls = [
    path("probes/heartbeats/", pages.heartbeat_list, name="heartbeats"),
    path("probes/heartbeats/<int:pk>/", pages.heartbeat_detail, name="heartbeat"),
    path("probes/heartbeats/<int:pk>/pause/", pages.heartbeat_pause, name="heartbeat_pause"),
    path("probes/heartbeats/<int:pk>/resume/", pages.heartbeat_resume, name="heartbeat_resume"),
    path("probes/heartbeats/<int:pk>/snooze/", pages.heartbeat_snooze, name="heartbeat_snooze"),
]

urlpatterns = [
    *page_urls,
    *_routes("ping/<uuid:code>", views.ping_by_uuid, views.snooze_by_uuid, "heartbeat-ping"),
    *_routes(
        "ping/<slug:key>/<slug:slug>", views.ping_by_slug, views.snooze_by_slug, "heartbeat-slug"
    ),
]
