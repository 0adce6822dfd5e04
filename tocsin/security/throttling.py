"""DRF's rate throttles, counting the client as sign-in protection counts it.

DRF's own ``get_ident`` reads ``X-Forwarded-For`` by its ``NUM_PROXIES`` rules (not quite
:func:`tocsin.security.addresses.client_address`'s) and counts every IPv6 address apart, so one
client with a /64 has 2^64 allowances. These count the same key as the sign-in lockout.
"""

from __future__ import annotations

from typing import Any

from rest_framework import throttling

from tocsin.security.addresses import counted_client


class ClientIdent:
    def get_ident(self, request: Any) -> str:
        return counted_client(request)


class AnonRateThrottle(ClientIdent, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(ClientIdent, throttling.UserRateThrottle):
    """Signed-in callers count per user as before; anonymous ones by ``counted_client``."""
