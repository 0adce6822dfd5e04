"""API tokens page: list your own tokens, create one (shown once), revoke."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tocsin.models import ApiToken, Event, hash_token


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def created_secret(html: str) -> str:
    match = re.search(r'id="new-token-value" value="(tcs_[^"]+)"', html)
    assert match, "the response does not show the new token"
    return match.group(1)


def test_tokens_page_lists_only_the_users_own_tokens(crew):
    ApiToken.issue(crew.viewer, "viewer-laptop")
    ApiToken.issue(crew.manager, "manager-ci")
    html = logged_in(crew.viewer).get(reverse("tokens")).content.decode()
    assert "viewer-laptop" in html
    assert "manager-ci" not in html


def test_tokens_page_has_an_empty_state(crew):
    html = logged_in(crew.viewer).get(reverse("tokens")).content.decode()
    assert "You have no API tokens" in html


def test_created_token_is_shown_once_and_works(crew):
    client = logged_in(crew.viewer)
    response = client.post(reverse("tokens"), {"name": "grafana", "expires_in": ""})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = created_secret(response.content.decode())
    token = ApiToken.objects.get(user=crew.viewer, name="grafana")
    assert token.token_hash == hash_token(secret)
    assert token.expires_at is None
    assert ApiToken.authenticate(secret).pk == token.pk
    assert Event.objects.filter(kind="user.token_created", actor=crew.viewer).exists()
    again = client.get(reverse("tokens")).content.decode()
    assert secret not in again
    assert "grafana" in again
    assert token.prefix in again


def test_created_token_may_expire(crew):
    client = logged_in(crew.viewer)
    client.post(reverse("tokens"), {"name": "short-lived", "expires_in": "30"})
    token = ApiToken.objects.get(name="short-lived")
    expected = timezone.now() + timedelta(days=30)
    assert abs((token.expires_at - expected).total_seconds()) < 60


def test_a_token_needs_a_name(crew):
    response = logged_in(crew.viewer).post(reverse("tokens"), {"name": "  ", "expires_in": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"' in html
    assert "new-token-value" not in html
    assert not ApiToken.objects.exists()


def test_an_unknown_expiry_is_refused(crew):
    response = logged_in(crew.viewer).post(reverse("tokens"), {"name": "x", "expires_in": "9999"})
    assert response.status_code == 400
    assert 'id="id_expires_in_error"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_owner_revokes_a_token(crew):
    token, secret = ApiToken.issue(crew.viewer, "old")
    client = logged_in(crew.viewer)
    response = client.post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiToken.authenticate(secret) is None
    html = client.get(response["Location"]).content.decode()
    assert re.search(rf'<tr id="token-{token.pk}">.*?revoked</span>', html, re.S)


def test_revoking_someone_elses_token_is_404_and_changes_nothing(crew):
    token, secret = ApiToken.issue(crew.manager, "theirs")
    for user in (crew.viewer, crew.admin):
        response = logged_in(user).post(reverse("token_revoke", args=[token.pk]))
        assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiToken.authenticate(secret) is not None


def test_revoke_refuses_get(crew):
    token, _ = ApiToken.issue(crew.viewer, "x")
    assert logged_in(crew.viewer).get(reverse("token_revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_expired_tokens_are_marked_expired(crew):
    token, _ = ApiToken.issue(crew.viewer, "stale")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    html = logged_in(crew.viewer).get(reverse("tokens")).content.decode()
    assert re.search(rf'<tr id="token-{token.pk}">.*?expired</span>', html, re.S)
