"""The DNS check kind against a real DNS server on a high port of 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes import kinds
from probes.kinds import dns as dns_kind
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import run_check
from tests.probes.servers import DNSServer, free_port


@pytest.fixture(scope="module")
def nameserver() -> Iterator[DNSServer]:
    server = DNSServer(
        {
            ("app.test", "A"): ["10.0.0.1", "10.0.0.2"],
            ("app.test", "TXT"): ['"v=spf1 -all"'],
            ("app.test", "MX"): ["10 mail.app.test."],
            ("1.0.0.10.in-addr.arpa", "PTR"): ["app.test."],
        },
        servfail=("broken.test",),
        silent=("black-hole.test",),
    )
    yield server
    server.stop()


def check(server: DNSServer, name: str, record_type: str = "A", timeout: float = 1.0):
    return run_check(
        "dns",
        {"name": name, "record_type": record_type, "nameserver": server.address},
        timeout=timeout,
    )


def test_it_reports_the_answers(nameserver: DNSServer) -> None:
    seen = check(nameserver, "app.test")

    assert seen.reached, seen.error
    assert seen.values["DNS_RCODE"] == "NOERROR"
    assert seen.values["VALUE"] == "10.0.0.1"
    assert seen.values["BODY"] == "10.0.0.1\n10.0.0.2"
    assert seen.values["RESPONSE_TIME"] > 0
    assert seen.details["answers"] == ["10.0.0.1", "10.0.0.2"]
    assert seen.details["authoritative"] is True
    assert seen.details["nameserver"] == nameserver.address


def test_it_asks_for_the_record_type(nameserver: DNSServer) -> None:
    assert check(nameserver, "app.test", "MX").values["VALUE"] == "10 mail.app.test."
    assert check(nameserver, "app.test", "TXT").values["VALUE"] == '"v=spf1 -all"'


def test_it_turns_an_address_into_a_reverse_lookup(nameserver: DNSServer) -> None:
    seen = check(nameserver, "10.0.0.1", "PTR")

    assert seen.values["VALUE"] == "app.test."


def test_nxdomain_is_an_answer_for_the_conditions(nameserver: DNSServer) -> None:
    seen = check(nameserver, "missing.test")

    assert seen.reached
    assert seen.values["DNS_RCODE"] == "NXDOMAIN"
    assert seen.values["VALUE"] is None
    assert seen.values["BODY"] == ""


def test_it_reports_servfail(nameserver: DNSServer) -> None:
    seen = check(nameserver, "broken.test")

    assert seen.values["DNS_RCODE"] == "SERVFAIL"


def test_an_empty_answer_is_noerror_without_value(nameserver: DNSServer) -> None:
    seen = check(nameserver, "app.test", "AAAA")

    assert seen.values["DNS_RCODE"] == "NOERROR"
    assert seen.values["VALUE"] is None


def test_it_reports_a_nameserver_that_does_not_answer(nameserver: DNSServer) -> None:
    seen = check(nameserver, "black-hole.test", timeout=0.3)

    assert not seen.reached
    assert seen.error == f"timed out after 0.3 s waiting for nameserver {nameserver.address}"


def test_it_reports_a_nameserver_that_is_not_there() -> None:
    port = free_port()

    seen = run_check("dns", {"name": "app.test", "nameserver": f"127.0.0.1:{port}"}, timeout=0.5)

    assert not seen.reached
    assert f"127.0.0.1:{port}" in seen.error


def test_it_parses_nameservers() -> None:
    assert dns_kind.parse_nameserver("1.1.1.1") == ("1.1.1.1", 53)
    assert dns_kind.parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert dns_kind.parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert dns_kind.parse_nameserver("::1") == ("::1", 53)


def test_it_names_every_wrong_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("dns").validate(
            {"name": "", "record_type": "ANY", "nameserver": "resolver.example:53"}
        )

    assert set(caught.value.fields) == {"name", "record_type", "nameserver"}
    with pytest.raises(InvalidConfig, match="PTR"):
        kinds.get("dns").validate({"name": "app.test", "record_type": "PTR"})
