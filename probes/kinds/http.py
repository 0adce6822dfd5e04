"""HTTP(S) checks: one request, its status, headers, a bounded body, timings and certificate.

``request()`` is the reusable part (journeys call it per step); ``observe()`` is the check.
Clients are kept per event loop and per option set that needs its own connection pool (TLS
verification, CA, client certificate, IP version): a worker running thousands of checks a
minute reuses connections instead of paying a TCP and TLS handshake each run. Each option set
has ``POOLS`` clients, a URL always going to the same one (so it finds its kept-alive
connection): httpcore's pool walks all its connections, some parts twice over, on every
request and every response it closes, so at a few hundred runs at once one big pool cost a
worker more CPU than the requests (bench/probes.py's bare loop spends a third as much CPU per
request through 64 clients as through one).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import importlib.util
import ipaddress
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from probes.kinds import _certs
from probes.kinds._support import (
    IP_VERSIONS,
    Fields,
    describe_network_error,
    elapsed_ms,
    family,
    is_ip,
)
from probes.kinds.base import Observation, excerpt
from tocsin import outbound

KIND = "http"
LABEL = "HTTP(S)"
PLACEHOLDERS = ("STATUS", "RESPONSE_TIME", "BODY", "HEADERS", "IP", "CONNECTED", "CERT_EXPIRY")
DEFAULT_CONDITIONS = ["[STATUS] in 200..299"]

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
AUTH_TYPES = ("none", "basic", "bearer")
# What a run reads of a body at most: enough for any JSON condition, bounded for memory.
BODY_LIMIT = 1_000_000
USER_AGENT = "Tocsin-probe/1"


@dataclass(frozen=True)
class HttpOptions:
    """What shapes the connection (and so the pooled client) rather than the request."""

    follow_redirects: bool = True
    verify_tls: bool = True
    ca_pem: str = ""
    client_cert_pem: str = ""
    client_key_pem: str = ""
    ip_version: str = "any"
    auth_type: str = "none"
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HttpOptions:
        return cls(
            follow_redirects=config.get("follow_redirects", True),
            verify_tls=config.get("verify_tls", True),
            ca_pem=config.get("ca_pem", ""),
            client_cert_pem=config.get("client_cert_pem", ""),
            client_key_pem=config.get("client_key_pem", ""),
            ip_version=config.get("ip_version", "any"),
            auth_type=config.get("auth_type", "none"),
            username=config.get("username", ""),
            password=config.get("password", ""),
            token=config.get("token", ""),
        )

    def client_key(self) -> tuple:
        return (
            self.verify_tls,
            self.ca_pem,
            self.client_cert_pem,
            self.client_key_pem,
            self.ip_version,
        )


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    url = f.text("url", required=True)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            f.error("url", "must be an http:// or https:// URL with a host")
    f.choice("method", METHODS, "GET")
    f.string_map("headers")
    f.text("body", strip=False)
    f.boolean("follow_redirects", True)
    f.boolean("verify_tls", True)
    f.text("ca_pem")
    f.text("client_cert_pem")
    f.text("client_key_pem")
    f.choice("ip_version", IP_VERSIONS, "any")
    auth = f.choice("auth_type", AUTH_TYPES, "none")
    f.text("username")
    f.text("password", strip=False)
    f.text("token")
    if auth == "basic" and not f.clean.get("username"):
        f.error("username", "is required for basic authentication")
    if auth == "bearer" and not f.clean.get("token"):
        f.error("token", "is required for bearer authentication")
    _certs.check_pem("ca_pem", f.clean.get("ca_pem", ""), f.errors)
    _certs.check_client_pair(
        f.clean.get("client_cert_pem", ""), f.clean.get("client_key_pem", ""), f.errors
    )
    return f.done()


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    return await request(
        config.get("method", "GET"),
        config["url"],
        headers=config.get("headers") or {},
        body=config.get("body", ""),
        options=HttpOptions.from_config(config),
        timeout=timeout,
    )


# ---- clients ---------------------------------------------------------------------------

# Connection pools per option set, and each pool's size (together what one pool had before).
POOLS = 64
POOL_CONNECTIONS = 100
POOL_KEEPALIVE = 8

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, httpx.AsyncClient]]
_clients = weakref.WeakKeyDictionary()

# httpcore asks sniffio which async library runs each time it makes a lock or an event (several
# per request); sniffio is not installed (anyio no longer needs it), and each failed import
# searched sys.path again: a few per cent of a busy worker's time. Its absence is remembered.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]  # import fails at once


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A shared client must not carry one check's cookies into another's requests."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


def client_for(options: HttpOptions, url: str = "") -> httpx.AsyncClient:
    """The pooled client for these options (and this URL's share of them) on the running
    loop."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    key = (*options.client_key(), hash(url) % POOLS)
    client = clients.get(key)
    if client is None or client.is_closed:
        context = _certs.client_context(
            options.client_cert_pem,
            options.client_key_pem,
            verify=options.verify_tls,
            ca_pem=options.ca_pem,
        )
        local = {"4": "0.0.0.0", "6": "::"}.get(options.ip_version)
        transport = outbound.AsyncGuardedTransport(
            probe=True,
            family=family(options.ip_version),
            verify=context,
            local_address=local,
            limits=httpx.Limits(
                max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_KEEPALIVE
            ),
        )
        client = httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            headers={"user-agent": USER_AGENT},
        )
        clients[key] = client
    return client


