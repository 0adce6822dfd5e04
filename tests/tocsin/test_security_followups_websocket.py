"""The live stream follows the session rules pages follow: idle and absolute limits, two-factor.

Real web processes and real sessions in the shared database, as a browser opens the socket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django_otp import DEVICE_ID_SESSION_KEY
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import PASSWORD
from tests.live import WebServer, start_web
from tests.tocsin.two_factor_support import enrol
from tocsin.two_factor import gate, policy
from tocsin.two_factor.sessions import LOGIN_AT, SEEN_AT

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def staff_rule_web(
    django_db_setup: None, django_db_blocker: Any, live_log_dir: Path
) -> Iterator[WebServer]:
    """A web process whose staff must sign in with a second factor."""
    server = start_web(live_log_dir, TOCSIN_2FA_REQUIRED_FOR_STAFF="1")
    yield server
    server.proc.stop()


@pytest.fixture
def staff_rule(staff_rule_web: WebServer, settings: Any) -> WebServer:
    # Here too: signing in (force_login, in this process) notes the policy in the session.
    settings.TOCSIN_2FA_REQUIRED_FOR_STAFF = True
    return staff_rule_web


def session_of(web: WebServer, user: Any, **values: Any) -> str:
    """A real signed-in session for ``user`` with ``values`` written into it; its key."""
    key = web.session_cookie(user)
    session = SessionStore(key)
    session.update(values)
    session.save()
    return key


def open_stream(web: WebServer, key: str) -> Any:
    headers = {"Origin": web.url, "Cookie": f"{settings.SESSION_COOKIE_NAME}={key}"}
    return connect(f"{web.ws_url}/ws/live/?format=json", additional_headers=headers)


def assert_refused(web: WebServer, key: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_stream(web, key)
    assert refused.value.response.status_code == 403


def assert_streams(web: WebServer, key: str) -> None:
    with open_stream(web, key) as ws:
        ws.send(json.dumps({"action": "subscribe", "after": 0}))
        assert ws.ping().wait(3)  # accepted, subscribed and still open


def staff_user() -> Any:
    return get_user_model().objects.create_user(username="ops", password=PASSWORD, is_staff=True)


def test_an_idle_session_cannot_open_the_stream(web, crew, settings):
    now = int(time.time())
    idle = settings.TOCSIN_SESSION_IDLE_MINUTES * 60
    assert_streams(web, session_of(web, crew.viewer, **{SEEN_AT: now - idle + 120}))
    assert_refused(web, session_of(web, crew.viewer, **{SEEN_AT: now - idle - 60}))


def test_a_session_past_its_absolute_lifetime_cannot_open_the_stream(web, crew, settings):
    old = int(time.time()) - settings.TOCSIN_SESSION_MAX_HOURS * 3600 - 60
    assert_refused(web, session_of(web, crew.viewer, **{LOGIN_AT: old}))


def test_the_stream_does_not_keep_a_session_alive(web, crew):
    seen = int(time.time()) - 10 * 60  # stale enough that a page would rewrite it
    key = session_of(web, crew.viewer, **{SEEN_AT: seen})
    assert_streams(web, key)
    assert SessionStore(key)[SEEN_AT] == seen


def test_the_lifetime_check_can_only_read(settings):
    now = int(time.time())
    session = {LOGIN_AT: now - 3600, SEEN_AT: now - 600}
    assert gate.sessions.expired(session, now=now, refresh=False) is None
    assert session[SEEN_AT] == now - 600
    unstamped: dict = {}
    assert gate.sessions.expired(unstamped, now=now, refresh=False) is None
    assert unstamped == {}


def test_staff_who_must_enrol_cannot_open_the_stream(staff_rule):
    assert_refused(staff_rule, session_of(staff_rule, staff_user()))


def test_staff_with_a_device_but_an_unverified_session_cannot_open_the_stream(staff_rule):
    user = staff_user()
    enrol(user)
    assert_refused(staff_rule, session_of(staff_rule, user))


def test_staff_verified_by_their_second_factor_open_the_stream(staff_rule):
    user = staff_user()
    device, _ = enrol(user)
    key = session_of(staff_rule, user, **{DEVICE_ID_SESSION_KEY: device.persistent_id})
    assert_streams(staff_rule, key)


def test_another_users_device_does_not_verify_the_session(staff_rule):
    user, other = staff_user(), get_user_model().objects.create_user(username="other")
    enrol(user)
    device, _ = enrol(other)
    key = session_of(staff_rule, user, **{DEVICE_ID_SESSION_KEY: device.persistent_id})
    assert_refused(staff_rule, key)


def test_a_team_rule_applies_to_the_stream_too(web, crew):
    crew.team.require_two_factor = True
    crew.team.save()
    assert_refused(web, session_of(web, crew.viewer))
    assert_streams(web, session_of(web, crew.outsider))


def test_single_sign_on_sessions_are_left_to_the_identity_provider(crew, settings):
    settings.TOCSIN_2FA_REQUIRED_FOR_STAFF = True
    session = SessionStore()
    session[policy.BACKEND_SESSION_KEY] = "tocsin.oidc.OIDCBackend"
    crew.admin.backend = "tocsin.oidc.OIDCBackend"
    assert gate.refusal(session, crew.admin) is None
    session[policy.BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    assert gate.refusal(session, crew.admin) == policy.ENROL


def test_an_open_stream_closes_when_its_session_reaches_its_lifetime(web, crew, settings):
    from websockets.exceptions import ConnectionClosed

    # Signed in so long ago that the session's absolute limit comes three seconds from now.
    almost = int(time.time()) - settings.TOCSIN_SESSION_MAX_HOURS * 3600 + 3
    key = session_of(web, crew.viewer, **{LOGIN_AT: almost})
    with open_stream(web, key) as ws:
        ws.send(json.dumps({"action": "subscribe", "after": 0}))
        assert ws.ping().wait(2)  # open at first
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert_refused(web, key)  # and it cannot come back
