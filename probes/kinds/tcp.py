"""TCP checks: connect, optionally send a line and wait for an expected answer.

Without ``send`` or ``expect`` only the connect is timed (a port check). With ``expect`` the
check reads until the text arrives, the peer closes, READ_LIMIT bytes came, or the timeout;
with only ``send`` it keeps the first chunk the peer answers with, for conditions on [BODY].
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from probes.kinds._support import (
    IP_VERSIONS,
    Fields,
    describe_network_error,
    elapsed_ms,
    family,
    hostport,
)
from probes.kinds.base import Observation, excerpt
from tocsin import outbound

KIND = "tcp"
LABEL = "TCP connect"
PLACEHOLDERS = ("CONNECTED", "RESPONSE_TIME", "IP", "BODY")
DEFAULT_CONDITIONS = ["[CONNECTED] == true"]

READ_LIMIT = 64_000


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    f.host("host")
    f.port("port")
    f.text("send", strip=False)
    f.text("expect", strip=False)
    f.choice("ip_version", IP_VERSIONS, "any")
    return f.done()


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    host, port = config["host"], config["port"]
    send: str = config.get("send", "")
    expect: str = config.get("expect", "")
    where = hostport(host, port)
    values: dict[str, Any] = {"CONNECTED": False}
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def failed(error: str) -> Observation:
        timings["total"] = values["RESPONSE_TIME"] = elapsed_ms(started)
        body = values.get("BODY", "")
        return Observation(False, error, values, timings, excerpt(body))

    writer = None
    received = bytearray()
    try:
        async with asyncio.timeout(timeout):
            ip_family = family(config.get("ip_version", "any"))
            address = (await outbound.aresolve(host, port, probe=True, family=ip_family))[0]
            reader, writer = await asyncio.open_connection(address, port, family=ip_family)
            timings["connect"] = elapsed_ms(started)
            values["CONNECTED"] = True
            peer = writer.get_extra_info("peername")
            if peer:
                values["IP"] = peer[0]
            if send:
                writer.write(send.encode())
                await writer.drain()
            if expect or send:
                await _read(reader, expect.encode(), received)
                values["BODY"] = received.decode("utf-8", "replace")
    except TimeoutError:
        if not values["CONNECTED"]:
            return failed(f"timed out after {timeout:g} s connecting to {where}")
        values["BODY"] = received.decode("utf-8", "replace")
        return failed(f"timed out after {timeout:g} s waiting for {expect!r} from {where}")
    except outbound.Refused as exc:
        return failed(str(exc))
    except OSError as exc:
        return failed(describe_network_error(exc, host, port) or f"{where}: {exc}")
    except _Closed:
        values["BODY"] = received.decode("utf-8", "replace")
        return failed(
            f"{where} closed the connection after {len(received)} bytes without sending {expect!r}"
        )
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.1)
    if expect and expect not in values["BODY"]:
        return failed(f"{expect!r} not in the first {READ_LIMIT} bytes from {where}")
    timings["total"] = values["RESPONSE_TIME"] = elapsed_ms(started)
    return Observation(True, "", values, timings, excerpt(values.get("BODY", "")))


class _Closed(Exception):
    """The peer hung up before sending what was expected."""


async def _read(reader: asyncio.StreamReader, expect: bytes, received: bytearray) -> None:
    """Read into ``received`` until ``expect`` shows up (or, without it, the first chunk).

    Into a buffer the caller holds, so a timeout still shows what had arrived.
    """
    while len(received) < READ_LIMIT:
        chunk = await reader.read(READ_LIMIT - len(received))
        if not chunk:
            if expect and expect not in received:
                raise _Closed()
            return
        received += chunk
        if not expect or expect in received:
            return
