"""Sign-in protection: failed sign-ins counted per account and per client address, progressive
delays, a temporary lockout, and security events when an account is brute-forced.

django-axes keeps the count (its ``AccessAttempt`` rows, in the database so every web process
sees the same numbers) and locks after ``TOCSIN_LOGIN_FAILURE_LIMIT`` failures within
``TOCSIN_LOGIN_LOCKOUT_MINUTES``, per account *or* per address. What it does not do is added
here:

- the address is :func:`tocsin.security.addresses.client_address` (forwarding headers only
  behind a trusted proxy), counted by its /64 for IPv6 (``counted_client``: one attacker holds
  a whole /64), and an e-mail address counts as the account it signs in;
- **progressive delays**: from ``TOCSIN_LOGIN_DELAY_AFTER`` failures on, the next attempt must
  wait ``TOCSIN_LOGIN_DELAY_SECONDS``, doubling with each failure (at most
  ``TOCSIN_LOGIN_DELAY_MAX_SECONDS``). An attempt made sooner is refused without checking the
  password and counts as a failure, so a script that ignores the delay reaches the lockout
  sooner, while a person retyping a password never notices;
- **API tokens**: a wrong token counts as a failure of its address (there is no account to
  name), and a locked address may use no token, right or wrong, until the lockout passes;
- a lockout records ``security.signin_locked``, which ``monitoring.security`` turns into an alert
  on the built-in system team.

A lockout lasts from the failure that caused it: attempts during it are refused but not
counted (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT`` off), so an attacker cannot keep an
account locked for longer than the configured time per ``TOCSIN_LOGIN_FAILURE_LIMIT`` guesses.
"""

from __future__ import annotations

import copy
import logging
import math
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt, AccessBase
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from rest_framework import exceptions

from tocsin.events import record
from tocsin.security.addresses import counted_client, counted_label

log = logging.getLogger("tocsin.security")

API_TOKEN_METHOD = "api_token"


# --- What axes asks us (settings.AXES_* callables) ---------------------------------------------


def axes_client_ip(request: HttpRequest) -> str | None:
    """``AXES_CLIENT_IP_CALLABLE``: the address failures count against (an IPv6 client's /64),
    None when there is none."""
    return counted_client(request) or None


def signin_username(request: HttpRequest | None, credentials: dict | None) -> str | None:
    """``AXES_USERNAME_CALLABLE``: the account an attempt is about.

    People sign in with a username or an e-mail address (``tocsin.auth``); both name the same
    account, so both count against it (otherwise each spelling would get its own allowance).
    """
    if credentials is not None:
        raw = credentials.get("username")
    else:
        data = getattr(request, "POST", None) or {}
        raw = data.get("username")
    if not raw:
        return None
    raw = str(raw).strip()[:150]
    if "@" not in raw:
        return raw
    remembered = getattr(request, "_tocsin_signin_accounts", None)
    if remembered is None:
        remembered = {}
        if request is not None:
            request._tocsin_signin_accounts = remembered
    if raw not in remembered:
        found = list(
            get_user_model()
            ._default_manager.filter(email__iexact=raw)
            .values_list("username", flat=True)[:2]
        )
        remembered[raw] = found[0] if len(found) == 1 else raw.lower()
    return remembered[raw]


def lockout_parameters(request_or_attempt: Any, credentials: dict | None = None) -> list[str]:
    """``AXES_LOCKOUT_PARAMETERS``: lock the account or the address, whichever reached the limit
    first; an attempt that names no account (a wrong API token) counts for its address only (all
    of them counting against "no account" would lock every token user at once)."""
    if isinstance(request_or_attempt, AccessBase):
        username = request_or_attempt.username
    else:
        username = signin_username(request_or_attempt, credentials)
    return ["username", "ip_address"] if username else ["ip_address"]


def cool_off(request: HttpRequest | None = None) -> timedelta:
    """``AXES_COOLOFF_TIME``: read when asked, so tests may change the setting."""
    return timedelta(minutes=settings.TOCSIN_LOGIN_LOCKOUT_MINUTES)


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: dict | None = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 with Retry-After; the API's error body under /api/."""
    return refusal_response(request, locked_until(request, credentials))


# --- Responses ------------------------------------------------------------------------------------


def refusal_response(request: HttpRequest, until: datetime, *, locked: bool = True) -> HttpResponse:
    wait = _seconds(until)
    if locked:
        message = (
            "Too many failed sign-ins: this account or address is locked until "
            f"{until:%H:%M:%S} UTC. Try again in {_minutes(wait)}."
        )
    else:
        message = f"Too many failed sign-ins: wait {_minutes(wait)} before the next attempt."
    if request.path.startswith("/api/"):
        from tocsin.api.errors import error_body

        response: HttpResponse = JsonResponse(error_body("signin_locked", message), status=429)
    else:
        response = render(request, "tocsin/auth/locked.html", {"message": message}, status=429)
    response["Retry-After"] = str(wait)
    return response


