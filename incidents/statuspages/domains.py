"""Custom domains: a published page served at / of its own host (``status.example.com``).

``CustomDomainMiddleware`` looks at the Host header; for any host other than Tocsin's own it
asks (cached for a minute, misses too) whether a published page claims it, and if one does,
routes the request through ``urlpatterns`` below: the public views at /, nothing else (no login,
no admin, no API). The operator adds the domain to ALLOWED_HOSTS and points its DNS here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from incidents.statuspages.links import domain_cache_key as cache_key
from incidents.statuspages.links import own_hosts
from incidents.statuspages.models import StatusPage
from incidents.statuspages.urls import public_patterns

CACHE_SECONDS = 60
_MISS = ""


def slug_for_host(host: str) -> str | None:
    """The slug of the published page at ``host``, or None (one query per host per minute)."""
    key = cache_key(host)
    found = cache.get(key)
    if found is None:
        found = (
            StatusPage.objects.filter(custom_domain=host, published=True)
            .values_list("slug", flat=True)
            .first()
        ) or _MISS
        cache.set(key, found, CACHE_SECONDS)
    return found or None


class CustomDomainMiddleware:
    """Sync and async alike (the web server is ASGI): requests to Tocsin's own host pass
    straight through, without a cache or database look-up."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.own = own_hosts()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def foreign_host(self, request: HttpRequest) -> str | None:
        try:
            host = request.get_host().rsplit(":", 1)[0].lower()
        except DisallowedHost:
            return None
        if host in self.own or host.startswith("["):
            return None
        return host

    @staticmethod
    def route(request: HttpRequest, slug: str | None) -> None:
        if slug is not None:
            request.urlconf = "incidents.statuspages.domains"
            request.status_page_slug = slug

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        host = self.foreign_host(request)
        if host is not None:
            self.route(request, slug_for_host(host))
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        host = self.foreign_host(request)
        if host is not None:
            self.route(request, await sync_to_async(slug_for_host)(host))
        return await self.get_response(request)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Tocsin's own 404 page links to its dashboard, which does not exist on this host."""
    return HttpResponse("Not found.", status=404, content_type="text/plain; charset=utf-8")


def server_error(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Server error.", status=500, content_type="text/plain; charset=utf-8")


urlpatterns = public_patterns("", named=False)
handler404 = "incidents.statuspages.domains.not_found"
handler500 = "incidents.statuspages.domains.server_error"