async def close_clients() -> None:
    """Close this loop's pooled clients (a worker's shutdown)."""
    loop = asyncio.get_running_loop()
    for client in _clients.pop(loop, {}).values():
        await client.aclose()


# ---- one request -----------------------------------------------------------------------

_PHASES = {
    "connection.connect_tcp": "connect",
    "connection.start_tls": "tls",
    "http11.send_request_headers": "request",
    "http11.send_request_body": "request",
    "http11.receive_response_headers": "first_byte",
    "http11.receive_response_body": "body",
    "http2.send_request_headers": "request",
    "http2.send_request_body": "request",
    "http2.receive_response_headers": "first_byte",
    "http2.receive_response_body": "body",
}
_WAITING = {
    "connect": "while connecting",
    "tls": "during the TLS handshake",
    "request": "while sending the request",
    "first_byte": "waiting for the response headers",
    "body": "while reading the response body",
    None: "waiting for a connection",
}


class _Trace:
    """httpcore's trace extension: per-phase timings, and the phase a timeout hit."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.phase: str | None = None
        self._started: dict[str, float] = {}
        self._sent_at: float | None = None

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        name, _, state = event.rpartition(".")
        phase = _PHASES.get(name)
        if phase is None:
            return
        now = time.perf_counter()
        if state == "started":
            self.phase = phase
            if phase == "first_byte" and self._sent_at is not None:
                self._started[phase] = self._sent_at
            else:
                self._started.setdefault(phase, now)
        elif state == "complete":
            began = self._started.pop(phase, now)
            if name.endswith("send_request_headers"):
                # headers and body make one "request" phase; keep it open for the body
                self._started[phase] = began
                return
            took = (now - began) * 1000
            self.timings[phase] = round(self.timings.get(phase, 0.0) + took, 3)
            if phase == "request":
                self._sent_at = now
            self.phase = None if phase == "body" else self.phase
        elif state == "failed":
            self._started.pop(phase, None)


async def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | bytes = "",
    options: HttpOptions | None = None,
    timeout: float = 10.0,
) -> Observation:
    """Send one request and describe what came back, never raising for what the target did.

    The whole exchange, body included, has ``timeout`` seconds; a timeout says which phase
    it hit. Journeys call this for each step.
    """
    options = options or HttpOptions()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    trace = _Trace()
    values: dict[str, Any] = {"CONNECTED": False}
    details: dict[str, Any] = {"method": method.upper(), "url": url}
    started = time.perf_counter()
    mismatch = _version_mismatch(host, options.ip_version)
    if mismatch:
        return _finish(values, details, trace, started, mismatch)
    auth: httpx.Auth | None = None
    send_headers = dict(headers or {})
    if options.auth_type == "basic":
        auth = httpx.BasicAuth(options.username, options.password)
    elif options.auth_type == "bearer":
        send_headers["Authorization"] = f"Bearer {options.token}"
    try:
        client = client_for(options, url)
        async with asyncio.timeout(timeout):
            async with client.stream(
                method.upper(),
                url,
                headers=send_headers,
                content=body or None,
                auth=auth,
                follow_redirects=options.follow_redirects,
                timeout=httpx.Timeout(timeout),
                extensions={"trace": trace},
            ) as response:
                values["CONNECTED"] = True
                values["STATUS"] = response.status_code
                values["HEADERS"] = _headers(response.headers)
                details["http_version"] = response.http_version
                if response.history:
                    details["redirects"] = [str(r.url) for r in response.history]
                    details["final_url"] = str(response.url)
                _peer(response, values, details)
                raw = await _read_bounded(response, details)
                values["BODY"] = raw.decode(response.encoding or "utf-8", "replace")
    except (TimeoutError, httpx.TimeoutException):
        waiting = _WAITING.get(trace.phase, "waiting for a connection")
        return _finish(values, details, trace, started, f"timed out after {timeout:g} s {waiting}")
    except httpx.TooManyRedirects as exc:
        return _finish(values, details, trace, started, f"too many redirects ({exc})")
    except outbound.Refused as exc:
        return _finish(values, details, trace, started, str(exc))
    except (httpx.HTTPError, OSError) as exc:
        message = describe_network_error(exc, host, port)
        if message and message.startswith("TLS: certificate has expired"):
            message += await _expired_since(host, port, timeout)
        if message is None and "tls" in trace.timings and "STATUS" not in values:
            message = _closed_after_handshake(options)
        message = message or _http_error(exc)
        return _finish(values, details, trace, started, message)
    return _finish(values, details, trace, started, "")


def _finish(
    values: dict[str, Any],
    details: dict[str, Any],
    trace: _Trace,
    started: float,
    error: str,
) -> Observation:
    """The Observation of a run, a failed one when ``error`` says why."""
    total = elapsed_ms(started)
    trace.timings["total"] = total
    values["RESPONSE_TIME"] = total
    return Observation(
        reached=not error,
        error=error,
        values=values,
        timings=trace.timings,
        excerpt=excerpt(values.get("BODY", "")),
        details=details,
    )


def _headers(headers: httpx.Headers) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers.multi_items():
        name = name.lower()
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _peer(response: httpx.Response, values: dict[str, Any], details: dict[str, Any]) -> None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return
    address = stream.get_extra_info("server_addr")
    if address:
        values["IP"] = address[0]
    # Each lookup makes anyio gather all the socket's attributes (system calls): ask for the
    # TLS object only where there is one.
    sslobj = stream.get_extra_info("ssl_object") if response.url.scheme == "https" else None
    if sslobj is not None:
        der = sslobj.getpeercert(binary_form=True)
        if der:
            facts = _certs.certificate_facts(der)
            values["CERT_EXPIRY"] = _certs.ms_until(facts["_not_after"])
            details["certificate"] = _certs.public(facts)
        details["tls_version"] = sslobj.version()


async def _read_bounded(response: httpx.Response, details: dict[str, Any]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= BODY_LIMIT:
            details["body_truncated_at"] = BODY_LIMIT
            break
    return b"".join(chunks)[:BODY_LIMIT]


async def _expired_since(host: str, port: int, timeout: float) -> str:
    with contextlib.suppress(Exception):
        der = await _certs.fetch_certificate(host, port, host, min(timeout, 2.0))
        if der:
            return f" (notAfter {_certs.certificate_facts(der)['not_after']})"
    return ""


def _version_mismatch(host: str, ip_version: str) -> str:
    if ip_version == "any" or not is_ip(host):
        return ""
    version = str(ipaddress.ip_address(host).version)
    if version == ip_version:
        return ""
    return f"{host} is an IPv{version} address but the check connects over IPv{ip_version} only"


def _closed_after_handshake(options: HttpOptions) -> str:
    # The server's TLS alert was lost to a reset; what usually causes this is client auth.
    hint = (
        "the server may have rejected our client certificate"
        if options.client_cert_pem
        else "the server may require a client certificate"
    )
    return f"connection closed by the server after the TLS handshake, before any response ({hint})"


def _http_error(exc: BaseException) -> str:
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {exc}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"connection lost: {exc or type(exc).__name__}"
    text = str(exc) or type(exc).__name__
    return f"request failed: {text}"
