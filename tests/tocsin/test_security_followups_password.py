"""The password-change form's old password counts as a sign-in: wrong guesses there reach the
same per-account and per-address lockout as the login page (Django's test client, real view)."""

from __future__ import annotations

from typing import Any

import pytest
from axes.models import AccessAttempt
from django.urls import resolve

from tests.conftest import PASSWORD
from tocsin import views
from tocsin.models import Event

NEW_PASSWORD = "a-new-and-longer-passphrase-9"


@pytest.fixture(autouse=True)
def real_signin_limits(settings: Any) -> None:
    """The lockout tocsin/settings.py configures (tests/conftest.py relaxes it); no delay, so
    the guesses here come as fast as the lockout allows."""
    settings.AXES_FAILURE_LIMIT = settings.TOCSIN_LOGIN_FAILURE_LIMIT = 5
    settings.TOCSIN_LOGIN_DELAY_SECONDS = 0


def change(client: Any, old: str, new: str = NEW_PASSWORD) -> Any:
    return client.post(
        "/accounts/password/",
        {"old_password": old, "new_password1": new, "new_password2": new},
        REMOTE_ADDR="192.0.2.80",
    )


def test_the_right_old_password_changes_it(client, crew):
    client.force_login(crew.viewer)
    response = change(client, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
    crew.viewer.refresh_from_db()
    assert crew.viewer.check_password(NEW_PASSWORD)
    assert client.get("/teams/").status_code == 200  # still signed in
    assert not AccessAttempt.objects.exists()


def test_a_wrong_old_password_is_a_failed_sign_in_of_the_account(client, crew):
    client.force_login(crew.viewer)
    response = change(client, "guess-1")
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address) == ("viewer", "192.0.2.80")
    assert attempt.failures_since_start == 1
    [event] = Event.objects.filter(kind="user.login_failed")
    assert event.subject_label == "viewer"


def test_guessing_the_old_password_locks_the_form(client, crew, settings):
    client.force_login(crew.viewer)
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert change(client, f"guess-{n}").status_code == 200
    assert change(client, "last-guess").status_code == 429  # the limit reached: locked
    # Locked: even the right password is refused, without being checked, and nothing changes.
    response = change(client, PASSWORD)
    assert response.status_code == 429 and "Retry-After" in response
    crew.viewer.refresh_from_db()
    assert crew.viewer.check_password(PASSWORD)
    assert Event.objects.filter(kind="security.signin_locked").count() == 1


def test_guesses_on_the_form_and_on_the_login_page_add_up(client, crew, settings):
    attacker = client.__class__()
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        attacker.post(
            "/accounts/login/",
            {"username": "viewer", "password": f"guess-{n}"},
            REMOTE_ADDR="198.51.100.9",
        )
    client.force_login(crew.viewer)
    assert change(client, "one-more-guess").status_code == 429


def test_the_project_urls_serve_the_page_with_tocsins_view():
    match = resolve("/accounts/password/", urlconf="tocsin.urls")
    assert match.func.view_class is views.PasswordChangeView
