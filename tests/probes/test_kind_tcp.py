"""The TCP check kind against real listeners on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes import kinds
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import run_check
from tests.probes.servers import TCPServer, free_port


@pytest.fixture(scope="module")
def echo() -> Iterator[TCPServer]:
    server = TCPServer("echo")
    yield server
    server.stop()


def test_it_connects_and_reports_ip_and_time(echo: TCPServer) -> None:
    seen = run_check("tcp", {"host": "127.0.0.1", "port": echo.port})

    assert seen.reached, seen.error
    assert seen.values["CONNECTED"] is True
    assert seen.values["IP"] == "127.0.0.1"
    assert seen.values["RESPONSE_TIME"] > 0
    assert "connect" in seen.timings
    assert "BODY" not in seen.values


def test_it_sends_and_waits_for_the_expected_answer(echo: TCPServer) -> None:
    seen = run_check(
        "tcp", {"host": "127.0.0.1", "port": echo.port, "send": "ping\n", "expect": "ECHO ping"}
    )

    assert seen.reached, seen.error
    assert "ECHO ping" in seen.values["BODY"]
    assert seen.values["BODY"].startswith("HELLO tocsin")


def test_it_keeps_the_banner_for_conditions(echo: TCPServer) -> None:
    seen = run_check("tcp", {"host": "127.0.0.1", "port": echo.port, "expect": "HELLO"})

    assert seen.reached
    assert seen.values["BODY"] == "HELLO tocsin\r\n"


def test_it_reports_connection_refused() -> None:
    port = free_port()

    seen = run_check("tcp", {"host": "127.0.0.1", "port": port})

    assert not seen.reached
    assert seen.error == f"connection refused by 127.0.0.1:{port}"
    assert seen.values["CONNECTED"] is False


def test_it_reports_a_dns_failure() -> None:
    seen = run_check("tcp", {"host": "no-such-host.invalid", "port": 22})

    assert not seen.reached
    assert seen.error.startswith("DNS lookup failed for no-such-host.invalid")


def test_it_times_out_waiting_for_the_expected_answer() -> None:
    server = TCPServer("silent")
    try:
        seen = run_check(
            "tcp",
            {"host": "127.0.0.1", "port": server.port, "send": "hi\n", "expect": "READY"},
            timeout=0.3,
        )
    finally:
        server.stop()

    assert not seen.reached
    assert seen.values["CONNECTED"] is True
    assert seen.error == f"timed out after 0.3 s waiting for 'READY' from 127.0.0.1:{server.port}"


def test_it_reports_a_close_before_the_expected_answer() -> None:
    server = TCPServer("close")
    try:
        seen = run_check("tcp", {"host": "127.0.0.1", "port": server.port, "expect": "READY"})
    finally:
        server.stop()

    assert not seen.reached
    assert seen.error == (
        f"127.0.0.1:{server.port} closed the connection after 0 bytes without sending 'READY'"
    )


def test_it_names_every_wrong_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("tcp").validate({"host": "", "port": 70000, "ip_version": "5"})

    assert caught.value.fields == {
        "host": "is required",
        "port": "must be at most 65535",
        "ip_version": "must be one of any, 4, 6",
    }
