"""A deactivated account's single sign-on sessions end at its next request, as a password
session's do (mozilla-django-oidc's own backend returns inactive users)."""

from __future__ import annotations

from tests.conftest import make_user
from tocsin.oidc import OIDCBackend


def test_a_deactivated_account_is_no_longer_signed_in(db) -> None:
    user = make_user("sso-person")
    backend = OIDCBackend()
    assert backend.get_user(user.pk) == user
    user.is_active = False
    user.save()
    assert backend.get_user(user.pk) is None
