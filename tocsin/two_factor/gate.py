"""The session rules of the HTTP middleware, for connections that do not pass through it.

A WebSocket handshake carries the session cookie but goes through Channels, not Django's
middleware: without this, a session past its idle or absolute limit, or one that has not given
the second factor its user must give, could still open the live stream. The decisions are the
middleware's own (``sessions.expired``, ``policy.verdict``, django-otp's OTPMiddleware); only
the answer differs: a connection is refused rather than signed out or redirected.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django_otp.middleware import OTPMiddleware

from tocsin.two_factor import policy, sessions


def otp_verified(session: Any, user: Any) -> bool:
    """Whether a second factor verified this session, decided by django-otp's OTPMiddleware
    exactly as for a page (the device in the session, confirmed and the user's own)."""
    connection = SimpleNamespace(session=session, user=user)
    return OTPMiddleware(lambda request: request.user)(connection).is_verified()


def refusal(session: Any, user: Any) -> str | None:
    """Why this signed-in session may not open a connection, or None.

    "idle" or "lifetime" (the session is over), ``policy.UNVERIFIED`` or ``policy.ENROL``.
    Reads the session only, in a thread (it may query the database): the idle stamp is not
    refreshed, since an open socket is not activity, and nothing is saved.
    """
    reason = sessions.expired(session, refresh=False)
    if reason is not None:
        return reason
    return policy.verdict(session, user, otp_verified(session, user))
