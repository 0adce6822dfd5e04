"""ICMP ping checks: packet loss as [VALUE] (percent) and the average round trip.

Unprivileged ICMP ("ping") sockets first: they need no root, only the prober's group inside
the kernel's ``net.ipv4.ping_group_range``. Where the kernel forbids them and the process may
open raw sockets (root, CAP_NET_RAW), it falls back to raw sockets unless ``raw_fallback`` is
off; otherwise the run says exactly that, with the sysctl to change.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import icmplib

from probes.kinds._support import IP_VERSIONS, Fields, elapsed_ms
from probes.kinds.base import Observation
from tocsin import outbound

KIND = "icmp"
LABEL = "Ping (ICMP)"
PLACEHOLDERS = ("VALUE", "RESPONSE_TIME", "CONNECTED", "IP")
DEFAULT_CONDITIONS = ["[CONNECTED] == true", "[VALUE] < 50"]

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    f.host("host")
    f.number("count", 3, minimum=1, maximum=20, integer=True)
    f.number("interval", 0.2, minimum=0.05, maximum=5)
    f.choice("ip_version", IP_VERSIONS, "any")
    f.boolean("raw_fallback", True)
    return f.done()


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    host = config["host"]
    count = config.get("count", 3)
    interval = config.get("interval", 0.2)
    version = config.get("ip_version", "any")
    family = {"4": 4, "6": 6}.get(version)
    # each echo waits its share of the budget, so the whole run fits in the timeout
    per_echo = max(0.05, (timeout - interval * (count - 1)) / count)
    started = time.perf_counter()
    details: dict[str, Any] = {"socket": "unprivileged"}

    try:  # the outbound guard resolves and checks once; the echoes go to that address
        sock_family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(family or 0, 0)
        address = (await outbound.aresolve(host, probe=True, family=sock_family))[0]
    except outbound.Refused as exc:
        return _failed(started, details, str(exc))
    except OSError:
        return _failed(started, details, f"DNS lookup failed for {host}")

    async def ping(privileged: bool) -> icmplib.Host:
        async with asyncio.timeout(timeout + 0.5):
            return await icmplib.async_ping(
                address,
                count=count,
                interval=interval,
                timeout=per_echo,
                family=family,
                privileged=privileged,
            )

    try:
        try:
            result = await ping(privileged=False)
        except icmplib.SocketPermissionError:
            if not config.get("raw_fallback", True):
                raise
            details["socket"] = "raw"
            result = await ping(privileged=True)
    except icmplib.SocketPermissionError:
        return _failed(started, details, forbidden_message())
    except icmplib.NameLookupError:
        return _failed(started, details, f"DNS lookup failed for {host}")
    except TimeoutError:
        return _failed(started, details, f"timed out after {timeout:g} s pinging {host}")
    except (icmplib.ICMPLibError, OSError) as exc:
        return _failed(started, details, f"ping {host} failed: {exc}")
    details.update(
        address=result.address,
        sent=result.packets_sent,
        received=result.packets_received,
        loss_percent=round(result.packet_loss * 100, 1),
        min_rtt=result.min_rtt,
        avg_rtt=result.avg_rtt,
        max_rtt=result.max_rtt,
        jitter=result.jitter,
    )
    values: dict[str, Any] = {
        "CONNECTED": result.packets_received > 0,
        "VALUE": details["loss_percent"],
        "IP": result.address,
    }
    if result.packets_received:
        values["RESPONSE_TIME"] = result.avg_rtt
        return Observation(True, "", values, {"total": elapsed_ms(started)}, "", details)
    error = f"no reply from {result.address} to {result.packets_sent} echo requests"
    return Observation(False, error, values, {"total": elapsed_ms(started)}, "", details)


def _failed(started: float, details: dict[str, Any], error: str) -> Observation:
    took = elapsed_ms(started)
    return Observation(False, error, {"CONNECTED": False}, {"total": took}, "", details)


def forbidden_message() -> str:
    try:
        allowed = " ".join(PING_GROUP_RANGE.read_text().split())
    except OSError:
        allowed = "unknown"
    return (
        "the kernel forbids unprivileged ICMP sockets for this process "
        f"(group {os.getgid()} is outside net.ipv4.ping_group_range = '{allowed}') and raw "
        "sockets are not allowed; run `sysctl -w net.ipv4.ping_group_range='0 2147483647'` "
        "or give the prober CAP_NET_RAW"
    )


def unprivileged_allowed() -> bool:
    """Whether this process's group may open unprivileged ICMP sockets."""
    try:
        low, high = (int(part) for part in PING_GROUP_RANGE.read_text().split())
    except (OSError, ValueError):
        return False
    return low <= os.getgid() <= high
