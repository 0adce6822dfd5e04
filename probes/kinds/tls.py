"""TLS certificate checks: days to expiry against thresholds, hostname match, chain.

Thresholds (the issue's 21/14/7 days): ``warning_days`` (21) makes the check *degraded*, a
heads-up with no page; ``critical_days`` ([14, 7]) are the levels that make it *down*: the
first one (14) raises the alert, and each later one (7) is a new level the alert reports
(``details["threshold_days"]``), so the alert can be re-sent louder as the date nears. The
conditions follow from the config (``default_conditions`` / ``degraded_conditions``);
``details["level"]`` says "ok", "warning" or "critical" for the run's page.

Three facts are judged separately so one does not hide another: the chain is verified with
OpenSSL's time check turned off (an expired certificate from a good CA still shows "chain
valid" and its negative CERT_EXPIRY), the hostname is matched against the SANs by us, and the
dates are left to the thresholds. A broken chain or a wrong name makes the run unreached with
that reason; expiry is the conditions' business.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from typing import Any

from probes.kinds import _certs
from probes.kinds._support import (
    Fields,
    describe_network_error,
    describe_tls_error,
    elapsed_ms,
    hostport,
)
from probes.kinds.base import Observation
from tocsin import outbound

KIND = "tls"
LABEL = "TLS certificate"
PLACEHOLDERS = ("CERT_EXPIRY", "CONNECTED", "RESPONSE_TIME", "IP")
WARNING_DAYS = 21
CRITICAL_DAYS = (14, 7)
DEFAULT_CONDITIONS = [f"[CERT_EXPIRY] > {CRITICAL_DAYS[0]}d"]


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    f.host("host")
    f.port("port", 443)
    f.text("server_name")
    f.text("ca_pem")
    f.boolean("check_hostname", True)
    f.boolean("verify_chain", True)
    warning = f.number("warning_days", WARNING_DAYS, minimum=0, maximum=3650)
    critical = f.config.get("critical_days", list(CRITICAL_DAYS))
    if isinstance(critical, int | float) and not isinstance(critical, bool):
        critical = [critical]
    if (
        not isinstance(critical, list | tuple)
        or not critical
        or not all(isinstance(d, int | float) and not isinstance(d, bool) for d in critical)
        or any(d < 0 for d in critical)
    ):
        f.error("critical_days", "must be a list of day counts, such as [14, 7]")
    else:
        critical = sorted({float(d) if d != int(d) else int(d) for d in critical}, reverse=True)
        f.clean["critical_days"] = critical
        if warning is not None and warning < critical[0]:
            f.error("warning_days", f"must be at least the first critical level ({critical[0]})")
    _certs.check_pem("ca_pem", f.clean.get("ca_pem", ""), f.errors)
    return f.done()


def default_conditions(config: dict[str, Any]) -> list[str]:
    critical = config.get("critical_days") or CRITICAL_DAYS
    return [f"[CERT_EXPIRY] > {_days(max(critical))}"]


def degraded_conditions(config: dict[str, Any]) -> list[str]:
    return [f"[CERT_EXPIRY] > {_days(config.get('warning_days', WARNING_DAYS))}"]


def _days(days: float) -> str:
    return f"{int(days)}d" if days == int(days) else f"{days * 24:g}h"


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    host, port = config["host"], config.get("port", 443)
    name = config.get("server_name") or host
    verify = config.get("verify_chain", True)
    values: dict[str, Any] = {"CONNECTED": False}
    details: dict[str, Any] = {"server_name": name}
    started = time.perf_counter()
    chain_error = ""
    context = _certs.client_context(
        verify=verify, ca_pem=config.get("ca_pem", ""), check_hostname=False, check_time=False
    )
    try:
        # Checked once, then connected to: the guard's address, never the name again.
        async with asyncio.timeout(timeout):
            address = (await outbound.aresolve(host, port, probe=True))[0]
    except outbound.Refused as exc:
        return _failed(values, details, started, str(exc))
    except (OSError, TimeoutError) as exc:
        return _failed(values, details, started, _why(exc, host, port, timeout))
    try:
        der, peer = await _handshake(address, port, name, context, details, timeout)
    except ssl.SSLCertVerificationError as exc:
        chain_error = describe_tls_error(exc)
        try:
            der, peer = await _handshake(
                address, port, name, _certs.client_context(verify=False), details, timeout
            )
        except (OSError, TimeoutError) as again:
            return _failed(values, details, started, _why(again, host, port, timeout))
    except (OSError, TimeoutError) as exc:
        return _failed(values, details, started, _why(exc, host, port, timeout))
    values["CONNECTED"] = True
    values["IP"] = peer
    values["RESPONSE_TIME"] = elapsed_ms(started)
    facts = _certs.certificate_facts(der)
    expiry = _certs.ms_until(facts["_not_after"])
    values["CERT_EXPIRY"] = expiry
    details["certificate"] = _certs.public(facts)
    details.update(_level(expiry / 86_400_000, config))
    details["chain_valid"] = not chain_error if verify else None
    details["hostname_match"] = matches(name, facts["sans"])
    error = ""
    if verify and chain_error:
        details["chain_error"] = chain_error
        error = chain_error
    elif config.get("check_hostname", True) and not details["hostname_match"]:
        listed = ", ".join(facts["sans"]) or "no subject alternative names"
        error = f"TLS: certificate is not valid for {name!r} (it names {listed})"
    return Observation(
        reached=not error,
        error=error,
        values=values,
        timings={"tls": values["RESPONSE_TIME"], "total": values["RESPONSE_TIME"]},
        details=details,
    )


async def _handshake(
    host: str,
    port: int,
    name: str,
    context: ssl.SSLContext,
    details: dict[str, Any],
    timeout: float,
) -> tuple[bytes, str]:
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=name)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        details["tls_version"] = sslobj.version()
        details["cipher"] = (sslobj.cipher() or ("",))[0]
        return sslobj.getpeercert(binary_form=True), writer.get_extra_info("peername")[0]
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 0.1)


def _why(exc: BaseException, host: str, port: int, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s during the TLS handshake with {hostport(host, port)}"
    return describe_network_error(exc, host, port) or f"{hostport(host, port)}: {exc}"


def _failed(
    values: dict[str, Any], details: dict[str, Any], started: float, error: str
) -> Observation:
    values["RESPONSE_TIME"] = elapsed_ms(started)
    return Observation(False, error, values, {"total": values["RESPONSE_TIME"]}, "", details)


def _level(days_left: float, config: dict[str, Any]) -> dict[str, Any]:
    critical = sorted(config.get("critical_days") or CRITICAL_DAYS, reverse=True)
    warning = config.get("warning_days", WARNING_DAYS)
    crossed = [d for d in critical if days_left <= d]
    if crossed:
        level, threshold = "critical", crossed[-1]
    elif days_left <= warning:
        level, threshold = "warning", warning
    else:
        level, threshold = "ok", None
    return {"days_left": round(days_left, 2), "level": level, "threshold_days": threshold}


def matches(name: str, sans: list[str]) -> bool:
    """Whether a certificate naming ``sans`` is valid for ``name`` (RFC 6125, one wildcard
    label, left-most only; IP addresses only against IP SANs)."""
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        for san in sans:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(san) == address:
                    return True
        return False
    name = name.rstrip(".").lower()
    for san in sans:
        san = san.rstrip(".").lower()
        if san == name:
            return True
        if san.startswith("*.") and "." in name:
            label, rest = name.split(".", 1)
            if label and rest == san[2:]:
                return True
    return False
