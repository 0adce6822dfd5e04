"""Brute force against a real Tocsin web server (``manage.py run``, daphne) over HTTP: 20 wrong
passwords lock the account on the UI and the admin login, 20 wrong API tokens lock the address;
the right secret is refused until the lockout passes, and a security alert fires on the system
team through the pipeline. The address recorded is the one the proxy settings allow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from axes.models import AccessAttempt

from monitoring.models import Alert
from tests.conftest import PASSWORD
from tests.live import Proc, free_port, start, wait_until_serving
from tocsin.models import ApiToken, Event

LIMIT = 20  # the default TOCSIN_LOGIN_FAILURE_LIMIT, which the issue's acceptance names
LOCKOUT = timedelta(minutes=15)  # the default TOCSIN_LOGIN_LOCKOUT_MINUTES
FORGED = "203.0.113.77"

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def serve(log_dir: Path, **env: str) -> Iterator[str]:
    port = free_port()
    # As `make run` starts it: `manage.py web` passes daphne --proxy-headers only behind a proxy.
    proc: Proc = start(
        f"signin-web-{port}",
        ["manage.py", "run", "--no-worker", "--port", str(port)],
        log_dir,
        TOCSIN_LOGIN_DELAY_SECONDS="0",  # delays are tested on their own (test_signin_protection)
        **env,
    )
    try:
        wait_until_serving(proc, port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def direct(django_db_setup: None, live_log_dir: Path) -> Iterator[str]:
    yield from serve(live_log_dir, TOCSIN_BEHIND_PROXY="0")


@pytest.fixture(scope="module")
def proxied(django_db_setup: None, live_log_dir: Path) -> Iterator[str]:
    yield from serve(live_log_dir, TOCSIN_BEHIND_PROXY="1", TOCSIN_PROXY_HOPS="1")


def sign_in(
    client: httpx.Client, path: str, login: str, password: str, **headers: str
) -> httpx.Response:
    page = client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return client.post(
        path,
        data={"csrfmiddlewaretoken": token, "username": login, "password": password},
        headers={"Referer": f"{client.base_url}{path}", **headers},
    )


def lockout_passes() -> None:
    """Move every counted failure back past the lockout time (the clock of the server cannot
    be moved; its rows can)."""
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=attempt.attempt_time - LOCKOUT - timedelta(seconds=1)
        )


def security_alert(fingerprint: str) -> Alert:
    return Alert.objects.get(
        service__slug="tocsin-security",
        service__team__slug="tocsin-system",
        fingerprint=fingerprint,
    )


@pytest.mark.parametrize(
    ("path", "login"),
    [("/accounts/login/", "viewer"), ("/admin/login/?next=/admin/", "admin")],
    ids=["ui", "admin"],
)
def test_twenty_wrong_passwords_lock_the_account(direct: str, crew: Any, path: str, login: str):
    with httpx.Client(base_url=direct, timeout=10) as client:
        for _ in range(LIMIT - 1):
            assert sign_in(client, path, login, "wrong").status_code == 200  # the form again
        locked = sign_in(client, path, login, "wrong")
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 14 * 60
        assert "locked" in locked.text

        # The right password, during the lockout: refused, no session.
        refused = sign_in(client, path, login, PASSWORD)
        assert refused.status_code == 429
        assert client.get("/", follow_redirects=False).status_code == 302  # still signed out

    [event] = Event.objects.filter(kind="security.signin_locked")
    assert event.payload["username"] == login and event.payload["ip"] == "127.0.0.1"
    alert = security_alert(f"signin-locked-{login}")
    assert alert.status == "firing" and alert.labels["alertname"] == "SignInBruteForce"
    assert alert.expected_end_at is not None
    assert Event.objects.filter(kind="alert.firing", subject_id=str(alert.pk)).exists()
    # Attempts during the lockout neither extend it nor announce it again.
    assert AccessAttempt.objects.get().failures_since_start == LIMIT

    lockout_passes()
    with httpx.Client(base_url=direct, timeout=10) as client:
        assert sign_in(client, path, login, PASSWORD).status_code == 302


def test_forged_addresses_do_not_escape_the_address_lockout(direct: str, crew: Any):
    """Without the proxy setting, each attempt claiming another address (and trying another
    account) is still counted for the one address it came from."""
    with httpx.Client(base_url=direct, timeout=10) as client:
        statuses = [
            sign_in(
                client,
                "/accounts/login/",
                f"nobody{n}",
                "wrong",
                **{"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(LIMIT)
        ]
        assert statuses == [200] * (LIMIT - 1) + [429]
        assert sign_in(client, "/accounts/login/", "viewer", PASSWORD).status_code == 429

    assert {e.payload["ip"] for e in Event.objects.filter(kind="user.login_failed")} == {
        "127.0.0.1"
    }


def test_behind_the_proxy_the_right_most_forwarded_address_is_recorded(proxied: str, crew: Any):
    with httpx.Client(base_url=proxied, timeout=10) as client:
        response = sign_in(
            client,
            "/accounts/login/",
            "viewer",
            "wrong",
            **{"X-Forwarded-For": f"{FORGED}, 198.51.100.7"},
        )
    assert response.status_code == 200
    [event] = Event.objects.filter(kind="user.login_failed")
    assert event.payload["ip"] == "198.51.100.7"
    assert AccessAttempt.objects.get().ip_address == "198.51.100.7"


def test_twenty_wrong_api_tokens_lock_the_address(proxied: str, crew: Any):
    _, raw = ApiToken.issue(crew.viewer, "cli")
    attacker = {"X-Forwarded-For": f"{FORGED}, 198.51.100.20"}
    elsewhere = {"X-Forwarded-For": f"{FORGED}, 198.51.100.21"}

    def me(token: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.get(
            f"{proxied}/api/v1/me/",
            headers={"Authorization": f"Bearer {token}", **headers},
            timeout=10,
        )

    statuses = [me(f"tcs_wrong{n}", attacker).status_code for n in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]
    refused = me(raw, attacker)  # the right token, from the locked address
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 14 * 60
    assert refused.json()["error"]["code"] in {"throttled", "signin_locked"}
    assert me(raw, elsewhere).status_code == 200  # an address that did nothing wrong

    [event] = Event.objects.filter(kind="security.signin_locked")
    assert event.payload == {**event.payload, "username": "", "ip": "198.51.100.20"}
    failed = Event.objects.filter(kind="user.login_failed")
    assert failed.count() == LIMIT
    assert {e.payload["ip"] for e in failed} == {"198.51.100.20"}
    assert {e.payload["method"] for e in failed} == {"api_token"}
    alert = security_alert("signin-locked-addresses")  # one alert for all address lockouts
    assert alert.status == "firing" and alert.labels["address"] == "198.51.100.20"

    lockout_passes()
    assert me(raw, attacker).status_code == 200
