"""The ICMP ping kind against 127.0.0.1, and what it says when the kernel forbids it."""

from __future__ import annotations

import socket

import pytest

from probes import kinds
from probes.kinds import icmp
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import run_check


def _raw_allowed() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    except PermissionError:
        return False
    return True


CAN_PING = icmp.unprivileged_allowed() or _raw_allowed()


@pytest.mark.skipif(not CAN_PING, reason="neither unprivileged ICMP nor raw sockets here")
def test_it_pings_and_reports_loss_and_round_trip() -> None:
    seen = run_check("icmp", {"host": "127.0.0.1", "count": 3, "interval": 0.05})

    assert seen.reached, seen.error
    assert seen.values["CONNECTED"] is True
    assert seen.values["VALUE"] == 0.0
    assert seen.values["RESPONSE_TIME"] > 0
    assert seen.details["sent"] == seen.details["received"] == 3
    assert seen.details["min_rtt"] <= seen.details["avg_rtt"] <= seen.details["max_rtt"]
    expected = "unprivileged" if icmp.unprivileged_allowed() else "raw"
    assert seen.details["socket"] == expected


@pytest.mark.skipif(
    icmp.unprivileged_allowed(), reason="this kernel allows unprivileged ICMP for our group"
)
def test_it_says_when_the_kernel_forbids_unprivileged_icmp() -> None:
    seen = run_check("icmp", {"host": "127.0.0.1", "count": 1, "raw_fallback": False})

    assert not seen.reached
    assert seen.error.startswith("the kernel forbids unprivileged ICMP sockets for this process")
    assert "net.ipv4.ping_group_range = '" in seen.error
    assert seen.values["CONNECTED"] is False


def test_it_reports_a_dns_failure() -> None:
    seen = run_check("icmp", {"host": "no-such-host.invalid", "count": 1})

    assert not seen.reached
    assert seen.error == "DNS lookup failed for no-such-host.invalid"


def test_it_names_every_wrong_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("icmp").validate({"host": "", "count": 0, "interval": "fast"})

    assert caught.value.fields == {
        "host": "is required",
        "count": "must be at least 1",
        "interval": "must be a number",
    }
