"""OpenID Connect sign-in, end to end: a real daphne web process and a real local provider.

The browser's part is played by an httpx client that follows the real redirects: login page →
``/oidc/authenticate/`` → the provider's authorize endpoint → ``/oidc/callback/`` → the page.
The web process talks to the provider itself (token, JWKS, userinfo) over HTTP.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from tests.conftest import PASSWORD, make_user
from tests.live import WebServer, start_web
from tests.tocsin.oidc_provider import Provider, new_key
from tocsin.models import Event, Membership, Role, Team

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

NAME = "Acme ID"
MAPPING = "tocsin-ops-managers=ops:manager,tocsin-ops=ops:responder,tocsin-db=db:viewer"
ACTOR = f"single sign-on ({NAME})"


def person(email: str, groups: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "sub": f"sub-{email.lower()}",
        "email": email,
        "email_verified": True,
        "preferred_username": email.split("@")[0].lower(),
        "groups": groups or [],
        **extra,
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    provider = Provider().start()
    yield provider
    provider.stop()


def sso_env(provider: Provider, **extra: str) -> dict[str, str]:
    return {
        "TOCSIN_OIDC_CLIENT_ID": provider.client_id,
        "TOCSIN_OIDC_CLIENT_SECRET": provider.client_secret,
        "TOCSIN_OIDC_PROVIDER_NAME": NAME,
        **extra,
    }


@pytest.fixture(scope="module")
def web(
    provider: Provider, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    server = start_web(
        tmp_path_factory.mktemp("oidc-web"),
        **sso_env(
            provider,
            TOCSIN_OIDC_ISSUER=provider.issuer,
            TOCSIN_OIDC_CREATE_USERS="1",
            TOCSIN_OIDC_ROLES_CLAIM="groups",
            TOCSIN_OIDC_TEAM_ROLES=MAPPING,
        ),
    )
    yield server
    server.proc.stop()


@pytest.fixture(autouse=True)
def well_behaved(provider: Provider) -> Iterator[None]:
    secret = provider.client_secret
    yield
    provider.sign_with = provider.nonce_override = provider.audience_override = None
    provider.client_secret = secret


def browser() -> httpx.Client:
    return httpx.Client(follow_redirects=True, timeout=30)


def sso_sign_in(web: WebServer, client: httpx.Client | None = None) -> tuple[httpx.Client, Any]:
    """Press "Sign in with Acme ID" on the login page and follow every redirect."""
    client = client or browser()
    page = client.get(f"{web.url}/accounts/login/?next=/teams/")
    found = re.search(r'href="([^"]+)">Sign in with ' + NAME, page.text)
    assert found, page.text
    return client, client.get(f"{web.url}{html.unescape(found[1])}")


def signed_in_user(web: WebServer, client: httpx.Client) -> Any:
    """Who the session cookie signs in, as the web process sees it (None: nobody)."""
    key = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    user_id = SessionStore(session_key=key).get("_auth_user_id")
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def refused(web: WebServer, client: httpx.Client, response: httpx.Response) -> bool:
    return (
        urlsplit(str(response.url)).path == "/accounts/login/"
        and "did not work" in response.text
        and signed_in_user(web, client) is None
        and client.get(f"{web.url}/teams/", follow_redirects=True).url.path == "/accounts/login/"
    )


def test_a_new_person_gets_an_account_and_a_session_like_a_password_login(provider, web):
    provider.person = person("Dana@Example.org")

    client, response = sso_sign_in(web)

    assert response.status_code == 200 and response.url.path == "/teams/"
    dana = get_user_model().objects.get(email__iexact="dana@example.org")
    assert dana.username == "dana" and not dana.has_usable_password()
    assert signed_in_user(web, client) == dana
    assert Event.objects.filter(kind="user.logged_in", actor_id=dana.pk).count() == 1
    # The same kind of session a password login makes: same lifetime, same pages.
    sso_session = SessionStore(session_key=client.cookies[settings.SESSION_COOKIE_NAME])
    password_client = browser()
    make_user("erin")
    page = password_client.get(f"{web.url}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    password_client.post(
        f"{web.url}/accounts/login/",
        data={"username": "erin", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    password_session = SessionStore(
        session_key=password_client.cookies[settings.SESSION_COOKIE_NAME]
    )
    assert abs(sso_session.get_expiry_age() - password_session.get_expiry_age()) < 60
    assert sso_session.get_expiry_age() > settings.SESSION_COOKIE_AGE - 120
    for path in ("/", "/teams/", "/account/tokens/"):
        assert client.get(f"{web.url}{path}").url.path == path


def test_an_existing_account_is_matched_by_its_verified_address(provider, web):
    carol = make_user("carol")
    provider.person = person("CAROL@example.org", preferred_username="someone-else")

    client, response = sso_sign_in(web)

    assert response.url.path == "/teams/"
    assert signed_in_user(web, client) == carol
    assert get_user_model().objects.filter(email__iexact="carol@example.org").count() == 1


def test_an_unverified_address_signs_in_nobody(provider, web):
    carol = make_user("carol")
    provider.person = person("carol@example.org", email_verified=False)

    client, response = sso_sign_in(web)

    assert refused(web, client, response)
    assert not Event.objects.filter(kind="user.logged_in", actor_id=carol.pk).exists()


def test_team_roles_follow_the_groups_claim_at_each_sign_in(provider, web):
    ops = Team.objects.create(name="Ops")
    Team.objects.create(name="DB")
    search = Team.objects.create(name="Search")
    bob = make_user("bob")
    Membership.objects.create(team=ops, user=bob, role=Role.MANAGER)
    alice = make_user("alice")
    Membership.objects.create(team=search, user=alice, role=Role.RESPONDER)  # not mapped

    def roles() -> dict[str, str]:
        return dict(
            Membership.objects.filter(user=alice).values_list("team__slug", "role").order_by()
        )

    provider.person = person("alice@example.org", ["tocsin-ops", "unrelated"])
    sso_sign_in(web)
    assert roles() == {"ops": "responder", "search": "responder"}

    provider.person = person(
        "alice@example.org", ["tocsin-ops", "tocsin-ops-managers", "tocsin-db"]
    )
    sso_sign_in(web)
    assert roles() == {"ops": "manager", "db": "viewer", "search": "responder"}

    provider.person = person("alice@example.org", ["tocsin-db"])
    client, _ = sso_sign_in(web)
    assert roles() == {"db": "viewer", "search": "responder"}
    assert signed_in_user(web, client) == alice

    events = Event.objects.filter(kind__startswith="team.member", payload__user_id=alice.pk)
    assert [(e.kind, e.team.slug, e.actor_label) for e in events.order_by("id")] == [
        ("team.member_added", "ops", ACTOR),
        ("team.member_added", "db", ACTOR),
        ("team.member_role_changed", "ops", ACTOR),
        ("team.member_removed", "ops", ACTOR),
    ]
    # A sign-in that changes nothing writes nothing.
    sso_sign_in(web)
    assert events.count() == 4


def test_the_last_manager_of_a_team_stays_one_when_the_group_goes(provider, web):
    ops = Team.objects.create(name="Ops")
    provider.person = person("alice@example.org", ["tocsin-ops-managers"])
    sso_sign_in(web)
    provider.person = person("alice@example.org", [])

    client, _ = sso_sign_in(web)

    alice = get_user_model().objects.get(email="alice@example.org")
    assert Membership.objects.get(team=ops, user=alice).role == Role.MANAGER
    assert signed_in_user(web, client) == alice  # signing in still works


def test_a_forged_state_signs_in_nobody(provider, web):
    provider.person = person("dana@example.org")
    client = httpx.Client(follow_redirects=False, timeout=30)
    to_provider = client.get(f"{web.url}/oidc/authenticate/")
    back = httpx.get(to_provider.headers["Location"], follow_redirects=False)
    callback = urlsplit(back.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    forged = {**query, "state": "x" * len(query["state"])}

    response = client.get(f"{web.url}{callback.path}?{urlencode(forged)}", follow_redirects=True)

    assert refused(web, client, response)
    assert not get_user_model().objects.filter(email="dana@example.org").exists()


def test_a_replayed_callback_signs_in_nobody(provider, web):
    provider.person = person("dana@example.org")
    victim = httpx.Client(follow_redirects=False, timeout=30)
    to_provider = victim.get(f"{web.url}/oidc/authenticate/")
    callback = httpx.get(to_provider.headers["Location"]).headers["Location"]
    attacker = browser()  # another browser: the state is not in its session

    response = attacker.get(callback)

    assert refused(web, attacker, response)


@pytest.mark.parametrize(
    "misbehaviour",
    [
        {"nonce_override": "not-the-nonce-we-sent"},
        {"sign_with": new_key()},
        {"audience_override": "another-client"},
        {"client_secret": "rotated-at-the-provider"},
    ],
    ids=["wrong-nonce", "signed-by-another-key", "another-audience", "grant-refused"],
)
def test_an_id_token_that_does_not_check_out_signs_in_nobody(provider, web, misbehaviour):
    provider.person = person("dana@example.org")
    for name, value in misbehaviour.items():
        setattr(provider, name, value)

    client, response = sso_sign_in(web)

    assert refused(web, client, response)
    assert not get_user_model().objects.filter(email="dana@example.org").exists()
    assert "POST /token" in provider.requests  # refused after a real token exchange


def test_without_account_creation_only_existing_accounts_sign_in(provider, tmp_path):
    """Endpoints given one by one (no discovery), TOCSIN_OIDC_CREATE_USERS off (the default)."""
    issuer = provider.issuer
    web = start_web(
        tmp_path,
        **sso_env(
            provider,
            **{
                f"TOCSIN_OIDC_{name}_ENDPOINT": f"{issuer}/{path}"
                for name, path in [
                    ("AUTHORIZATION", "authorize"),
                    ("TOKEN", "token"),
                    ("USERINFO", "userinfo"),
                    ("JWKS", "jwks"),
                ]
            },
        ),
    )
    try:
        provider.person = person("dana@example.org")
        client, response = sso_sign_in(web)
        assert refused(web, client, response)
        assert not get_user_model().objects.filter(email="dana@example.org").exists()

        carol = make_user("carol")
        provider.person = person("carol@example.org")
        client, response = sso_sign_in(web)
        assert response.url.path == "/teams/" and signed_in_user(web, client) == carol
    finally:
        web.proc.stop()


def test_a_provider_that_cannot_be_reached_sends_people_back_to_the_password_form(
    tmp_path: Path, provider
):
    web = start_web(tmp_path, **sso_env(provider, TOCSIN_OIDC_ISSUER="http://127.0.0.1:9"))
    try:
        client = browser()
        response = client.get(f"{web.url}/oidc/authenticate/")
        assert response.url.path == "/accounts/login/" and "cannot be reached" in response.text
        assert 'name="password"' in response.text
    finally:
        web.proc.stop()


def test_a_person_with_a_second_factor_still_gives_the_code(provider, web):
    from tests.tocsin.two_factor_support import app_code, enrol

    carol = make_user("carol")
    device, _ = enrol(carol)
    provider.person = person("carol@example.org")

    client, response = sso_sign_in(web)

    assert response.url.path == "/accounts/login/code/"
    assert signed_in_user(web, client) is None
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)[1]
    response = client.post(
        str(response.url), data={"code": app_code(device), "csrfmiddlewaretoken": token}
    )
    assert response.url.path == "/teams/" and signed_in_user(web, client) == carol


def test_a_subject_stays_bound_to_its_account_when_its_address_changes(provider, web):
    from tocsin.models import SingleSignOnIdentity

    carol, dave = make_user("carol"), make_user("dave")
    provider.person = person("carol@example.org", sub="subject-carol")
    client, _ = sso_sign_in(web)
    assert signed_in_user(web, client) == carol
    bound = SingleSignOnIdentity.objects.get(user=carol)
    assert (bound.issuer, bound.subject) == (provider.issuer, "subject-carol")
    # Someone changes carol's address at the provider to dave's: still carol, never dave.
    provider.person = person("dave@example.org", sub="subject-carol")
    client, response = sso_sign_in(web)
    assert response.url.path == "/teams/"
    assert signed_in_user(web, client) == carol
    assert not SingleSignOnIdentity.objects.filter(user=dave).exists()


def test_a_second_identity_with_a_bound_address_signs_in_nobody(provider, web):
    carol = make_user("carol")
    provider.person = person("carol@example.org", sub="subject-carol")
    sso_sign_in(web)
    # Another account at the provider claims carol's (verified) address.
    provider.person = person("Carol@example.org", sub="subject-mallory")
    client, response = sso_sign_in(web)
    assert refused(web, client, response)
    assert get_user_model().objects.filter(email__iexact="carol@example.org").count() == 1
    # Only carol's own sign-in is on record.
    assert Event.objects.filter(kind="user.logged_in", actor_id=carol.pk).count() == 1
