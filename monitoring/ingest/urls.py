"""Ingest routes, mounted at ``/ingest/``, derived from the integration kinds' ``ROUTES``.

Trailing slashes are optional: senders differ. The key goes in the path or, on the routes
without one, in ``Authorization: Bearer <key>`` (Events v2: in the body). Anything else under
``/ingest/`` answers a JSON 404 in the ingest error shape, never an HTML page.
"""

from django.urls import re_path

from monitoring.ingest import kinds, views

urlpatterns = [
    re_path(
        route.pattern, getattr(views, route.view), {"kind": kind, **route.kwargs}, name=route.name
    )
    for kind, route in kinds.routes()
]
urlpatterns.append(re_path(r"^", views.unknown_path, name="ingest-unknown"))
