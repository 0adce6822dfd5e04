from django.contrib import admin
from django.urls import include, path, re_path

from tocsin import health

urlpatterns = [
    # With or without the trailing slash: load balancers are configured both ways.
    re_path(r"^health/?$", health.health, name="health"),
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    # Browsers ask for /favicon.ico whatever the page links (the admin, a JSON response).
    path("favicon.ico", health.favicon),
    path("api/v1/", include("tocsin.api.urls")),
    path("api/v1/", include("monitoring.api.urls")),
    path("api/v1/", include("incidents.api_urls")),
    path("api/v1/", include("probes.api_urls")),
    path("api/v1/", include("backups.api_urls")),
    path("admin/", admin.site.urls),
    # OpenID Connect sign-in; no URLs at all when it is not configured (tocsin/oidc.py).
    path("oidc/", include("tocsin.oidc_urls")),
    path("", include("monitoring.urls")),
    path("", include("probes.urls")),
    path("", include("backups.urls")),
    path("", include("incidents.urls")),
    path("", include("tocsin.ui_urls")),
]

handler404 = "tocsin.views.not_found"
handler500 = "tocsin.views.server_error"
