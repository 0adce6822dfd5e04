"""Session limits and the two-factor policy, applied to every signed-in browser request.

Both run after Django's AuthenticationMiddleware and django-otp's OTPMiddleware. API requests
with a token are not signed-in sessions here (DRF authenticates them later), so neither applies
to them: tokens have their own expiry and revocation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from tocsin.two_factor import policy, sessions

# Pages a person who must enrol can still reach (besides the enrolment pages themselves).
_OPEN_PREFIXES = ("/accounts/", "/static/", "/health", "/favicon.ico", "/admin/logout/")


def _signed_in(request: HttpRequest) -> bool:
    # The session key alone: no user query for anonymous requests or static files.
    return hasattr(request, "session") and SESSION_KEY in request.session


class _SessionMiddleware:
    """Sync and async alike (the web server is ASGI): a request without a session cookie (an
    alert webhook, a token API call, a static file) passes straight through; one with a cookie
    has ``process`` run in a thread, since it reads the session and the database."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def process(self, request: HttpRequest) -> HttpResponse | None:
        raise NotImplementedError

    def _run(self, request: HttpRequest) -> HttpResponse | None:
        if settings.SESSION_COOKIE_NAME not in request.COOKIES or not _signed_in(request):
            return None
        return self.process(request)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self._run(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            response = await sync_to_async(self._run)(request)
            if response is not None:
                return response
        return await self.get_response(request)


class SessionLifetimeMiddleware(_SessionMiddleware):
    """Signs out a session idle for TOCSIN_SESSION_IDLE_MINUTES or older than ..._MAX_HOURS."""

    def process(self, request: HttpRequest) -> HttpResponse | None:
        reason = sessions.expired(request.session)
        if reason is not None:
            logout(request)  # the request goes on as anonymous: login_required redirects
            messages.info(
                request,
                "You were signed out after a time without activity."
                if reason == "idle"
                else "Your session reached its maximum age; please sign in again.",
            )
        return None


class TwoFactorPolicyMiddleware(_SessionMiddleware):
    """Sends people who must have a second factor and have none to enrolment, on every page.

    A session of someone who has a device but was not verified by it (signed in before they
    enrolled, in another browser) is signed out: only the two-step login verifies.
    """

    def process(self, request: HttpRequest) -> HttpResponse | None:
        if request.session.get(BACKEND_SESSION_KEY) in policy.SINGLE_SIGN_ON_BACKENDS:
            return None  # before request.user: no user query for these sessions
        user: Any = request.user
        if not user.is_authenticated:
            return None
        verdict = policy.verdict(request.session, user, user.is_verified())
        if verdict == policy.UNVERIFIED:
            logout(request)
            return None
        if verdict is None:
            return None
        path = request.path
        setup = reverse("two_factor_setup")
        if path.startswith(_OPEN_PREFIXES) or path.startswith(reverse("two_factor")):
            return None
        message = "Two-factor authentication is required for your account: set it up first."
        if path.startswith("/api/"):
            return JsonResponse(
                {"error": {"code": "two_factor_required", "message": message, "fields": {}}},
                status=403,
            )
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = setup
            return response
        messages.warning(request, message)
        return HttpResponseRedirect(setup)
