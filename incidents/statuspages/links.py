"""Public addresses of a status page: under /status/<slug>/ on Tocsin's host, or at / of the
page's own domain."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from incidents.statuspages.models import StatusPage


def page_path(page: StatusPage, suffix: str = "") -> str:
    """The public path of ``suffix`` ("", "history/", "incidents/3/"...) on the Tocsin host."""
    return f"/status/{page.slug}/{suffix}"


def page_url(page: StatusPage, suffix: str = "") -> str:
    """An absolute public URL: on the page's own domain when it has one. Built by hand, not
    with ``reverse``: it is also called while serving a custom domain, whose URLconf differs."""
    base = settings.TOCSIN_BASE_URL.rstrip("/")
    if page.custom_domain:
        scheme = base.split("://", 1)[0]
        return f"{scheme}://{page.custom_domain}/{suffix}"
    return base + page_path(page, suffix)


def own_hosts() -> set[str]:
    """Host names that are Tocsin itself: never a status page's custom domain."""
    own = {"localhost", "127.0.0.1", "[::1]", "testserver"}
    host = urlsplit(settings.TOCSIN_BASE_URL).hostname
    if host:
        own.add(host.lower())
    return own


def domain_cache_key(host: str) -> str:
    return f"statuspage-domain:{host}"


def forget_domain(*hosts: str | None) -> None:
    """Drop the custom-domain middleware's cached answer for these hosts (after a page's
    domain or publication changed), so the change shows at once in this deployment."""
    from django.core.cache import cache

    cache.delete_many([domain_cache_key(h) for h in hosts if h])
