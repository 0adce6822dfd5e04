"""The outbound guard: every connection Tocsin opens for a user's configuration goes through here.

Webhooks, chat channels, status-page subscriber webhooks, probes, backup targets and database
collectors name hosts that users typed in. Without a guard any of them could make Tocsin talk to
``127.0.0.1:6379``, the cloud metadata service or a private network behind the firewall (SSRF).

The rule, decided before any socket is opened:

1. the host name is resolved **once** (:func:`resolve`);
2. if any of its addresses is loopback, link-local, private (RFC 1918, ``fc00::/7``), shared
   (CGNAT ``100.64.0.0/10``), unspecified, multicast, reserved or a cloud metadata address, the
   connection is refused with :class:`Refused` — unless that address is in
   ``TOCSIN_OUTBOUND_ALLOW`` (for probes also ``TOCSIN_PROBE_ALLOW``);
3. the caller connects to the address that was checked, never to the name again, so a DNS
   answer that changes between the check and the connection (rebinding) cannot get through.
   HTTP clients get this from :class:`GuardedTransport` / :class:`AsyncGuardedTransport`, which
   keep the ``Host`` header and the TLS server name (SNI and certificate check) of the name.

The operator's own services (the database, Redis, the SMTP relay in the settings) are
configuration, not user input, and are not guarded. See docs/security-outbound.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

__all__ = [
    "AsyncGuardedTransport",
    "GuardedTransport",
    "Refused",
    "aresolve",
    "client",
    "is_refusal",
    "reason_for",
    "resolve",
    "resolve_one",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named first: these are the addresses an attacker wants most, and the message should say so.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix


PREFIX = "destination refused by outbound guard"


def is_refusal(error: str) -> bool:
    """Whether a stored error text is the guard's (a permanent failure, not worth a retry)."""
    return error.startswith(PREFIX)


