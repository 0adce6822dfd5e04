"""Tocsin's own /metrics in the Prometheus text format (filled in by the metrics work)."""

from django.http import Http404, HttpRequest, HttpResponse


def metrics_view(request: HttpRequest) -> HttpResponse:
    raise Http404("not yet")
