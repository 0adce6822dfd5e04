"""Idle and absolute session limits, stamped in the session itself.

A session remembers when its user signed in and when it last saw a request. The last-seen stamp
is written at most once a minute, so an ordinary request does not save the session (no extra
query on every page).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

LOGIN_AT = "tocsin_login_at"
SEEN_AT = "tocsin_seen_at"
# How stale the last-seen stamp may grow before a request rewrites it (seconds).
SEEN_RESOLUTION = 60


def stamp_login(session: Any, now: float | None = None) -> None:
    now = int(time.time() if now is None else now)
    session[LOGIN_AT] = now
    session[SEEN_AT] = now


def expired(session: Any, now: float | None = None, refresh: bool = True) -> str | None:
    """Why this signed-in session is over ("idle" or "lifetime"), or None; refreshes its stamps.

    A session from before these stamps existed is stamped now rather than ended.

    ``refresh=False`` only reads: a WebSocket asks at its handshake, and a socket open for days
    (a wall screen) is not activity, or it would keep its session from ever going idle. Only
    pages and API calls made with the session count as activity.
    """
    now = int(time.time() if now is None else now)
    login_at = session.get(LOGIN_AT)
    seen_at = session.get(SEEN_AT)
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        if refresh:
            stamp_login(session, now)
        return None
    if now - login_at > settings.TOCSIN_SESSION_MAX_HOURS * 3600:
        return "lifetime"
    if now - seen_at > settings.TOCSIN_SESSION_IDLE_MINUTES * 60:
        return "idle"
    if refresh and now - seen_at >= SEEN_RESOLUTION:
        session[SEEN_AT] = now
    return None


def lifetime_left(session: Any, now: float | None = None) -> float | None:
    """Seconds until ``expired`` calls this session over for its lifetime (None: not stamped
    yet): the first whole second past the limit, as ``expired`` counts."""
    login_at = session.get(LOGIN_AT)
    if not isinstance(login_at, int):
        return None
    now = time.time() if now is None else now
    return login_at + settings.TOCSIN_SESSION_MAX_HOURS * 3600 + 1 - now
