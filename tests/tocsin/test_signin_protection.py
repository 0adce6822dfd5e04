"""Sign-in protection at unit level (Django's test client): the client address, progressive
delays, new administrators, DRF's throttles. The lockouts over HTTP against a real daphne are in
test_signin_protection_live.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from rest_framework.settings import api_settings

from monitoring.models import Alert, Service
from tests.conftest import PASSWORD, make_user
from tocsin.models import Event
from tocsin.security.addresses import client_address, forwarded_address

FORGED = "203.0.113.77"


@pytest.fixture(autouse=True)
def real_signin_limits(settings: Any) -> None:
    """The defaults of tocsin/settings.py, which tests/conftest.py relaxes for other tests."""
    settings.AXES_FAILURE_LIMIT = settings.TOCSIN_LOGIN_FAILURE_LIMIT
    settings.TOCSIN_LOGIN_DELAY_SECONDS = 1.0


def request_from(peer: str, forwarded: str | None = None) -> Any:
    headers = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


# --- The client address ---------------------------------------------------------------------------


@override_settings(TOCSIN_BEHIND_PROXY=False)
def test_a_forged_forwarded_for_is_ignored_without_the_proxy_setting() -> None:
    assert client_address(request_from("192.0.2.10", FORGED)) == "192.0.2.10"
    assert client_address(request_from("192.0.2.10", f"{FORGED}, 198.51.100.1")) == "192.0.2.10"


@override_settings(TOCSIN_BEHIND_PROXY=True, TOCSIN_PROXY_HOPS=1)
def test_behind_one_proxy_the_right_most_entry_is_the_client() -> None:
    # nginx appending (or a client sending its own header to a proxy that appends): only the
    # entry the proxy wrote counts.
    assert client_address(request_from("10.0.0.2", f"{FORGED}, 198.51.100.1")) == "198.51.100.1"
    assert client_address(request_from("10.0.0.2", "198.51.100.1")) == "198.51.100.1"
    assert client_address(request_from("10.0.0.2")) == "10.0.0.2"  # no header: the peer


@override_settings(TOCSIN_BEHIND_PROXY=True, TOCSIN_PROXY_HOPS=2)
def test_behind_two_proxies_the_second_from_the_right() -> None:
    chain = f"{FORGED}, 198.51.100.1, 10.0.0.7"
    assert client_address(request_from("10.0.0.2", chain)) == "198.51.100.1"
    # Fewer entries than trusted hops: the request did not come through both; the peer.
    assert client_address(request_from("10.0.0.2", "198.51.100.1")) == "10.0.0.2"


def test_entries_that_are_not_addresses_are_not_taken() -> None:
    assert forwarded_address("not-an-ip", 1) == ""
    assert forwarded_address("1.2.3.4, [2001:db8::1]:443", 1) == "2001:db8::1"
    assert forwarded_address("1.2.3.4:5678", 1) == "1.2.3.4"


@override_settings(TOCSIN_BEHIND_PROXY=False)
def test_a_failed_sign_in_records_the_peer_not_the_forged_header(client: Any, crew: Any) -> None:
    client.post(
        "/accounts/login/",
        {"username": "viewer", "password": "wrong"},
        HTTP_X_FORWARDED_FOR=FORGED,
        REMOTE_ADDR="192.0.2.44",
    )
    [event] = Event.objects.filter(kind="user.login_failed")
    assert event.payload["ip"] == "192.0.2.44"
    assert AccessAttempt.objects.get().ip_address == "192.0.2.44"


# --- Progressive delays ---------------------------------------------------------------------------


def sign_in(client: Any, login: str, password: str, path: str = "/accounts/login/") -> Any:
    return client.post(path, {"username": login, "password": password})


def backdate_failures(by: timedelta) -> None:
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - by)


@override_settings(TOCSIN_LOGIN_DELAY_AFTER=3, TOCSIN_LOGIN_DELAY_SECONDS=30)
def test_after_a_few_failures_the_next_attempt_must_wait(client: Any, crew: Any) -> None:
    for _ in range(3):
        assert sign_in(client, "viewer", "wrong").status_code == 200
    # The right password, too soon: refused without being checked, told how long to wait.
    early = sign_in(client, "viewer", PASSWORD)
    assert early.status_code == 429 and "_auth_user_id" not in client.session
    assert 25 <= int(early["Retry-After"]) <= 30
    assert "wait" in early.content.decode()

    # The early attempt counted as a failure: the delay doubled to 60 s.
    backdate_failures(timedelta(seconds=31))
    assert sign_in(client, "viewer", PASSWORD).status_code == 429
    assert AccessAttempt.objects.get().failures_since_start == 5
    backdate_failures(timedelta(seconds=121))
    assert sign_in(client, "viewer", PASSWORD).status_code == 302


@override_settings(TOCSIN_LOGIN_DELAY_AFTER=2, TOCSIN_LOGIN_DELAY_SECONDS=10)
def test_the_delay_doubles_with_each_failure_and_the_address_counts_too(
    client: Any, crew: Any
) -> None:
    sign_in(client, "viewer", "wrong")
    sign_in(client, "viewer@example.org", "wrong")  # the same account by its address
    backdate_failures(timedelta(seconds=11))
    assert sign_in(client, "viewer", "wrong").status_code == 200  # third failure: 20 s now
    backdate_failures(timedelta(seconds=11))
    assert int(sign_in(client, "viewer", "wrong")["Retry-After"]) > 5
    # The address has failed as often: another account from it waits as well.
    assert sign_in(client, "manager", PASSWORD).status_code == 429


def test_a_few_failures_are_not_delayed(client: Any, crew: Any) -> None:
    for _ in range(4):
        assert sign_in(client, "viewer", "wrong").status_code == 200
    assert sign_in(client, "viewer", PASSWORD).status_code == 302


@override_settings(TOCSIN_LOGIN_DELAY_SECONDS=0, TOCSIN_LOGIN_FAILURE_LIMIT=5, AXES_FAILURE_LIMIT=5)
def test_addresses_and_usernames_of_an_account_count_together(client: Any, crew: Any) -> None:
    for login in (
        "viewer",
        "viewer@example.org",
        "VIEWER@example.org",
        "viewer",
        "Viewer@Example.org",
    ):
        sign_in(client, login, "wrong")
    assert sign_in(client, "viewer", PASSWORD).status_code == 429


# --- New administrators ---------------------------------------------------------------------------


def security_alerts() -> list[Alert]:
    return list(
        Alert.objects.filter(
            service__slug="tocsin-security", service__team__slug="tocsin-system"
        ).order_by("id")
    )


def test_a_new_superuser_raises_a_security_alert_on_the_system_team(crew: Any) -> None:
    get_user_model().objects.create_superuser("mallory", "m@example.org", PASSWORD)

    [event] = Event.objects.filter(kind="security.admin_granted")
    assert event.payload["granted"] == ["is_superuser", "is_staff"]
    [alert] = security_alerts()
    assert alert.status == "firing" and alert.labels["alertname"] == "NewAdministrator"
    assert "mallory" in alert.summary
    # Through the pipeline: the alert has its own event, as any alert does.
    assert Event.objects.filter(kind="alert.firing", subject_id=str(alert.pk)).exists()
    assert Service.objects.get(slug="tocsin-security").team.slug == "tocsin-system"


def test_a_user_made_staff_raises_one_alert_and_other_saves_none(crew: Any) -> None:
    user = make_user("eve")
    user.last_login = user.date_joined
    user.save(update_fields=["last_login"])
    user.first_name = "Eve"
    user.save()
    assert security_alerts() == []

    user.is_staff = True
    user.save()
    user.save()  # still staff: nothing new
    [alert] = security_alerts()
    assert alert.labels == {"alertname": "NewAdministrator", "username": "eve"}


def test_an_inactive_administrator_raises_the_alert_when_activated(crew: Any) -> None:
    user = make_user("dormant", is_active=False)
    user.is_superuser = True
    user.save()
    assert security_alerts() == []  # not an administrator in effect yet
    user = get_user_model().objects.get(pk=user.pk)  # later, from the database
    user.is_active = True
    user.save(update_fields=["is_active"])
    [alert] = security_alerts()
    assert alert.labels == {"alertname": "NewAdministrator", "username": "dormant"}
    assert "superuser" in alert.summary


def test_the_first_administrator_of_an_installation_raises_nothing(db: None) -> None:
    get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    assert not Event.objects.filter(kind="security.admin_granted").exists()


# --- DRF throttles --------------------------------------------------------------------------------


@pytest.fixture
def strict_anon_rate(fresh_throttles: None) -> Any:
    rates = api_settings.DEFAULT_THROTTLE_RATES
    before = rates["anon"]
    rates["anon"] = "2/min"
    yield
    rates["anon"] = before


@override_settings(TOCSIN_BEHIND_PROXY=False)
def test_anonymous_api_calls_are_throttled_whatever_address_they_claim(
    client: Any, db: None, strict_anon_rate: None
) -> None:
    statuses = [
        client.get("/api/v1/schema/", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_ingest_is_not_throttled_by_the_apis_anonymous_rate(
    client: Any, crew: Any, strict_anon_rate: None
) -> None:
    from monitoring.models import Integration, IntegrationKind

    service = Service.objects.create(team=crew.team, name="Checkout")
    integration = Integration(service=service, kind=IntegrationKind.ALERTMANAGER, name="am")
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    body = {"version": "4", "status": "firing", "alerts": [{"labels": {"alertname": "A"}}]}
    statuses = {
        client.post(
            f"/ingest/alertmanager/{key}/", body, content_type="application/json"
        ).status_code
        for _ in range(5)
    }
    assert all(200 <= status < 300 for status in statuses), statuses


# --- API tokens -----------------------------------------------------------------------------------


def test_a_wrong_token_with_a_malformed_body_is_a_401_and_counted(client: Any, db: None) -> None:
    response = client.post(
        "/api/v1/tokens/",
        data=b"--x\r\nContent-Disposition: form-data; name=\r\n\r\n",
        content_type="multipart/form-data; boundary=x",
        HTTP_AUTHORIZATION="Bearer tcs_wrong",
    )
    assert response.status_code == 401
    [attempt] = AccessAttempt.objects.all()
    assert attempt.username is None and attempt.ip_address == "127.0.0.1"
    [event] = Event.objects.filter(kind="user.login_failed")
    assert event.payload == {"ip": "127.0.0.1", "method": "api_token"}


@override_settings(AXES_FAILURE_LIMIT=3)
def test_wrong_tokens_from_one_address_do_not_lock_another(client: Any, crew: Any) -> None:
    from tocsin.models import ApiToken

    _, raw = ApiToken.issue(crew.viewer, "cli")
    for _ in range(3):
        client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer tcs_wrong", REMOTE_ADDR="192.0.2.1")
    locked = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="192.0.2.1")
    assert locked.status_code == 429
    fine = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="192.0.2.2")
    assert fine.status_code == 200


# --- Lockouts of names nobody has -----------------------------------------------------------------


@override_settings(TOCSIN_LOGIN_DELAY_SECONDS=0, TOCSIN_LOGIN_FAILURE_LIMIT=3, AXES_FAILURE_LIMIT=3)
def test_invented_names_cannot_page_at_will(crew: Any) -> None:
    """Lockouts of names no account has share one warning alert, which never repeats the typed
    name; a real account's lockout pages on its own (critical)."""
    for name in ("<b>ceo</b> wire money", "nobody-else"):
        client = Client(REMOTE_ADDR=f"192.0.2.{len(name)}")
        for _ in range(4):
            sign_in(client, name, "wrong")
    client = Client(REMOTE_ADDR="192.0.2.200")
    for _ in range(4):
        sign_in(client, "viewer", "wrong")
    assert Event.objects.filter(kind="security.signin_locked").count() == 3
    by_fingerprint = {alert.fingerprint: alert for alert in security_alerts()}
    assert set(by_fingerprint) == {"signin-locked-unknown-accounts", "signin-locked-viewer"}
    unknown = by_fingerprint["signin-locked-unknown-accounts"]
    assert unknown.severity == "warning" and "username" not in unknown.labels
    assert "ceo" not in unknown.summary + unknown.description + str(unknown.details)
    assert by_fingerprint["signin-locked-viewer"].severity == "critical"
