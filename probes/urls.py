"""Probes URLs, mounted at the site root (ping URLs must be short: ``/ping/<uuid>``)."""

from django.urls import include, path

urlpatterns = [
    path("", include("probes.checks.urls")),
    path("", include("probes.heartbeats.urls")),
]