def _minutes(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


# --- Counting -------------------------------------------------------------------------------------


def _attempts(request: HttpRequest, credentials: dict | None) -> tuple[int, datetime | None]:
    """Failures of this account or address still counting, and when the last one was: one
    query per key (account, address), the larger count wins."""
    AxesProxyHandler.update_request(request)
    since = timezone.now() - cool_off(request)
    username = signin_username(request, credentials)
    keys = [Q(ip_address=request.axes_ip_address)]
    if username:
        keys.insert(0, Q(username=username))
    failures, last = 0, None
    for key in keys:
        found = AccessAttempt.objects.filter(key, attempt_time__gte=since).aggregate(
            failures=Sum("failures_since_start"), last=Max("attempt_time")
        )
        if (found["failures"] or 0) > failures:
            failures = found["failures"]
        if found["last"] is not None and (last is None or found["last"] > last):
            last = found["last"]
    return failures, last


def locked_until(request: HttpRequest, credentials: dict | None = None) -> datetime:
    _, last = _attempts(request, credentials)
    return (last or timezone.now()) + cool_off(request)


def delay_for(failures: int) -> float:
    """Seconds the attempt after ``failures`` failures must wait (0: none)."""
    start = settings.TOCSIN_LOGIN_DELAY_AFTER
    base = settings.TOCSIN_LOGIN_DELAY_SECONDS
    if base <= 0 or failures < start:
        return 0.0
    return min(base * 2 ** (failures - start), settings.TOCSIN_LOGIN_DELAY_MAX_SECONDS)


def next_attempt_at(request: HttpRequest, credentials: dict | None) -> datetime | None:
    """When the delay after the last failure ends, if it has not yet."""
    failures, last = _attempts(request, credentials)
    wait = delay_for(failures)
    if not wait or last is None:
        return None
    ready = last + timedelta(seconds=wait)
    return ready if ready > timezone.now() else None


# --- Sign-in (UI and admin login, anything calling authenticate()) -------------------------------


class SigninBackend(AxesStandaloneBackend):
    """First of ``AUTHENTICATION_BACKENDS``: refuses a locked account or address, and an attempt
    made before its delay ended, before any password is checked."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not settings.AXES_ENABLED or request is None:
            return None  # e.g. a management command checking a password
        try:
            super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            request.tocsin_signin_locked = True  # refused while locked: no new alert
            raise
        credentials = {"username": username}
        ready = next_attempt_at(request, credentials)
        if ready is not None:
            request.tocsin_retry_at = ready
            raise AxesBackendPermissionDenied("sign-in attempted before its delay ended")
        return None


class DelayMiddleware:
    """An attempt refused by its delay answers 429 with Retry-After, as a lockout does (axes'
    own middleware, before this one, answers for lockouts)."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._delayed(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        if getattr(request, "tocsin_retry_at", None) is None:
            return response
        return await sync_to_async(self._delayed, thread_sensitive=True)(request, response)

    @staticmethod
    def _delayed(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        ready = getattr(request, "tocsin_retry_at", None)
        if ready is None or getattr(request, "axes_locked_out", False):
            return response
        return refusal_response(request, ready, locked=False)


# --- API tokens -----------------------------------------------------------------------------------


def _address_lock_key(address: str) -> str:
    return f"tocsin:signin-locked:{address}"


def refuse_locked_address(request: HttpRequest) -> None:
    """Before a token is looked at: a locked address may use none (429 with Retry-After).

    A cache read per token request (the lockout is noted there when it happens); the database
    decides again for every wrong token (:func:`api_token_failed`).
    """
    if not settings.AXES_ENABLED:
        return
    address = counted_client(request)
    until = cache.get(_address_lock_key(address)) if address else None
    if until is None or until <= timezone.now():
        return
    if AxesProxyHandler.is_allowed(request, {"username": None}):
        # Ended early (an administrator's ``manage.py axes_reset_ip``): one query, then forgotten.
        cache.delete(_address_lock_key(address))
        return
    wait = _seconds(until)
    raise exceptions.Throttled(
        wait=wait,
        detail=f"too many failed sign-ins from this address; try again in {_minutes(wait)}",
    )


def api_token_failed(request: HttpRequest) -> None:
    """A token was refused: count it against the address (axes, through Django's own
    ``user_login_failed``, which also writes the audit event)."""
    if not settings.AXES_ENABLED:
        return
    credentials = {"username": None, "method": API_TOKEN_METHOD}
    # axes notes the request's form data with each failure. The request is refused anyway, so
    # its body stays unread: a malformed one must not fail here (a 500 instead of the 401).
    request = copy.copy(request)
    request._post, request._files = QueryDict(), MultiValueDict()
    if not AxesProxyHandler.is_allowed(request, credentials):
        # Locked, though this process did not know (another process locked it): refuse, and
        # do not count it, nor announce the lockout again.
        until = locked_until(request, credentials)
        cache.set(_address_lock_key(counted_client(request)), until, timeout=_seconds(until))
        refuse_locked_address(request)
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False):
        refuse_locked_address(request)


def _seconds(until: datetime) -> int:
    return max(1, math.ceil((until - timezone.now()).total_seconds()))


# --- Lockouts become security events --------------------------------------------------------------


@receiver(user_locked_out)
def on_locked_out(
    sender: Any, request: HttpRequest | None = None, username: str | None = None, **kwargs: Any
) -> None:
    if request is None or getattr(request, "tocsin_signin_locked", False):
        return  # an attempt during a lockout already announced
    address = kwargs.get("ip_address") or ""  # as counted: an IPv6 client's /64
    until = timezone.now() + cool_off(request)
    if address and not username:
        cache.set(_address_lock_key(address), until, timeout=_seconds(until))
    address = counted_label(address)
    log.warning("sign-in locked: account %r, address %s, until %s", username, address, until)
    try:
        with transaction.atomic():
            record(
                "security.signin_locked",
                team=None,
                subject_type="user",
                subject_label=username or "",
                payload={
                    "username": username or "",
                    "ip": address,
                    "failures": getattr(request, "axes_failures_since_start", None) or 0,
                    "locked_until": until.isoformat(),
                    "path": request.path[:200],
                },
            )
    except Exception:  # the lockout holds (axes committed it); say loudly that the alert failed
        log.exception("could not record the security event for a sign-in lockout")
