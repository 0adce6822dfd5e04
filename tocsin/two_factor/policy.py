"""Who must sign in with a second factor, and whether they have one.

Staff (``is_staff`` or superuser) when ``TOCSIN_2FA_REQUIRED_FOR_STAFF`` is on, and members of
any team with ``require_two_factor``. The answer is kept in the session and asked again at
sign-in and at most once a minute, so a policy switched on reaches signed-in people within a
minute without a query on every page.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.db.models import Exists, OuterRef
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from tocsin.models import Membership

STATE = "tocsin_2fa"
RECHECK_SECONDS = 60
# Sessions signed in through single sign-on (docs/security-sso.md): the identity provider is
# the one that asks for a second factor, so Tocsin neither asks again nor requires enrolment.
SINGLE_SIGN_ON_BACKENDS = frozenset({"tocsin.oidc.OIDCBackend"})


def _staff_rule(user: Any) -> bool:
    return bool(settings.TOCSIN_2FA_REQUIRED_FOR_STAFF and (user.is_staff or user.is_superuser))


def _team_rule() -> Exists:
    return Exists(Membership.objects.filter(user=OuterRef("pk"), team__require_two_factor=True))


def required_for(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if _staff_rule(user):
        return True
    return Membership.objects.filter(user=user, team__require_two_factor=True).exists()


def has_device(user: Any) -> bool:
    """A confirmed TOTP device or recovery codes: either is a second factor at sign-in."""
    return user_has_device(user, confirmed=True)


def state(session: Any, user: Any, now: float | None = None, fresh: bool = False) -> dict:
    """``{"required": bool, "enrolled": bool}`` for this session's user, refreshed when stale.

    One query when it is refreshed, none otherwise.
    """
    now = int(time.time() if now is None else now)
    cached = session.get(STATE)
    if (
        not fresh
        and isinstance(cached, dict)
        and cached.get("user") == user.pk
        and 0 <= now - cached.get("at", 0) < RECHECK_SECONDS
    ):
        return cached
    confirmed = {"user": OuterRef("pk"), "confirmed": True}
    row = (
        get_user_model()
        ._default_manager.filter(pk=user.pk)
        .annotate(
            team_rule=_team_rule(),
            totp=Exists(TOTPDevice.objects.filter(**confirmed)),
            static=Exists(StaticDevice.objects.filter(**confirmed)),
        )
        .values("team_rule", "totp", "static")
        .first()
    ) or {"team_rule": False, "totp": False, "static": False}
    cached = {
        "user": user.pk,
        "at": now,
        "required": _staff_rule(user) or row["team_rule"],
        "enrolled": row["totp"] or row["static"],
    }
    session[STATE] = cached
    return cached


# What the policy says of a signed-in session that may not go on as it is (``verdict``).
# The user has a second factor but this session was not verified by it: sign the session out.
UNVERIFIED = "unverified"
# The user must have a second factor and has none: only the enrolment pages are open.
ENROL = "enrol"


def verdict(session: Any, user: Any, verified: bool) -> str | None:
    """``UNVERIFIED``, ``ENROL`` or None (the session may go on) for a signed-in session.

    ``verified``: whether a second factor verified this session (django-otp's OTPMiddleware
    decides it). The one decision for pages (TwoFactorPolicyMiddleware) and WebSockets
    (``tocsin.two_factor.gate``). Single sign-on sessions are exempt: the identity provider asks
    for the second factor.
    """
    if session.get(BACKEND_SESSION_KEY) in SINGLE_SIGN_ON_BACKENDS:
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    current = state(session, user)
    if verified:
        return None
    if current["enrolled"]:
        return UNVERIFIED
    if current["required"]:
        return ENROL
    return None


def forget(session: Any) -> None:
    """After enrolment or disabling: ask again on the next request."""
    session.pop(STATE, None)
