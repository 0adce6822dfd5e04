"""Helpers the kind modules share: config field checks and precise error texts.

Validation helpers collect messages into one dict so ``InvalidConfig`` names every wrong
field at once (a form shows them all, not the first). Error texts turn the OS's and
OpenSSL's exceptions into the sentence a person on call needs ("connection refused by
10.0.0.5:443", "certificate has expired"), whatever library raised them.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

from probes.kinds.base import InvalidConfig

IP_VERSIONS = ("any", "4", "6")


class Fields:
    """Collects a config's normalised fields and its per-field errors."""

    def __init__(self, config: Any):
        self.config: dict[str, Any] = config if isinstance(config, dict) else {}
        self.errors: dict[str, str] = {}
        self.clean: dict[str, Any] = {}
        if not isinstance(config, dict):
            self.errors["config"] = "must be an object"

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(
        self, name: str, *, required: bool = False, default: str = "", strip: bool = True
    ) -> str:
        value = self.config.get(name, default)
        if value is None:
            value = default
        if not isinstance(value, str):
            self.error(name, "must be a string")
            return default
        if strip:
            value = value.strip()
        if required and not value:
            self.error(name, "is required")
        self.clean[name] = value
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.config.get(name, default)
        if value is None:
            value = default
        if not isinstance(value, bool):
            self.error(name, "must be true or false")
            return default
        self.clean[name] = value
        return value

    def number(
        self,
        name: str,
        default: float | None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float | None:
        value = self.config.get(name, default)
        if value is None:
            self.clean[name] = None
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(name, "must be a whole number" if integer else "must be a number")
            return default
        if integer and value != int(value):
            self.error(name, "must be a whole number")
            return default
        if minimum is not None and value < minimum:
            self.error(name, f"must be at least {minimum:g}")
        elif maximum is not None and value > maximum:
            self.error(name, f"must be at most {maximum:g}")
        value = int(value) if integer else float(value)
        self.clean[name] = value
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.config.get(name, default)
        if value is None:
            value = default
        value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(value, str) or value.strip().upper() not in {c.upper() for c in choices}:
            self.error(name, "must be one of " + ", ".join(choices))
            return default
        value = next(c for c in choices if c.upper() == value.strip().upper())
        self.clean[name] = value
        return value

    def string_map(self, name: str) -> dict[str, str]:
        value = self.config.get(name) or {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self.error(name, "must map names to string values")
            return {}
        self.clean[name] = dict(value)
        return dict(value)

    def host(self, name: str) -> str:
        value = self.text(name, required=True)
        if value and (any(c.isspace() for c in value) or "/" in value):
            self.error(name, "must be a host name or an IP address")
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
            self.clean[name] = value
        return value

    def port(self, name: str, default: int | None = None) -> int:
        value = self.number(name, default, minimum=1, maximum=65535, integer=True)
        if value is None:
            self.error(name, "is required")
            return 0
        return int(value)

    def done(self) -> dict[str, Any]:
        if self.errors:
            raise InvalidConfig(self.errors)
        return self.clean


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def family(ip_version: str) -> int:
    return {"4": socket.AF_INET, "6": socket.AF_INET6}.get(ip_version, socket.AF_UNSPEC)


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it was raised from, exception groups included."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        # httpcore wraps the OS error as an argument; anyio chains it with "from"
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


# OpenSSL verify codes (X509_V_ERR_*) worth saying in plain words
_VERIFY_CODES = {
    10: "certificate has expired",
    9: "certificate is not yet valid",
    18: "self-signed certificate",
    19: "self-signed certificate in the chain (unknown CA)",
    20: "certificate signed by an unknown CA (unable to get local issuer certificate)",
    21: "certificate signed by an unknown CA (unable to verify the first certificate)",
    23: "certificate has been revoked",
    62: "hostname mismatch",
    64: "IP address mismatch",
}


def describe_tls_error(exc: ssl.SSLError) -> str:
    """What OpenSSL rejected, as the ssl error says, in words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        message = exc.verify_message or str(exc)
        words = _VERIFY_CODES.get(code)
        if code in (62, 64):
            # "Hostname mismatch, certificate is not valid for 'x'." says which name
            return f"TLS: {message.rstrip('.')}"
        if words:
            return f"TLS: {words}"
        return f"TLS: certificate verification failed: {message}"
    reason = (exc.reason or "").lower().replace("_", " ")
    if "certificate required" in reason:
        return "TLS: the server requires a client certificate (it sent 'certificate required')"
    if "unknown ca" in reason and "alert" in reason:
        return "TLS: the server rejected our client certificate (unknown CA)"
    if "bad certificate" in reason:
        return "TLS: the server rejected our client certificate (bad certificate)"
    if "wrong version number" in reason:
        return "TLS: the server did not answer with TLS (wrong version number: plain HTTP?)"
    return f"TLS handshake failed: {reason or exc}"


# raised and caught inside TLS streams on every read; never the reason a request failed
_SSL_NOISE = (ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLZeroReturnError)


def describe_network_error(exc: BaseException, host: str, port: int | None) -> str | None:
    """A precise sentence for a connection failure, or None when nothing here explains it."""
    where = hostport(host, port) if port else host
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _SSL_NOISE):
            return describe_tls_error(cause)
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {host}: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, ConnectionResetError):
            return f"connection reset by {where}"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route to {where} ({cause.strerror})"
        if isinstance(cause, OSError) and cause.errno == errno.EADDRNOTAVAIL:
            return f"cannot reach {where} over this IP version ({cause.strerror})"
    # anyio's "All connection attempts failed" hides the OS error text in its message only
    for cause in causes(exc):
        text = str(cause)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"DNS lookup failed for {host}: {text}"
        if "Connection refused" in text:
            return f"connection refused by {where}"
    return None
