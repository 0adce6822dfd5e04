"""Signing in with a username or an e-mail address, on the UI login and the admin login."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import PASSWORD, make_user


def sign_in(client, path, login, password=PASSWORD):
    return client.post(path, {"username": login, "password": password})


@pytest.mark.parametrize("login", ["manager", "manager@example.org", "Manager@Example.org"])
def test_the_ui_login_takes_a_username_or_an_email(client, crew, login):
    response = sign_in(client, "/accounts/login/", login)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(crew.manager.pk)


def test_the_admin_login_takes_an_email_too(client, crew):
    response = sign_in(client, "/admin/login/?next=/admin/", "admin@example.org")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_form_says_what_it_accepts(client, db):
    for path in ("/accounts/login/", "/admin/login/"):
        assert "E-mail or username" in client.get(path).content.decode()


def test_a_wrong_password_for_an_email_is_refused_with_a_clear_message(client, crew):
    response = sign_in(client, "/accounts/login/", "manager@example.org", "wrong")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "do not match an account" in response.content.decode()


def test_an_address_two_accounts_share_signs_in_neither(client, crew):
    twin = make_user("twin")
    get_user_model().objects.filter(pk=twin.pk).update(email="manager@example.org")
    response = sign_in(client, "/accounts/login/", "manager@example.org")
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_an_inactive_account_cannot_sign_in_by_email(client, crew):
    get_user_model().objects.filter(pk=crew.manager.pk).update(is_active=False)
    response = sign_in(client, "/accounts/login/", "manager@example.org")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
