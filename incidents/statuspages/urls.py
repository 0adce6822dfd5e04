"""Status page URLs: the public pages under /status/<slug>/ (and, through ``domains``, at / of a
page's own domain), the team's editor under /status-pages/, and the incident page's form."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.gzip import gzip_page

from incidents.statuspages import badges, editor, feeds, public

# Pages, feeds and JSON are compressed for clients that accept it: a page with hundreds of
# components and their 90-day bars is megabytes of repetitive HTML, a fraction of that gzipped
# (they carry no secret to guess: no CSRF token, no session data; BREACH needs one). Not the
# subscription pages, whose tokens are secrets.
COMPRESSED_PAGES = frozenset({"", "history/", "incidents/<int:pk>/"})
COMPRESSED_SUFFIXES = (".rss", ".atom", ".json")


def _compressed(route: str) -> bool:
    return route in COMPRESSED_PAGES or route.endswith(COMPRESSED_SUFFIXES)


def public_patterns(prefix: str, named: bool) -> list:
    """The public views at ``prefix`` ("status/<slug:slug>/" or "" on a custom domain)."""
    views = [
        ("", public.page_view, "statuspage"),
        ("history/", public.history_view, "statuspage_history"),
        ("incidents/<int:pk>/", public.incident_view, "statuspage_incident"),
        ("logo", public.logo_view, "statuspage_logo"),
        ("feed.rss", feeds.rss, "statuspage_rss"),
        ("feed.atom", feeds.atom, "statuspage_atom"),
        ("badge/status.svg", badges.status_badge, "statuspage_badge_status"),
        ("badge/uptime.svg", badges.uptime_badge, "statuspage_badge_uptime"),
        ("subscribe/", public.subscribe_view, "statuspage_subscribe"),
        ("confirm/<str:token>/", public.confirm_view, "statuspage_confirm"),
        ("unsubscribe/<str:token>/", public.unsubscribe_view, "statuspage_unsubscribe"),
        ("api/v2/summary.json", public.summary_json, "statuspage_summary"),
        ("api/v2/status.json", public.status_json, "statuspage_status_json"),
        ("api/v2/components.json", public.components_json, "statuspage_components_json"),
        ("api/v2/incidents.json", public.incidents_json, "statuspage_incidents_json"),
        ("api/v2/incidents/unresolved.json", public.unresolved_json, "statuspage_unresolved"),
        (
            "api/v2/scheduled-maintenances.json",
            public.maintenances_json,
            "statuspage_maintenances",
        ),
        (
            "api/v2/scheduled-maintenances/upcoming.json",
            public.upcoming_json,
            "statuspage_maintenances_upcoming",
        ),
        (
            "api/v2/scheduled-maintenances/active.json",
            public.active_json,
            "statuspage_maintenances_active",
        ),
    ]
    return [
        path(
            prefix + route,
            gzip_page(view) if _compressed(route) else view,
            name=name if named else None,
        )
        for route, view, name in views
    ]


urlpatterns = [
    *public_patterns("status/<slug:slug>/", named=True),
    path("status-pages/", editor.page_list, name="statuspages"),
    path("status-pages/new/", editor.page_create, name="statuspage_create"),
    path("status-pages/<int:pk>/", editor.page_edit, name="statuspage_edit"),
    path("status-pages/<int:pk>/<slug:action>/", editor.page_action, name="statuspage_action"),
    path(
        "incidents/<int:pk>/public-update/",
        editor.incident_public_update,
        name="incident_public_update",
    ),
]