class Refused(OSError):
    """The guard refused a destination. An ``OSError`` so that code which already reports
    network failures reports this one too; never worth a retry (the address will not change
    its class), so callers mark the attempt as a permanent failure."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        super().__init__(f"{PREFIX}: {address} is {reason}")

    def __str__(self) -> str:
        return self.args[0]


def reason_for(address: Address) -> str:
    """Why an address is not public (``""`` when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return reason_for(address.ipv4_mapped)
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        return reason_for(address.sixtofour)
    if isinstance(address, ipaddress.IPv6Address) and address in NAT64:
        # A NAT64 gateway would carry it on to the IPv4 address in its last 32 bits.
        return reason_for(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED:
        return "shared address space (carrier-grade NAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return ""


def _networks(values: Iterable[str], name: str) -> list[Network]:
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {value!r} is no address or CIDR network") from None
    return networks


def parse_allow(value: str | Iterable[str], name: str = "allow-list") -> list[Network]:
    """Comma-separated addresses/CIDRs (or a list of them) → networks; loud on a bad entry."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return _networks(items, name)


def allowed(*, probe: bool = False) -> list[Network]:
    """The allow-list in force (read on each call: tests and reloads change settings)."""
    networks = parse_allow(getattr(settings, "TOCSIN_OUTBOUND_ALLOW", ()), "TOCSIN_OUTBOUND_ALLOW")
    if probe:
        networks += parse_allow(getattr(settings, "TOCSIN_PROBE_ALLOW", ()), "TOCSIN_PROBE_ALLOW")
    return networks


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def check(host: str, addresses: Iterable[str], *, probe: bool = False) -> list[str]:
    """Refuse unless every address is public or allow-listed; the addresses, deduplicated."""
    networks = allowed(probe=probe)
    seen: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = reason_for(address)
        if reason and not any(address in network for network in networks):
            raise Refused(host, str(address), reason)
        if str(address) not in seen:
            seen.append(str(address))
    if not seen:
        raise Refused(host, host, "not resolvable")
    return seen


def _infos_to_addresses(infos: list[Any]) -> list[str]:
    return [info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def resolve(
    host: str, port: int | None = None, *, probe: bool = False, family: int = 0
) -> list[str]:
    """Resolve ``host`` once and check every address; raises :class:`Refused` or ``OSError``
    (``socket.gaierror`` for a name that does not resolve)."""
    literal = _literal(host)
    if literal is not None:
        return check(host, [str(literal)], probe=probe)
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    return check(host, _infos_to_addresses(infos), probe=probe)


async def aresolve(
    host: str, port: int | None = None, *, probe: bool = False, family: int = 0
) -> list[str]:
    """:func:`resolve` without blocking the event loop."""
    literal = _literal(host)
    if literal is not None:
        return check(host, [str(literal)], probe=probe)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    return check(host, _infos_to_addresses(infos), probe=probe)


def resolve_one(host: str, port: int | None = None, *, probe: bool = False) -> str:
    """The checked address to connect to (the first one the resolver gave)."""
    return resolve(host, port, probe=probe)[0]


# ---- HTTP ---------------------------------------------------------------------------------


def _pinned(request: httpx.Request, address: str) -> httpx.Request:
    """The request as sent to ``address``: same method, headers (``Host`` of the name) and body;
    TLS uses the name for SNI and the certificate check (httpcore's ``sni_hostname``). A copy:
    httpx puts the original back on the response, so redirects and ``response.url`` keep the
    name."""
    extensions = dict(request.extensions)
    if request.url.scheme == "https":
        extensions["sni_hostname"] = request.url.host
    return httpx.Request(
        request.method,
        request.url.copy_with(host=address),
        headers=request.headers,
        stream=request.stream,
        extensions=extensions,
    )


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that checks each request's host (redirects included) and connects
    to the checked address, through a connection pool of each host name's own: pools are keyed
    by address, and a connection opened (and its certificate checked) for one name must never
    carry a request for another name on the same address (a CDN's, say)."""

    def __init__(self, *, probe: bool = False, **kwargs: Any) -> None:
        self.probe = probe
        self._options = kwargs
        self._by_name: dict[tuple[str, str, int | None], httpx.HTTPTransport] = {}

    def _for(self, url: httpx.URL) -> httpx.HTTPTransport:
        key = (url.scheme, url.host, url.port)
        if key not in self._by_name:
            self._by_name[key] = httpx.HTTPTransport(**self._options)
        return self._by_name[key]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        address = resolve_one(request.url.host, request.url.port, probe=self.probe)
        return self._for(request.url).handle_request(_pinned(request, address))

    def close(self) -> None:
        for transport in self._by_name.values():
            transport.close()
        self._by_name.clear()


class AsyncGuardedTransport(httpx.AsyncBaseTransport):
    """:class:`GuardedTransport` for ``httpx.AsyncClient`` (``family`` limits the resolution
    to IPv4 or IPv6, as a probe's IP version option asks)."""

    def __init__(self, *, probe: bool = False, family: int = 0, **kwargs: Any) -> None:
        self.probe = probe
        self.family = family
        self._options = kwargs
        self._by_name: dict[tuple[str, str, int | None], httpx.AsyncHTTPTransport] = {}

    def _for(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        key = (url.scheme, url.host, url.port)
        if key not in self._by_name:
            self._by_name[key] = httpx.AsyncHTTPTransport(**self._options)
        return self._by_name[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        addresses = await aresolve(
            request.url.host, request.url.port, probe=self.probe, family=self.family
        )
        return await self._for(request.url).handle_async_request(_pinned(request, addresses[0]))

    async def aclose(self) -> None:
        for transport in self._by_name.values():
            await transport.aclose()
        self._by_name.clear()


def client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` whose every request passes the guard (environment proxies are off:
    a proxy would connect to whatever the name resolves to on its side)."""
    return httpx.Client(transport=GuardedTransport(), trust_env=False, **kwargs)


# ---- URLs and DSNs with a host ------------------------------------------------------------


def local_socket(path: str) -> Refused:
    """A Unix socket is this machine's own service: refused like loopback (no allow-list
    names a path)."""
    return Refused(path, path or "the default local socket", "a local socket")


def pg_hostaddr(dsn: str, *, probe: bool = False) -> str:
    """The checked address(es) of a PostgreSQL DSN's host(s), to pass as libpq's ``hostaddr``
    (libpq then connects there and still uses ``host`` for TLS and the password file)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    hosts = [h.strip() for h in str(params.get("host") or "").split(",")]
    given = [h.strip() for h in str(params.get("hostaddr") or "").split(",") if h.strip()]
    if given:
        return ",".join(resolve(address, probe=probe)[0] for address in given)
    pinned = []
    for host in hosts:
        if not host or host.startswith(("/", "@")):
            raise local_socket(host)
        pinned.append(resolve(host, probe=probe)[0])
    return ",".join(pinned)


def url_address(url: str, *, probe: bool = False) -> str:
    """The checked address of a ``scheme://host:port/…`` URL's host (Redis, MySQL, S3 …);
    ``unix://`` and host-less URLs are local sockets."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or not parts.hostname:
        raise local_socket(parts.path)
    return resolve(parts.hostname, parts.port, probe=probe)[0]
