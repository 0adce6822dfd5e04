"""Without OpenID Connect settings there is no single sign-on at all: no button, no URLs, no
backend. With them, the login page offers the provider by its name."""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings as django_settings

from tests.tocsin.test_settings import manage
from tocsin import oidc


def test_the_login_page_offers_no_provider(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page and "/oidc/" not in page


@pytest.mark.parametrize("path", ["/oidc/authenticate/", "/oidc/callback/?code=x&state=y"])
def test_the_sign_in_urls_are_not_found(client, db, path):
    assert client.get(path).status_code == 404


def test_no_backend_is_installed():
    assert not django_settings.TOCSIN_OIDC_ENABLED
    assert "tocsin.oidc.OIDCBackend" not in django_settings.AUTHENTICATION_BACKENDS


def test_the_backend_does_nothing_when_sso_is_off(rf):
    request = rf.get("/oidc/callback/", {"code": "x", "state": "y"})
    assert oidc.OIDCBackend().authenticate(request, nonce="n", code_verifier=None) is None


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TOCSIN_OIDC_CLIENT_ID": "tocsin"}, "TOCSIN_OIDC_ISSUER"),
        (
            {"TOCSIN_OIDC_CLIENT_ID": "t", "TOCSIN_OIDC_ISSUER": "ftp://idp"},
            "not an http(s) URL",
        ),
        (
            {"TOCSIN_OIDC_ROLES_CLAIM": "groups", "TOCSIN_OIDC_TEAM_ROLES": "ops=ops:admin"},
            "TOCSIN_OIDC_TEAM_ROLES",
        ),
        ({"TOCSIN_OIDC_TEAM_ROLES": "ops=ops:manager"}, "TOCSIN_OIDC_ROLES_CLAIM"),
    ],
)
def test_a_bad_configuration_stops_the_start(env, message, tmp_path):
    result = manage("check", env=env, var_dir=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_check_deploy_is_clean_with_single_sign_on(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TOCSIN_BASE_URL": "https://tocsin.example.org",
        "ALLOWED_HOSTS": "tocsin.example.org",
        "TOCSIN_OIDC_CLIENT_ID": "tocsin",
        "TOCSIN_OIDC_CLIENT_SECRET": "secret",
        "TOCSIN_OIDC_ISSUER": "https://idp.example.org/",
        "TOCSIN_OIDC_ROLES_CLAIM": "groups",
        "TOCSIN_OIDC_TEAM_ROLES": "ops-leads = ops:manager, ops=ops:responder",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, var_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
