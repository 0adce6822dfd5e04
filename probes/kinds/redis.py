"""Redis checks: PING round trip, and optionally one INFO field as [VALUE].

``info_field: "connected_clients"`` → VALUE 12, so a condition can say
``[VALUE] < 5000``; ``info_section`` narrows INFO to one section (cheaper on a busy server).
One short-lived connection per run, no retries: a retry would hide the very failure we watch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from probes.kinds._support import Fields, describe_network_error, elapsed_ms
from probes.kinds.base import Observation
from tocsin import outbound

KIND = "redis"
LABEL = "Redis"
PLACEHOLDERS = ("CONNECTED", "RESPONSE_TIME", "VALUE", "IP")
DEFAULT_CONDITIONS = ["[CONNECTED] == true"]


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    url = f.text("url", required=True)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            f.error("url", "must be a redis://, rediss:// or unix:// URL")
        else:
            try:
                aioredis.connection.parse_url(url)
            except ValueError as exc:
                f.error("url", str(exc))
    f.text("info_section")
    f.text("info_field")
    return f.done()


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    url = config["url"]
    parts = urlsplit(url)
    host, port = parts.hostname or parts.path, parts.port or 6379
    values: dict[str, Any] = {"CONNECTED": False}
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        address = await asyncio.to_thread(outbound.url_address, url, probe=True)
    except outbound.Refused as exc:
        return _failed(values, timings, started, str(exc))
    except OSError as exc:  # a name that does not resolve
        message = describe_network_error(exc, host, port) or f"cannot connect: {exc}"
        return _failed(values, timings, started, message)
    client = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        single_connection_client=True,
    )
    # Connect to the checked address, not to the name again (TLS still names the URL's host
    # only when it is an address: see docs/security-outbound.md).
    client.connection_pool.connection_kwargs["host"] = address
    try:
        await client.ping()
        values["CONNECTED"] = True
        timings["ping"] = elapsed_ms(started)
        values["RESPONSE_TIME"] = timings["ping"]
        writer = getattr(client.connection, "_writer", None)  # redis-py keeps no public peer
        peer = writer.get_extra_info("peername") if writer is not None else None
        if peer:
            values["IP"] = peer[0]
        field = config.get("info_field", "")
        if field:
            section = config.get("info_section") or None
            info = await client.info(section) if section else await client.info()
            details["redis_version"] = info.get("redis_version")
            if field not in info:
                where = f" (section {section})" if section else ""
                timings["total"] = elapsed_ms(started)
                return Observation(
                    False, f"INFO has no field {field!r}{where}", values, timings, "", details
                )
            values["VALUE"] = info[field]
            details[field] = info[field]
    except redis.exceptions.TimeoutError:
        doing = "waiting for PING" if values["CONNECTED"] is False else "waiting for INFO"
        return _failed(values, timings, started, f"timed out after {timeout:g} s {doing}")
    except redis.exceptions.AuthenticationError as exc:
        return _failed(values, timings, started, f"authentication failed: {exc}")
    except redis.exceptions.ResponseError as exc:
        return _failed(values, timings, started, f"Redis answered with an error: {exc}")
    except (redis.exceptions.ConnectionError, OSError) as exc:
        message = describe_network_error(exc, host, port) or f"cannot connect: {exc}"
        return _failed(values, timings, started, message)
    finally:
        await client.aclose()
    timings["total"] = elapsed_ms(started)
    return Observation(True, "", values, timings, "", details)


def _failed(
    values: dict[str, Any], timings: dict[str, float], started: float, error: str
) -> Observation:
    timings["total"] = elapsed_ms(started)
    values.setdefault("RESPONSE_TIME", timings["total"])
    return Observation(False, error, values, timings)
