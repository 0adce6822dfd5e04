"""The TLS certificate kind against real TLS servers with certificates from a test CA."""

from __future__ import annotations

import pytest

from probes import kinds
from probes.kinds import tls
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import PKI, run_check
from tests.probes.servers import HTTPServer, free_port, server_context

DAY_MS = 86_400_000


def config(server: HTTPServer, pki: PKI, **extra: object) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "ca_pem": pki.ca.cert_pem, **extra}


def test_it_reports_expiry_and_certificate_details(https_server: HTTPServer, pki: PKI) -> None:
    seen = run_check("tls", config(https_server, pki))

    assert seen.reached, seen.error
    assert 89 * DAY_MS < seen.values["CERT_EXPIRY"] <= 90 * DAY_MS
    assert seen.values["IP"] == "127.0.0.1"
    cert = seen.details["certificate"]
    assert cert["subject"] == "CN=localhost"
    assert cert["issuer"] == "CN=Tocsin Test CA"
    assert cert["sans"] == ["localhost", "127.0.0.1", "::1"]
    assert cert["not_after"]
    assert seen.details["chain_valid"] is True
    assert seen.details["hostname_match"] is True
    assert seen.details["level"] == "ok"


@pytest.mark.parametrize(
    ("days", "level", "threshold"),
    [(30, "ok", None), (18, "warning", 21), (10, "critical", 14), (5, "critical", 7)],
)
def test_it_grades_the_days_left(pki: PKI, days: int, level: str, threshold: int | None) -> None:
    server = HTTPServer(context=server_context(pki.ca.issue(days=days)))
    try:
        seen = run_check("tls", config(server, pki))
    finally:
        server.stop()

    assert seen.reached, seen.error
    assert seen.details["level"] == level
    assert seen.details["threshold_days"] == threshold
    assert (days - 1) * DAY_MS < seen.values["CERT_EXPIRY"] <= days * DAY_MS


def test_an_expired_certificate_keeps_a_valid_chain_and_a_negative_expiry(
    expired_server: HTTPServer, pki: PKI
) -> None:
    seen = run_check("tls", config(expired_server, pki))

    assert seen.reached, seen.error
    assert seen.values["CERT_EXPIRY"] < -DAY_MS
    assert seen.details["chain_valid"] is True
    assert seen.details["level"] == "critical"


def test_it_reports_a_hostname_mismatch(wrong_host_server: HTTPServer, pki: PKI) -> None:
    seen = run_check("tls", config(wrong_host_server, pki))

    assert not seen.reached
    assert seen.error == "TLS: certificate is not valid for '127.0.0.1' (it names other.example)"
    assert seen.details["hostname_match"] is False
    assert seen.values["CERT_EXPIRY"] > 0


def test_it_checks_the_name_it_is_told(wrong_host_server: HTTPServer, pki: PKI) -> None:
    seen = run_check("tls", config(wrong_host_server, pki, server_name="other.example"))

    assert seen.reached, seen.error
    assert seen.details["hostname_match"] is True


def test_it_can_leave_the_hostname_unchecked(wrong_host_server: HTTPServer, pki: PKI) -> None:
    seen = run_check("tls", config(wrong_host_server, pki, check_hostname=False))

    assert seen.reached, seen.error


def test_it_reports_a_chain_from_an_unknown_ca(https_server: HTTPServer) -> None:
    seen = run_check("tls", {"host": "127.0.0.1", "port": https_server.port})

    assert not seen.reached
    assert "unknown CA" in seen.error
    assert seen.details["chain_valid"] is False
    assert seen.details["certificate"]["issuer"] == "CN=Tocsin Test CA"


def test_it_can_skip_chain_verification(https_server: HTTPServer) -> None:
    seen = run_check("tls", {"host": "127.0.0.1", "port": https_server.port, "verify_chain": False})

    assert seen.reached, seen.error
    assert seen.details["chain_valid"] is None


def test_it_reports_connection_refused() -> None:
    port = free_port()

    seen = run_check("tls", {"host": "127.0.0.1", "port": port})

    assert not seen.reached
    assert seen.error == f"connection refused by 127.0.0.1:{port}"


def test_it_reports_a_server_that_does_not_speak_tls(http_server: HTTPServer) -> None:
    seen = run_check("tls", {"host": "127.0.0.1", "port": http_server.port})

    assert not seen.reached
    assert seen.error.startswith("TLS")


def test_conditions_follow_the_thresholds() -> None:
    clean = tls.validate({"host": "example.org", "warning_days": 30, "critical_days": [7, 14, 3]})

    assert clean["critical_days"] == [14, 7, 3]
    assert kinds.conditions_for("tls", clean) == ["[CERT_EXPIRY] > 14d"]
    assert kinds.degraded_conditions_for("tls", clean) == ["[CERT_EXPIRY] > 30d"]
    assert kinds.conditions_for("tls", tls.validate({"host": "x"})) == tls.DEFAULT_CONDITIONS


def test_it_names_every_wrong_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        tls.validate({"host": "a b", "port": 0, "warning_days": 5, "critical_days": "soon"})

    assert set(caught.value.fields) == {"host", "port", "critical_days"}
    with pytest.raises(InvalidConfig) as caught:
        tls.validate({"host": "x", "warning_days": 5})
    assert caught.value.fields == {"warning_days": "must be at least the first critical level (14)"}


@pytest.mark.parametrize(
    ("name", "sans", "expected"),
    [
        ("api.example.org", ["*.example.org"], True),
        ("a.b.example.org", ["*.example.org"], False),
        ("example.org", ["*.example.org"], False),
        ("Example.ORG.", ["example.org"], True),
        ("10.0.0.1", ["10.0.0.1"], True),
        ("10.0.0.1", ["*.0.0.1"], False),
    ],
)
def test_hostname_matching(name: str, sans: list[str], expected: bool) -> None:
    assert tls.matches(name, sans) is expected
