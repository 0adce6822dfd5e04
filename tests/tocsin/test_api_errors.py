"""Bad input to every write endpoint: the one error shape, the right status, nothing changed.

Each case runs against a fresh crew and compares the whole database (teams, memberships,
tokens, events, queued tasks) before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.urls import resolve
from django.utils import timezone

from tests.conftest import make_user
from tests.tocsin.api_support import assert_error, db_state
from tocsin import services
from tocsin.api import urls
from tocsin.api.schema import DocsThrottle
from tocsin.models import Membership


@dataclass(frozen=True)
class Raw:
    """A request body sent exactly as written."""

    text: str
    content_type: str = "application/json"


@dataclass(frozen=True)
class Endpoint:
    name: str
    role: str  # who calls it: someone allowed to, so only the input is wrong
    method: str
    url: str  # formatted with the ``targets`` fixture


@dataclass(frozen=True)
class Case:
    endpoint: Endpoint
    body: Any
    status: int
    code: str
    fields: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        shown = self.body.text if isinstance(self.body, Raw) else self.body
        return f"{self.endpoint.name}:{shown}"


CREATE_TEAM = Endpoint("teams.create", "admin", "post", "/api/v1/teams/")
UPDATE_TEAM = Endpoint("teams.update", "manager", "patch", "/api/v1/teams/{team}/")
ADD_MEMBER = Endpoint("members.add", "manager", "post", "/api/v1/teams/{team}/members/")
CHANGE_ROLE = Endpoint(
    "members.change_role", "manager", "patch", "/api/v1/teams/{team}/members/{responder}/"
)
DEMOTE_MANAGER = Endpoint(
    "members.demote_manager", "manager", "patch", "/api/v1/teams/{team}/members/{manager}/"
)
REMOVE_MANAGER = Endpoint(
    "members.remove_last_manager", "admin", "delete", "/api/v1/teams/{team}/members/{manager}/"
)
REMOVE_FOREIGN = Endpoint(
    "members.remove_other_teams", "manager", "delete", "/api/v1/teams/{team}/members/{foreign}/"
)
REMOVE_MISSING = Endpoint(
    "members.remove_missing", "manager", "delete", "/api/v1/teams/{team}/members/999999/"
)
TEST_EVENT = Endpoint("teams.test_event", "responder", "post", "/api/v1/teams/{team}/test-event/")
CREATE_TOKEN = Endpoint("tokens.create", "viewer", "post", "/api/v1/tokens/")
REVOKE_OTHERS_TOKEN = Endpoint(
    "tokens.revoke_others", "viewer", "delete", "/api/v1/tokens/{token}/"
)
REVOKE_MISSING_TOKEN = Endpoint("tokens.revoke_missing", "viewer", "delete", "/api/v1/tokens/9999/")

BODY_ENDPOINTS = [CREATE_TEAM, UPDATE_TEAM, ADD_MEMBER, CHANGE_ROLE, TEST_EVENT, CREATE_TOKEN]

PAST = (timezone.now() - timedelta(days=1)).isoformat()
LONG = "x" * 101

# Bodies that are wrong for every endpoint that reads one.
GENERIC = [
    (Raw('{"name": '), 400, "parse_error", set()),
    (Raw("{'name': 'single quotes'}"), 400, "parse_error", set()),
    (Raw("[1, 2]"), 400, "invalid", set()),
    (Raw('"just a string"'), 400, "invalid", set()),
    (Raw("name=x", "text/plain"), 415, "unsupported_media_type", set()),
    ({"colour": "red"}, 400, "invalid", {"colour"}),
]

SPECIFIC = [
    # teams.create
    Case(CREATE_TEAM, {}, 400, "invalid", {"name"}),
    Case(CREATE_TEAM, {"name": ""}, 400, "invalid", {"name"}),
    Case(CREATE_TEAM, {"name": "   "}, 400, "invalid", {"name"}),
    Case(CREATE_TEAM, {"name": LONG}, 400, "invalid", {"name"}),
    Case(CREATE_TEAM, {"name": ["Ops"]}, 400, "invalid", {"name"}),
    Case(CREATE_TEAM, {"name": "!!!"}, 400, "invalid", {"name"}),
    Case(CREATE_TEAM, {"name": "Ops", "description": None}, 400, "invalid", {"description"}),
    Case(CREATE_TEAM, {"name": "Ops", "slug": "ops"}, 400, "invalid", {"slug"}),
    Case(CREATE_TEAM, {"name": "Payments"}, 409, "duplicate", {"name"}),
    # teams.update
    Case(UPDATE_TEAM, {"name": ""}, 400, "invalid", {"name"}),
    Case(UPDATE_TEAM, {"name": {"en": "Pay"}}, 400, "invalid", {"name"}),
    Case(UPDATE_TEAM, {"description": None}, 400, "invalid", {"description"}),
    Case(UPDATE_TEAM, {"id": 42}, 400, "invalid", {"id"}),
    Case(UPDATE_TEAM, {"name": "Search"}, 409, "duplicate", {"name"}),
    # members.add
    Case(ADD_MEMBER, {}, 400, "invalid", {"username", "user_id"}),
    Case(ADD_MEMBER, {"role": "viewer"}, 400, "invalid", {"username", "user_id"}),
    Case(ADD_MEMBER, {"username": ""}, 400, "invalid", {"username"}),
    Case(ADD_MEMBER, {"username": "ghost"}, 400, "invalid", {"username"}),
    Case(ADD_MEMBER, {"user_id": 999999}, 400, "invalid", {"user_id"}),
    Case(ADD_MEMBER, {"user_id": "abc"}, 400, "invalid", {"user_id"}),
    Case(ADD_MEMBER, {"user_id": -3}, 400, "invalid", {"user_id"}),
    Case(ADD_MEMBER, {"username": "newcomer", "role": "owner"}, 400, "invalid", {"role"}),
    Case(ADD_MEMBER, {"username": "newcomer", "role": ["viewer"]}, 400, "invalid", {"role"}),
    Case(ADD_MEMBER, {"username": "newcomer", "role": None}, 400, "invalid", {"role"}),
    Case(ADD_MEMBER, {"username": "viewer"}, 409, "duplicate", {"username"}),
    Case(ADD_MEMBER, {"username": "gone"}, 400, "invalid", {"username"}),
    # members.change_role / demote
    Case(CHANGE_ROLE, {}, 400, "invalid", {"role"}),
    Case(CHANGE_ROLE, {"role": "owner"}, 400, "invalid", {"role"}),
    Case(CHANGE_ROLE, {"role": None}, 400, "invalid", {"role"}),
    Case(CHANGE_ROLE, {"role": 2}, 400, "invalid", {"role"}),
    Case(CHANGE_ROLE, {"role": "viewer", "user": 1}, 400, "invalid", {"user"}),
    Case(DEMOTE_MANAGER, {"role": "viewer"}, 400, "last_manager", {"role"}),
    # members.remove (no body: the target is what is wrong)
    Case(REMOVE_MANAGER, None, 400, "last_manager", {"role"}),
    Case(REMOVE_FOREIGN, None, 404, "not_found"),
    Case(REMOVE_MISSING, None, 404, "not_found"),
    # teams.test_event takes no input
    Case(TEST_EVENT, {"message": "hello"}, 400, "invalid", {"message"}),
    Case(TEST_EVENT, Raw("[]"), 400, "invalid"),
    Case(TEST_EVENT, Raw("false"), 400, "invalid"),
    # tokens.create
    Case(CREATE_TOKEN, {}, 400, "invalid", {"name"}),
    Case(CREATE_TOKEN, {"name": "  "}, 400, "invalid", {"name"}),
    Case(CREATE_TOKEN, {"name": LONG}, 400, "invalid", {"name"}),
    Case(CREATE_TOKEN, {"name": ["ci"]}, 400, "invalid", {"name"}),
    Case(CREATE_TOKEN, {"name": "ci", "expires_at": PAST}, 400, "invalid", {"expires_at"}),
    Case(
        CREATE_TOKEN, {"name": "ci", "expires_at": "next tuesday"}, 400, "invalid", {"expires_at"}
    ),
    Case(CREATE_TOKEN, {"name": "ci", "expires_at": 12345}, 400, "invalid", {"expires_at"}),
    Case(CREATE_TOKEN, {"name": "ci", "token": "tcs_chosen"}, 400, "invalid", {"token"}),
    Case(CREATE_TOKEN, {"name": "ci", "revoked_at": PAST}, 400, "invalid", {"revoked_at"}),
    # tokens.revoke
    Case(REVOKE_OTHERS_TOKEN, None, 404, "not_found"),
    Case(REVOKE_MISSING_TOKEN, None, 404, "not_found"),
]

CASES = [
    Case(endpoint, body, status, code, fields)
    for endpoint in BODY_ENDPOINTS
    for body, status, code, fields in GENERIC
] + SPECIFIC


@pytest.fixture
def targets(crew: Any) -> dict[str, int]:
    """Ids the endpoint URLs point at, plus the people the bodies name."""
    make_user("newcomer")
    make_user("gone", is_active=False)
    token, _ = services.issue_token(crew.manager, "managers-token")
    return {
        "team": crew.team.pk,
        "responder": Membership.objects.get(team=crew.team, user=crew.responder).pk,
        "manager": Membership.objects.get(team=crew.team, user=crew.manager).pk,
        "foreign": Membership.objects.get(team=crew.other_team, user=crew.outsider).pk,
        "token": token.pk,
    }


def send(client: Any, method: str, url: str, body: Any) -> Any:
    if body is None:
        return getattr(client, method)(url)
    if isinstance(body, Raw):
        return getattr(client, method)(url, body.text, content_type=body.content_type)
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_the_error_shape_and_changes_nothing(
    crew: Any, api: Any, targets: dict[str, int], case: Case
) -> None:
    client = api(crew.by_role(case.endpoint.role))
    before = db_state()

    response = send(client, case.endpoint.method, case.endpoint.url.format(**targets), case.body)

    assert_error(response, case.status, case.code, case.fields)
    assert db_state() == before


def test_every_write_endpoint_is_exercised(targets: dict[str, int]) -> None:
    # A new write endpoint must come with its bad inputs above.
    writes = set()
    for pattern in urls.urlpatterns:
        view = pattern.callback
        methods = view.actions if getattr(view, "actions", None) else vars(view.cls)
        writes |= {(pattern.name, m) for m in ("post", "put", "patch", "delete") if m in methods}
    covered = {
        (resolve(case.endpoint.url.format(**targets)).url_name, case.endpoint.method)
        for case in CASES
    }

    assert writes <= covered, writes - covered


# --- the shape of non-input errors --------------------------------------------------------------


def test_unauthenticated_is_401_with_a_challenge(db: None, api: Any) -> None:
    response = api().post("/api/v1/tokens/", {"name": "x"}, format="json")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_forbidden_is_403(crew: Any, api: Any) -> None:
    response = api(crew.viewer).patch(
        f"/api/v1/teams/{crew.team.pk}/", {"name": "x"}, format="json"
    )

    assert_error(response, 403, "permission_denied")


def test_unknown_object_is_404(crew: Any, api: Any) -> None:
    assert_error(api(crew.viewer).get("/api/v1/events/123456/"), 404, "not_found")


def test_unknown_api_url_is_a_json_404(crew: Any, api: Any) -> None:
    assert_error(api(crew.viewer).get("/api/v1/incidents-that-do-not-exist/"), 404, "not_found")


def test_wrong_method_is_405(crew: Any, api: Any) -> None:
    response = api(crew.viewer).delete("/api/v1/me/")

    assert_error(response, 405, "method_not_allowed")


@pytest.mark.usefixtures("fresh_throttles")
def test_anonymous_throttling_is_429_with_retry_after(
    db: None, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DocsThrottle, "rate", "2/min", raising=False)
    client = api()

    statuses = [client.get("/api/v1/schema/").status_code for _ in range(2)]
    response = client.get("/api/v1/schema/")

    assert statuses == [200, 200]
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/events/?after=soon",
        "/api/v1/events/?team=999999",
        "/api/v1/events/?kind_prefx=team.",
        "/api/v1/teams/?page=first",
        "/api/v1/tokens/?page_size=-1",
        "/api/v1/teams/{team}/members/?page_size=all",
    ],
)
def test_bad_query_parameters_are_400(crew: Any, api: Any, url: str) -> None:
    assert_error(api(crew.admin).get(url.format(team=crew.team.pk)), 400, "invalid")
