"""Idle timeout and absolute lifetime of signed-in sessions (stamps moved, never slept on)."""

from __future__ import annotations

import time

from django.contrib.auth import SESSION_KEY

from tests.conftest import PASSWORD
from tocsin.two_factor.sessions import LOGIN_AT, SEEN_AT


def shift(client, **stamps: int) -> None:
    session = client.session
    for key, seconds_ago in stamps.items():
        session[{"login": LOGIN_AT, "seen": SEEN_AT}[key]] = int(time.time()) - seconds_ago
    session.save()


def test_signing_in_stamps_the_session(client, crew):
    before = int(time.time())
    client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD})
    assert before <= client.session[LOGIN_AT] == client.session[SEEN_AT] <= time.time()


def test_an_idle_session_is_signed_out(client, crew, settings):
    settings.TOCSIN_SESSION_IDLE_MINUTES = 30
    client.force_login(crew.viewer)
    shift(client, seen=30 * 60 + 5)
    response = client.get("/teams/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in client.session
    page = client.get(response["Location"]).content.decode()
    assert "signed out after a time without activity" in page


def test_activity_keeps_a_session_alive(client, crew, settings):
    settings.TOCSIN_SESSION_IDLE_MINUTES = 30
    client.force_login(crew.viewer)
    shift(client, seen=29 * 60)
    assert client.get("/teams/").status_code == 200
    assert client.session[SEEN_AT] >= time.time() - 5  # the request counted as activity
    shift(client, seen=29 * 60)
    assert client.get("/teams/").status_code == 200


def test_a_recent_stamp_is_not_rewritten_on_every_request(client, crew):
    client.force_login(crew.viewer)
    shift(client, seen=10)
    stamp = client.session[SEEN_AT]
    client.get("/teams/")
    assert client.session[SEEN_AT] == stamp


def test_a_session_past_its_absolute_lifetime_is_signed_out_even_when_busy(client, crew, settings):
    settings.TOCSIN_SESSION_MAX_HOURS = 24
    client.force_login(crew.viewer)
    shift(client, login=24 * 3600 + 5, seen=0)
    response = client.get("/teams/")
    assert response.status_code == 302 and SESSION_KEY not in client.session
    assert "maximum age" in client.get(response["Location"]).content.decode()


def test_api_calls_with_an_expired_session_are_refused(client, crew, settings):
    client.force_login(crew.viewer)
    shift(client, login=settings.TOCSIN_SESSION_MAX_HOURS * 3600 + 5)
    assert client.get("/api/v1/teams/").status_code in {401, 403}


def test_a_session_from_before_the_stamps_is_stamped_not_ended(client, crew):
    client.force_login(crew.viewer)
    session = client.session
    del session[LOGIN_AT], session[SEEN_AT]  # as sessions were before this feature
    session.save()
    assert client.get("/teams/").status_code == 200
    assert client.session[LOGIN_AT] >= time.time() - 5
    assert client.get("/teams/").status_code == 200


def test_the_cookie_lives_as_long_as_the_absolute_lifetime(settings):
    assert settings.SESSION_COOKIE_AGE == settings.TOCSIN_SESSION_MAX_HOURS * 3600
