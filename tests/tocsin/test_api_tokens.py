"""/api/v1/tokens/ and Bearer authentication: own tokens only, secret shown once, revoke keeps
the row, refused tokens say why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.tocsin.api_support import assert_error, bearer, db_state
from tocsin import services
from tocsin.models import TOKEN_PREFIX, ApiToken, Event, hash_token

LISTED_FIELDS = {
    "id",
    "name",
    "prefix",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "active",
}


# --- create, list, retrieve ---------------------------------------------------------------------


def test_creating_a_token_shows_its_secret_once(crew: Any, api: Any) -> None:
    client = api(crew.viewer)
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)

    created = client.post(
        "/api/v1/tokens/", {"name": "ci", "expires_at": expires.isoformat()}, format="json"
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == LISTED_FIELDS | {"token"}
    assert body["token"].startswith(TOKEN_PREFIX)
    assert body["token"].startswith(body["prefix"])
    assert body["active"] is True
    token = ApiToken.objects.get(pk=body["id"])
    assert (token.user, token.name, token.expires_at) == (crew.viewer, "ci", expires)
    assert token.token_hash == hash_token(body["token"])  # only the hash is kept
    event = Event.objects.get(kind="user.token_created")
    assert (event.actor, event.team, event.payload["prefix"]) == (crew.viewer, None, token.prefix)
    # Never again:
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [set(t) for t in listed] == [LISTED_FIELDS]
    assert "token" not in client.get(f"/api/v1/tokens/{token.pk}/").json()


def test_token_without_expiry(crew: Any, api: Any) -> None:
    response = api(crew.viewer).post("/api/v1/tokens/", {"name": "forever"}, format="json")

    assert response.status_code == 201
    assert response.json()["expires_at"] is None


def test_each_user_sees_only_their_own_tokens(crew: Any, api: Any) -> None:
    mine, _ = services.issue_token(crew.viewer, "mine")
    theirs, _ = services.issue_token(crew.manager, "theirs")

    assert [t["id"] for t in api(crew.viewer).get("/api/v1/tokens/").json()["results"]] == [mine.pk]
    # Not even a superuser reads other people's tokens here.
    assert api(crew.admin).get("/api/v1/tokens/").json()["results"] == []
    assert_error(api(crew.admin).get(f"/api/v1/tokens/{theirs.pk}/"), 404, "not_found")
    assert_error(api(crew.viewer).get(f"/api/v1/tokens/{theirs.pk}/"), 404, "not_found")


def test_token_list_query_count_does_not_grow_with_tokens(
    crew: Any, api: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(25):
        services.issue_token(crew.viewer, f"t{n}")
    client = api(crew.viewer)

    with django_assert_max_num_queries(4):  # session, user, count, page
        body = client.get("/api/v1/tokens/").json()

    assert body["count"] == 25


# --- authenticating with a token ----------------------------------------------------------------


def test_a_new_token_authenticates_as_its_owner(crew: Any, api: Any) -> None:
    raw = api(crew.responder).post("/api/v1/tokens/", {"name": "cli"}, format="json").json()
    client = bearer(APIClient(), raw["token"])

    me = client.get("/api/v1/me/")

    assert me.status_code == 200
    assert me.json()["username"] == "responder"
    assert ApiToken.objects.get(pk=raw["id"]).last_used_at is not None


def test_token_requests_need_no_csrf_token(crew: Any) -> None:
    _, raw = services.issue_token(crew.manager, "script")
    client = bearer(APIClient(enforce_csrf_checks=True), raw)

    response = client.patch(
        f"/api/v1/teams/{crew.team.pk}/", {"description": "from a script"}, format="json"
    )

    assert response.status_code == 200, response.content


def test_session_writes_still_need_csrf(crew: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(crew.manager)
    before = db_state()

    response = client.patch(f"/api/v1/teams/{crew.team.pk}/", {"description": "x"}, format="json")

    assert "CSRF" in assert_error(response, 403, "permission_denied")["message"]
    assert db_state() == before


def test_the_token_word_is_accepted_too(crew: Any) -> None:
    _, raw = services.issue_token(crew.viewer, "legacy")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")

    assert client.get("/api/v1/me/").status_code == 200


def test_expired_token_is_refused_with_401_saying_so(crew: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "old", expires_at=timezone.now() + timedelta(1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = bearer(APIClient(), raw).get("/api/v1/me/")

    error = assert_error(response, 401, "token_expired")
    assert "expired" in error["message"] and token.prefix in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_revoked_token_is_refused_with_401_saying_so(crew: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "gone")
    services.revoke_token(token, actor=crew.viewer)

    response = bearer(APIClient(), raw).get("/api/v1/me/")

    assert "revoked" in assert_error(response, 401, "token_revoked")["message"]


def test_token_of_a_deactivated_user_is_refused(crew: Any) -> None:
    _, raw = services.issue_token(crew.viewer, "t")
    crew.viewer.is_active = False
    crew.viewer.save()

    response = bearer(APIClient(), raw).get("/api/v1/me/")

    assert "deactivated" in assert_error(response, 401, "user_inactive")["message"]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer tcs_not-a-real-token", "invalid_token"),
        ("Bearer", "malformed_authorization"),
        ("Bearer two parts", "malformed_authorization"),
        ("Token", "malformed_authorization"),
    ],
)
def test_bad_authorization_headers_are_401(db: None, header: str, code: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/me/")

    assert_error(response, 401, code)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_bad_token_fails_even_with_a_valid_session(crew: Any, api: Any) -> None:
    # A wrong token is a client bug worth surfacing, not something to paper over.
    client = api(crew.viewer)
    client.credentials(HTTP_AUTHORIZATION="Bearer tcs_wrong")

    assert_error(client.get("/api/v1/me/"), 401, "invalid_token")


# --- revoke -------------------------------------------------------------------------------------


def test_revoking_keeps_the_row_and_stops_the_token(crew: Any, api: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "laptop")
    assert bearer(APIClient(), raw).get("/api/v1/me/").status_code == 200

    response = api(crew.viewer).delete(f"/api/v1/tokens/{token.pk}/")

    assert response.status_code == 204, response.content
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Event.objects.filter(kind="user.token_revoked", actor=crew.viewer).count() == 1
    assert_error(bearer(APIClient(), raw).get("/api/v1/me/"), 401, "token_revoked")
    listed = api(crew.viewer).get(f"/api/v1/tokens/{token.pk}/").json()
    assert listed["active"] is False
    assert listed["revoked_at"] is not None


def test_revoking_twice_is_harmless(crew: Any, api: Any) -> None:
    token, _ = services.issue_token(crew.viewer, "laptop")
    client = api(crew.viewer)
    client.delete(f"/api/v1/tokens/{token.pk}/")
    before = db_state()

    response = client.delete(f"/api/v1/tokens/{token.pk}/")

    assert response.status_code == 204
    assert db_state() == before


def test_a_token_can_revoke_itself(crew: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "self")
    client = bearer(APIClient(), raw)

    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert_error(client.get("/api/v1/me/"), 401, "token_revoked")


def test_nobody_can_revoke_someone_elses_token(crew: Any, api: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "laptop")
    before = db_state()

    for user in (crew.manager, crew.admin):
        assert_error(api(user).delete(f"/api/v1/tokens/{token.pk}/"), 404, "not_found")

    assert db_state() == before
    assert bearer(APIClient(), raw).get("/api/v1/me/").status_code == 200


def test_tokens_cannot_be_edited(crew: Any, api: Any) -> None:
    token, _ = services.issue_token(crew.viewer, "laptop")
    before = db_state()

    response = api(crew.viewer).patch(f"/api/v1/tokens/{token.pk}/", {"name": "x"}, format="json")

    assert_error(response, 405, "method_not_allowed")
    assert db_state() == before
