"""Who may do what through the API: every endpoint and action, for every kind of caller.

Callers: anonymous, each role in the team (viewer, responder, manager), the outsider (a
manager of another team) and a superuser. Refusals must change nothing; 404 (not 403) for
people outside the team, so the API never confirms that another team's objects exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction

from tests.conftest import make_user
from tests.tocsin.api_support import db_state
from tocsin import services
from tocsin.events import record
from tocsin.models import Membership

pytestmark = pytest.mark.usefixtures("fresh_throttles")

CALLERS = ["anonymous", "viewer", "responder", "manager", "outsider", "admin"]


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    url: str  # formatted with the ``targets`` fixture
    body: dict[str, Any] | None
    expected: dict[str, int]  # caller → status


def everyone(status: int, **exceptions: int) -> dict[str, int]:
    """``status`` for every authenticated caller unless named; anonymous always gets 401."""
    return {"anonymous": 401} | {c: status for c in CALLERS[1:]} | exceptions


ACTIONS = [
    Action("me", "get", "/api/v1/me/", None, everyone(200)),
    Action("teams.list", "get", "/api/v1/teams/", None, everyone(200)),
    Action("teams.create", "post", "/api/v1/teams/", {"name": "Ops"}, everyone(403, admin=201)),
    Action("teams.retrieve", "get", "/api/v1/teams/{team}/", None, everyone(200, outsider=404)),
    Action(
        "teams.update",
        "patch",
        "/api/v1/teams/{team}/",
        {"description": "cards"},
        everyone(403, manager=200, outsider=404, admin=200),
    ),
    Action("teams.delete", "delete", "/api/v1/teams/{team}/", None, everyone(405)),  # never offered
    Action(
        "teams.other_team",
        "get",
        "/api/v1/teams/{other_team}/",
        None,
        everyone(404, outsider=200, admin=200),
    ),
    Action(
        "members.list",
        "get",
        "/api/v1/teams/{team}/members/",
        None,
        everyone(200, outsider=404),
    ),
    Action(
        "members.add",
        "post",
        "/api/v1/teams/{team}/members/",
        {"username": "newcomer", "role": "viewer"},
        everyone(403, manager=201, outsider=404, admin=201),
    ),
    Action(
        "members.retrieve",
        "get",
        "/api/v1/teams/{team}/members/{responder_membership}/",
        None,
        everyone(200, outsider=404),
    ),
    Action(
        "members.change_role",
        "patch",
        "/api/v1/teams/{team}/members/{responder_membership}/",
        {"role": "viewer"},
        everyone(403, manager=200, outsider=404, admin=200),
    ),
    Action(
        "members.remove",
        "delete",
        "/api/v1/teams/{team}/members/{responder_membership}/",
        None,
        everyone(403, manager=204, outsider=404, admin=204),
    ),
    Action(
        "teams.test_event",
        "post",
        "/api/v1/teams/{team}/test-event/",
        None,
        everyone(202, viewer=403, outsider=404),
    ),
    Action("events.list", "get", "/api/v1/events/", None, everyone(200)),
    Action(
        "events.retrieve",
        "get",
        "/api/v1/events/{team_event}/",
        None,
        everyone(200, outsider=404),
    ),
    Action(
        "events.retrieve_other_team",
        "get",
        "/api/v1/events/{other_team_event}/",
        None,
        everyone(404, outsider=200, admin=200),
    ),
    Action(
        "events.filter_by_team",
        "get",
        "/api/v1/events/?team={team}",
        None,
        everyone(200, outsider=400),  # a team you cannot view is an unknown team
    ),
    Action("tokens.list", "get", "/api/v1/tokens/", None, everyone(200)),
    Action("tokens.create", "post", "/api/v1/tokens/", {"name": "ci"}, everyone(201)),
    Action(
        "tokens.retrieve_viewers",
        "get",
        "/api/v1/tokens/{viewer_token}/",
        None,
        everyone(404, viewer=200),
    ),
    Action(
        "tokens.revoke_viewers",
        "delete",
        "/api/v1/tokens/{viewer_token}/",
        None,
        everyone(404, viewer=204),
    ),
    Action("schema", "get", "/api/v1/schema/", None, everyone(200, anonymous=200)),
]

MATRIX = [(action, caller) for action in ACTIONS for caller in CALLERS]


@pytest.fixture
def targets(crew: Any) -> dict[str, int]:
    make_user("newcomer")
    token, _ = services.issue_token(crew.viewer, "viewers-laptop")
    with transaction.atomic():
        team_event = record("team.updated", team=crew.team)
        other_team_event = record("team.updated", team=crew.other_team)
    return {
        "team": crew.team.pk,
        "other_team": crew.other_team.pk,
        "responder_membership": Membership.objects.get(team=crew.team, user=crew.responder).pk,
        "viewer_token": token.pk,
        "team_event": team_event.pk,
        "other_team_event": other_team_event.pk,
    }


def test_the_matrix_covers_every_action_for_every_caller() -> None:
    assert all(set(action.expected) == set(CALLERS) for action in ACTIONS)


@pytest.mark.parametrize(("action", "caller"), MATRIX, ids=[f"{a.name}-{c}" for a, c in MATRIX])
def test_role_matrix(
    crew: Any, api: Any, targets: dict[str, int], action: Action, caller: str
) -> None:
    client = api(None if caller == "anonymous" else crew.by_role(caller))
    url = action.url.format(**targets)
    before = db_state()

    if action.body is None:
        response = getattr(client, action.method)(url)
    else:
        response = getattr(client, action.method)(url, action.body, format="json")

    expected = action.expected[caller]
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert set(response.json()) == {"error"}
        assert db_state() == before, "a refused request changed the database"


@pytest.mark.parametrize(
    ("caller", "url", "allowed"),
    [
        ("viewer", "/api/v1/teams/", set()),
        ("admin", "/api/v1/teams/", {"POST"}),
        ("viewer", "/api/v1/teams/{team}/members/", set()),
        ("manager", "/api/v1/teams/{team}/members/", {"POST"}),
    ],
)
def test_options_tells_each_caller_what_they_may_do(
    crew: Any, api: Any, targets: dict[str, int], caller: str, url: str, allowed: set[str]
) -> None:
    response = api(crew.by_role(caller)).options(url.format(**targets))

    assert response.status_code == 200
    assert set(response.json().get("actions", {})) == allowed
