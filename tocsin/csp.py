"""Content-Security-Policy on every response Tocsin serves (issue #14; docs/security-secrets.md).

Scripts only from Tocsin's own static files: no inline ``<script>``, no ``hx-on`` (htmx would
``eval`` it), no ``eval`` at all, so markup that slipped past escaping cannot run. Styles allow
``'unsafe-inline'``: templates carry ``style=""`` attributes and per-page ``<style>`` blocks,
htmx adds its indicator style, uPlot and the admin set inline styles; CSS cannot run code, and
moving it all to classes buys little against what script-src already stops. WebSockets are
allowed to this host only (``ws:``/``wss:`` of the request's own host: the live updates).

``CSP_FORM_ACTION_EXTRA`` (settings) widens form-action for forms that post or redirect to
another origin (an identity provider, say); nothing else is configurable, on purpose.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"


def policy(request: HttpRequest) -> str:
    try:
        host = request.get_host()
    except Exception:  # a disallowed Host: Django answers 400 itself; keep the policy strict
        host = ""
    sockets = f" ws://{host} wss://{host}" if host else ""
    form_action = " ".join(["'self'", *getattr(settings, "CSP_FORM_ACTION_EXTRA", ())])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self'{sockets}",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            f"form-action {form_action}",
        ]
    )


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Adds the policy to every response that has none (a view may set its own). The mixin
    makes it both sync and async, so it adds no thread hop under daphne."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if HEADER not in response:
            response[HEADER] = policy(request)
        return response
