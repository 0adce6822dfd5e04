"""The client address of a request: one function, so every record names the same address.

Behind a reverse proxy the TCP peer is the proxy, and the client's address arrives in
``X-Forwarded-For``. That header is a list anyone can start: a client sends
``X-Forwarded-For: 6.6.6.6`` and each proxy on the way *appends* the address it saw. Only the
entries written by proxies we run can be believed, and those are the right-most ones: with
``TOCSIN_PROXY_HOPS`` trusted proxies, the address the outermost of them saw is the
``TOCSIN_PROXY_HOPS``-th entry from the right. Everything left of it is the client's own claim.

Without ``TOCSIN_BEHIND_PROXY`` the header is ignored entirely, and the address is the peer
of the connection.

daphne's ``--proxy-headers`` (passed only when ``TOCSIN_BEHIND_PROXY`` is on, see
:mod:`tocsin.management.web_server`) replaces ``REMOTE_ADDR`` with the *left-most* entry, which is
right only when exactly one proxy set (not appended to) the header, as the shipped
``deploy/nginx.conf`` does. This function does not rely on it: it reads the header itself.

What sign-in protection and throttles *count* is :func:`counted_address`: an IPv6 client by its
/64. One subscriber line, one cloud instance, one LAN is given a /64 (or more), so a single
attacker can send every attempt from a new address of it, 2^64 of them; a /64 is what one
client holds. IPv4 addresses count one by one, as before. What is recorded and shown about a
request (events, the audit trail) stays the full address, which is what a person tracing it
needs; a lockout of an IPv6 client names its /64 (:func:`counted_label`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def _valid(address: str) -> str:
    """The address, normalised, or "" when it is not an IP address."""
    address = address.strip()
    if address.startswith("[") and "]" in address:  # "[::1]" or "[::1]:443"
        address = address[1 : address.index("]")]
    elif address.count(":") == 1:  # "203.0.113.7:51234"
        address = address.partition(":")[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


def forwarded_address(header: str, hops: int) -> str:
    """The address ``hops`` trusted proxies saw, from an ``X-Forwarded-For`` value; "" when the
    header has fewer entries than that (the request did not come through every proxy) or the
    entry is not an address."""
    entries = [entry for entry in (part.strip() for part in header.split(",")) if entry]
    if hops < 1 or len(entries) < hops:
        return ""
    return _valid(entries[-hops])


def client_address(request: Any) -> str:
    """The address of the client that sent ``request`` (an HttpRequest; None gives "").

    ``X-Forwarded-For`` counts only when ``TOCSIN_BEHIND_PROXY`` is on, and then only the entry
    ``TOCSIN_PROXY_HOPS`` from the right. Otherwise, or when that entry is missing, the peer
    address (``REMOTE_ADDR``). "" when there is no valid address to give.
    """
    if request is None:
        return ""
    meta = getattr(request, "META", None) or {}
    if getattr(settings, "TOCSIN_BEHIND_PROXY", False):
        header = meta.get("HTTP_X_FORWARDED_FOR", "")
        if header:
            address = forwarded_address(header, getattr(settings, "TOCSIN_PROXY_HOPS", 1))
            if address:
                return address
    return _valid(str(meta.get("REMOTE_ADDR") or ""))


# The prefix an IPv6 client is counted by (see the module's docstring).
IPV6_COUNTED_PREFIX = 64


def counted_address(address: str) -> str:
    """The key failures and requests from ``address`` are counted under: an IPv4 address
    itself; for IPv6, the first address of its /64 (a valid address, so it fits wherever an
    address is stored, axes' ``AccessAttempt.ip_address`` included). An IPv4-mapped IPv6
    address (``::ffff:192.0.2.1``) is its IPv4 address, not one /64 shared by every such
    client. "" stays "" (no address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        network = ipaddress.IPv6Network((ip, IPV6_COUNTED_PREFIX), strict=False)
        return str(network.network_address)
    return str(ip)


def counted_label(counted: str) -> str:
    """How a counted address reads in logs, alerts and on the security page: an IPv6 one as its
    network (``2001:db8:1:2::/64``), so nobody takes it for the address of one machine."""
    try:
        ip = ipaddress.ip_address(counted)
    except ValueError:
        return counted
    return f"{ip}/{IPV6_COUNTED_PREFIX}" if ip.version == 6 else counted


def counted_client(request: Any) -> str:
    """:func:`counted_address` of :func:`client_address`: what sign-in protection counts."""
    return counted_address(client_address(request))
