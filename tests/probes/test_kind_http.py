"""The HTTP(S) check kind against real HTTP and HTTPS servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from probes import kinds
from probes.kinds import http
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import PKI, run_check
from tests.probes.servers import (
    BASIC_PASSWORD,
    BASIC_USER,
    BEARER_TOKEN,
    BIG_BODY_SIZE,
    HTTPServer,
    free_port,
)


def test_it_reports_status_body_headers_ip_and_timings(http_server: HTTPServer) -> None:
    seen = run_check("http", {"url": http_server.url("/json")})

    assert seen.reached, seen.error
    assert seen.values["STATUS"] == 200
    assert json.loads(seen.values["BODY"])["status"] == "UP"
    assert seen.values["HEADERS"]["content-type"] == "application/json"
    assert seen.values["HEADERS"]["x-test"] == "one, two"
    assert seen.values["IP"] == "127.0.0.1"
    assert seen.values["CONNECTED"] is True
    assert "CERT_EXPIRY" not in seen.values
    assert seen.values["RESPONSE_TIME"] > 0
    assert {"connect", "request", "first_byte", "total"} <= set(seen.timings)
    assert seen.excerpt.startswith('{"status"')


def test_it_sends_method_headers_and_body(http_server: HTTPServer) -> None:
    seen = run_check(
        "http",
        {
            "url": http_server.url("/echo?x=1"),
            "method": "post",
            "headers": {"X-Probe": "yes", "Content-Type": "application/json"},
            "body": '{"a": 1}',
        },
    )

    echoed = json.loads(seen.values["BODY"])
    assert echoed["method"] == "POST"
    assert echoed["query"] == "x=1"
    assert echoed["headers"]["x-probe"] == "yes"
    assert echoed["body"] == '{"a": 1}'


def test_it_reports_a_failing_status_as_reached(http_server: HTTPServer) -> None:
    seen = run_check("http", {"url": http_server.url("/status/503")})

    assert seen.reached
    assert seen.values["STATUS"] == 503
    assert seen.values["BODY"] == "status 503"


def test_it_sends_basic_auth(http_server: HTTPServer) -> None:
    config = {"url": http_server.url("/basic"), "auth_type": "basic", "username": BASIC_USER}

    wrong = run_check("http", {**config, "password": "nope"})
    right = run_check("http", {**config, "password": BASIC_PASSWORD})

    assert wrong.values["STATUS"] == 401
    assert right.values["STATUS"] == 200


def test_it_sends_a_bearer_token(http_server: HTTPServer) -> None:
    config = {"url": http_server.url("/bearer"), "auth_type": "bearer"}

    assert run_check("http", {**config, "token": "wrong"}).values["STATUS"] == 401
    assert run_check("http", {**config, "token": BEARER_TOKEN}).values["STATUS"] == 200


def test_it_follows_redirects_unless_told_not_to(http_server: HTTPServer) -> None:
    followed = run_check("http", {"url": http_server.url("/redirect")})
    kept = run_check("http", {"url": http_server.url("/redirect"), "follow_redirects": False})

    assert followed.values["STATUS"] == 200
    assert followed.values["BODY"] == "ok"
    assert followed.details["redirects"] == [http_server.url("/redirect")]
    assert kept.values["STATUS"] == 302
    assert kept.values["HEADERS"]["location"] == "/ok"


def test_it_stops_a_redirect_loop(http_server: HTTPServer) -> None:
    seen = run_check("http", {"url": http_server.url("/loop")})

    assert not seen.reached
    assert "too many redirects" in seen.error


def test_it_reads_at_most_the_body_limit(http_server: HTTPServer) -> None:
    seen = run_check("http", {"url": http_server.url("/big")})

    assert seen.reached
    assert BIG_BODY_SIZE > http.BODY_LIMIT
    assert len(seen.values["BODY"]) == http.BODY_LIMIT
    assert seen.details["body_truncated_at"] == http.BODY_LIMIT
    assert len(seen.excerpt) == 2_000


def test_it_reports_connection_refused() -> None:
    port = free_port()

    seen = run_check("http", {"url": f"http://127.0.0.1:{port}/"})

    assert not seen.reached
    assert seen.error == f"connection refused by 127.0.0.1:{port}"
    assert seen.values["CONNECTED"] is False


def test_it_reports_a_dns_failure() -> None:
    seen = run_check("http", {"url": "http://no-such-host.invalid/"})

    assert not seen.reached
    assert seen.error.startswith("DNS lookup failed for no-such-host.invalid")


def test_it_reports_a_timeout_waiting_for_the_headers(http_server: HTTPServer) -> None:
    seen = run_check("http", {"url": http_server.url("/slow/3")}, timeout=0.3)

    assert not seen.reached
    assert seen.error == "timed out after 0.3 s waiting for the response headers"
    assert seen.values["RESPONSE_TIME"] < 1500


def test_it_reports_a_timeout_while_reading_the_body(http_server: HTTPServer) -> None:
    seen = run_check("http", {"url": http_server.url("/trickle")}, timeout=0.4)

    assert not seen.reached
    assert seen.error == "timed out after 0.4 s while reading the response body"
    assert seen.values["STATUS"] == 200


def test_it_verifies_https_against_a_given_ca(https_server: HTTPServer, pki: PKI) -> None:
    seen = run_check("http", {"url": https_server.url("/ok"), "ca_pem": pki.ca.cert_pem})

    assert seen.reached, seen.error
    assert seen.values["STATUS"] == 200
    assert 89 * 86_400_000 < seen.values["CERT_EXPIRY"] <= 90 * 86_400_000
    assert "tls" in seen.timings
    assert seen.details["certificate"]["issuer"] == "CN=Tocsin Test CA"


def test_it_rejects_a_certificate_from_an_unknown_ca(https_server: HTTPServer) -> None:
    seen = run_check("http", {"url": https_server.url("/ok")})

    assert not seen.reached
    assert "unknown CA" in seen.error


def test_it_reports_an_expired_certificate_with_its_date(
    expired_server: HTTPServer, pki: PKI
) -> None:
    seen = run_check("http", {"url": expired_server.url("/ok"), "ca_pem": pki.ca.cert_pem})

    assert not seen.reached
    assert seen.error.startswith("TLS: certificate has expired (notAfter ")


def test_it_reports_a_hostname_mismatch(wrong_host_server: HTTPServer, pki: PKI) -> None:
    seen = run_check("http", {"url": wrong_host_server.url("/ok"), "ca_pem": pki.ca.cert_pem})

    assert not seen.reached
    assert seen.error.startswith("TLS: IP address mismatch")
    assert "127.0.0.1" in seen.error


def test_it_skips_verification_when_told_and_still_reports_expiry(
    expired_server: HTTPServer,
) -> None:
    seen = run_check("http", {"url": expired_server.url("/ok"), "verify_tls": False})

    assert seen.reached, seen.error
    assert seen.values["STATUS"] == 200
    assert seen.values["CERT_EXPIRY"] < 0


def test_it_presents_a_client_certificate(mtls_server: HTTPServer, pki: PKI) -> None:
    config = {"url": mtls_server.url("/peer-cert"), "ca_pem": pki.ca.cert_pem}

    without = run_check("http", config)
    stranger = run_check(
        "http",
        {
            **config,
            "client_cert_pem": pki.foreign_client.cert_pem,
            "client_key_pem": pki.foreign_client.key_pem,
        },
    )
    with_cert = run_check(
        "http",
        {**config, "client_cert_pem": pki.client.cert_pem, "client_key_pem": pki.client.key_pem},
    )

    assert not without.reached
    assert "client certificate" in without.error
    assert not stranger.reached
    assert "client certificate" in stranger.error
    assert with_cert.reached, with_cert.error
    assert json.loads(with_cert.values["BODY"]) == {"client": "probe-client"}


def test_it_connects_over_the_chosen_ip_version(ipv6_server: HTTPServer) -> None:
    url = ipv6_server.url("/ok")

    over_six = run_check("http", {"url": url, "ip_version": "6"})
    over_four = run_check("http", {"url": url, "ip_version": "4"})

    assert over_six.reached, over_six.error
    assert over_six.values["IP"] == "::1"
    assert not over_four.reached
    assert over_four.error == "::1 is an IPv6 address but the check connects over IPv4 only"


def test_it_reuses_pooled_connections_across_runs(http_server: HTTPServer) -> None:
    async def twice() -> tuple:
        try:
            first = await http.request("GET", http_server.url("/ok"))
            second = await http.request("GET", http_server.url("/ok"))
            return first, second, len(http._clients[asyncio.get_running_loop()])
        finally:
            await http.close_clients()

    first, second, clients = asyncio.run(twice())

    assert "connect" in first.timings
    assert "connect" not in second.timings  # the kept-alive connection carried the request
    assert clients == 1


def test_it_keeps_no_cookies_between_runs(http_server: HTTPServer) -> None:
    async def both() -> dict:
        try:
            await http.request("GET", http_server.url("/set-cookie"))
            seen = await http.request("GET", http_server.url("/echo"))
            return json.loads(seen.values["BODY"])["headers"]
        finally:
            await http.close_clients()

    assert "cookie" not in asyncio.run(both())


def test_it_names_every_wrong_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("http").validate(
            {
                "url": "ftp://example.org",
                "method": "FETCH",
                "headers": {"X": 1},
                "verify_tls": "yes",
                "auth_type": "bearer",
                "ca_pem": "not a certificate",
                "client_cert_pem": "nope",
            }
        )

    assert set(caught.value.fields) == {
        "url",
        "method",
        "headers",
        "verify_tls",
        "token",
        "ca_pem",
        "client_cert_pem",
    }


def test_it_normalises_a_config() -> None:
    clean = kinds.get("http").validate({"url": " https://example.org/ ", "method": "post"})

    assert clean["url"] == "https://example.org/"
    assert clean["method"] == "POST"
    assert clean["follow_redirects"] is True
    assert clean["ip_version"] == "any"


def test_the_registry_lists_http() -> None:
    assert ("http", "HTTP(S)") in kinds.choices()
    assert kinds.conditions_for("http", {}) == ["[STATUS] in 200..299"]
    with pytest.raises(LookupError, match="unknown check kind 'gopher'"):
        kinds.get("gopher")
