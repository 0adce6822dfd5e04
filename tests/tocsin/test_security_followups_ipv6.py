"""IPv6 clients are counted by their /64 for sign-in protection and throttles (one attacker
holds 2^64 addresses of it); IPv4 addresses one by one; records keep the full address."""

from __future__ import annotations

from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import RequestFactory
from django.utils import timezone

from tests.conftest import PASSWORD
from tocsin.models import ApiToken, Event
from tocsin.security.addresses import counted_address, counted_client, counted_label
from tocsin.security.overview import overview
from tocsin.security.throttling import AnonRateThrottle, UserRateThrottle

LIMIT = 3
# One attacker's /64, an address for each attempt; and a neighbour on another /64.
ATTACKER = [f"2001:db8:aa:1:{n:x}::{n:x}" for n in range(1, LIMIT + 3)]
NEIGHBOUR = "2001:db8:aa:2::1"


@pytest.fixture(autouse=True)
def lockout_after_three(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = settings.TOCSIN_LOGIN_FAILURE_LIMIT = LIMIT
    settings.TOCSIN_LOGIN_DELAY_SECONDS = 0
    settings.TOCSIN_BEHIND_PROXY = False


def sign_in(client: Any, username: str, password: str, address: str) -> Any:
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_ipv6_addresses_count_by_their_64_and_ipv4_one_by_one():
    assert counted_address("2001:db8:aa:1:dead:beef:1:2") == "2001:db8:aa:1::"
    assert counted_address("2001:db8:aa:1::") == "2001:db8:aa:1::"
    assert counted_address("2001:db8:aa:2::1") == "2001:db8:aa:2::"
    assert counted_address("192.0.2.7") == "192.0.2.7"
    # An IPv4 client seen through a dual-stack socket is that IPv4 client, not ::ffff:0:0/64.
    assert counted_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert counted_address("") == ""
    assert counted_label("2001:db8:aa:1::") == "2001:db8:aa:1::/64"
    assert counted_label("192.0.2.7") == "192.0.2.7"


def test_failures_from_a_64_add_up_whatever_address_each_comes_from(client, crew):
    # Different names, so no account reaches the limit: only the address can lock.
    answers = [sign_in(client, f"guess{n}", "wrong", ATTACKER[n]).status_code for n in range(LIMIT)]
    assert answers == [200] * (LIMIT - 1) + [429]  # the last failure reached the limit
    [attempt] = AccessAttempt.objects.values_list("ip_address", flat=True).distinct()
    assert attempt == "2001:db8:aa:1::"
    # A fresh address of the same /64, with the right password: locked.
    assert sign_in(client, "viewer", PASSWORD, ATTACKER[LIMIT]).status_code == 429
    # Another /64 is another client.
    assert sign_in(client, "viewer", PASSWORD, NEIGHBOUR).status_code == 302


def test_ipv4_neighbours_still_count_apart(client, crew):
    for n in range(LIMIT):
        sign_in(client, f"guess{n}", "wrong", f"192.0.2.{n + 1}")
    assert sign_in(client, "viewer", PASSWORD, "192.0.2.200").status_code == 302


def test_records_keep_the_full_address_and_the_lockout_names_the_64(client, crew):
    for n in range(LIMIT):
        sign_in(client, f"guess{n}", "wrong", ATTACKER[n])
    failed = Event.objects.filter(kind="user.login_failed").order_by("id")
    assert [e.payload["ip"] for e in failed] == ATTACKER[:LIMIT]
    [locked] = Event.objects.filter(kind="security.signin_locked")
    assert locked.payload["ip"] == "2001:db8:aa:1::/64"
    rows = overview(timezone.now()).locked
    assert [row["ip"] for row in rows] == ["2001:db8:aa:1::/64"]


def test_wrong_api_tokens_from_a_64_lock_the_64(client, crew):
    _, raw = ApiToken.issue(crew.viewer, "cli")
    for n in range(LIMIT):
        wrong = client.get(
            "/api/v1/me/", HTTP_AUTHORIZATION="Bearer tcs_wrong", REMOTE_ADDR=ATTACKER[n]
        )
        assert wrong.status_code in {401, 429}
    right = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/me/", REMOTE_ADDR=ATTACKER[LIMIT], **right).status_code == 429
    assert client.get("/api/v1/me/", REMOTE_ADDR=NEIGHBOUR, **right).status_code == 200


@pytest.mark.parametrize("throttle", [AnonRateThrottle, UserRateThrottle])
def test_api_throttles_count_a_64_as_one_client(throttle, settings):
    factory = RequestFactory()
    one, other = (factory.get("/", REMOTE_ADDR=a) for a in ATTACKER[:2])
    assert throttle().get_ident(one) == throttle().get_ident(other) == counted_client(one)
    assert throttle().get_ident(factory.get("/", REMOTE_ADDR=NEIGHBOUR)) != counted_client(one)
