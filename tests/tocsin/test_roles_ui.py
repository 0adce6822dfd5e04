"""Who may do what in the web UI: one matrix, enforced on the server whatever the page shows.

Anonymous users are sent to log in; people outside the team get 404 (its existence is not
confirmed); members whose role is too low get 403. A refused POST changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user, team_test_event
from tocsin.models import ApiToken, Event, Membership, Team

PEOPLE = ["anonymous", "viewer", "responder", "manager", "outsider", "admin"]
LOGIN = "login"


def client_for(crew: Any, who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(crew.by_role(who))
    return client


def state(crew: Any) -> dict[str, Any]:
    """Everything a team action could change."""
    team = Team.objects.get(pk=crew.team.pk)
    return {
        "team": (team.name, team.slug, team.description),
        "members": sorted(
            Membership.objects.filter(team=crew.team).values_list("user__username", "role")
        ),
        "events": Event.objects.filter(team=crew.team).count(),
        "tokens": sorted(ApiToken.objects.values_list("pk", "revoked_at")),
    }


def assert_status(response: Any, expected: int | str) -> None:
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")
    else:
        assert response.status_code == expected, response.content[:500]


# -- viewing -----------------------------------------------------------------------------------
VIEW_TEAM = {
    "anonymous": LOGIN,
    "viewer": 200,
    "responder": 200,
    "manager": 200,
    "outsider": 404,
    "admin": 200,
}


@pytest.mark.parametrize("who", PEOPLE)
def test_view_team_page(crew, who):
    assert_status(client_for(crew, who).get(reverse("team", args=["payments"])), VIEW_TEAM[who])


@pytest.mark.parametrize("who", PEOPLE)
def test_live_page_team_filter(crew, who):
    response = client_for(crew, who).get(reverse("live") + "?team=payments")
    assert_status(response, VIEW_TEAM[who])


@pytest.mark.parametrize("who", PEOPLE)
def test_live_page_without_filter_shows_only_visible_events(crew, who):
    from django.db import transaction

    with transaction.atomic():
        payments = team_test_event(crew.team)
        search = team_test_event(crew.other_team)
    response = client_for(crew, who).get(reverse("live"))
    if who == "anonymous":
        assert_status(response, LOGIN)
        return
    html = response.content.decode()
    sees = {
        "payments": f'data-event-id="{payments.pk}"' in html,
        "search": f'data-event-id="{search.pk}"' in html,
    }
    expected = {
        "viewer": {"payments": True, "search": False},
        "responder": {"payments": True, "search": False},
        "manager": {"payments": True, "search": False},
        "outsider": {"payments": False, "search": True},
        "admin": {"payments": True, "search": True},
    }
    assert sees == expected[who]


# -- managing: a successful POST redirects (302 to the page), a refused one changes nothing ----
MANAGE = {
    "anonymous": LOGIN,
    "viewer": 403,
    "responder": 403,
    "manager": 302,
    "outsider": 404,
    "admin": 302,
}


def _allowed(expected: int | str) -> bool:
    return expected == 302


@pytest.mark.parametrize("who", PEOPLE)
def test_add_member(crew, who):
    make_user("newbie")
    before = state(crew)
    response = client_for(crew, who).post(
        reverse("member_add", args=["payments"]), {"username": "newbie", "role": "manager"}
    )
    if _allowed(MANAGE[who]):
        assert response.status_code == 302
        assert ("newbie", "manager") in state(crew)["members"]
    else:
        assert_status(response, MANAGE[who])
        assert state(crew) == before


@pytest.mark.parametrize("who", PEOPLE)
def test_change_role(crew, who):
    # The viewer tries to promote themselves: the classic escalation attempt.
    m = Membership.objects.get(team=crew.team, user=crew.viewer)
    before = state(crew)
    response = client_for(crew, who).post(
        reverse("member_role", args=["payments", m.pk]), {"role": "manager"}
    )
    if _allowed(MANAGE[who]):
        assert response.status_code == 302
        assert ("viewer", "manager") in state(crew)["members"]
    else:
        assert_status(response, MANAGE[who])
        assert state(crew) == before


@pytest.mark.parametrize("who", PEOPLE)
def test_remove_member(crew, who):
    m = Membership.objects.get(team=crew.team, user=crew.responder)
    before = state(crew)
    response = client_for(crew, who).post(reverse("member_remove", args=["payments", m.pk]))
    if _allowed(MANAGE[who]):
        assert response.status_code == 302
        assert "responder" not in dict(state(crew)["members"])
    else:
        assert_status(response, MANAGE[who])
        assert state(crew) == before


@pytest.mark.parametrize("who", PEOPLE)
def test_rename_team(crew, who):
    before = state(crew)
    response = client_for(crew, who).post(
        reverse("team_update", args=["payments"]), {"name": "Renamed", "description": "new"}
    )
    if _allowed(MANAGE[who]):
        assert response.status_code == 302
        assert state(crew)["team"] == ("Renamed", "payments", "new")
    else:
        assert_status(response, MANAGE[who])
        assert state(crew) == before


TEST_EVENT = {
    "anonymous": LOGIN,
    "viewer": 403,
    "responder": 302,
    "manager": 302,
    "outsider": 404,
    "admin": 302,
}


@pytest.mark.parametrize("who", PEOPLE)
def test_send_test_event(crew, who, queued_test_events):
    before = state(crew)
    response = client_for(crew, who).post(reverse("team_test_event", args=["payments"]))
    if _allowed(TEST_EVENT[who]):
        assert response.status_code == 302
        assert queued_test_events == [(crew.team.pk, crew.by_role(who).pk)]
    else:
        assert_status(response, TEST_EVENT[who])
        assert queued_test_events == []
        assert state(crew) == before


@pytest.fixture
def queued_test_events(monkeypatch) -> list[tuple[int, int]]:
    """Record test-event requests instead of queueing them (the broker is not under test)."""
    calls: list[tuple[int, int]] = []

    def fake(team: Team, *, actor: Any) -> str:
        calls.append((team.pk, actor.pk))
        return "task-id"

    monkeypatch.setattr("tocsin.services.request_test_event", fake)
    return calls


# -- tokens ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", PEOPLE)
def test_tokens_page(crew, who):
    response = client_for(crew, who).get(reverse("tokens"))
    assert_status(response, LOGIN if who == "anonymous" else 200)


@pytest.mark.parametrize("who", PEOPLE)
def test_create_token(crew, who):
    response = client_for(crew, who).post(reverse("tokens"), {"name": "ci", "expires_in": ""})
    if who == "anonymous":
        assert_status(response, LOGIN)
        assert not ApiToken.objects.exists()
    else:
        assert response.status_code == 200
        assert ApiToken.objects.get().user == crew.by_role(who)


@pytest.mark.parametrize("who", PEOPLE)
def test_revoke_the_viewers_token(crew, who):
    token, _ = ApiToken.issue(crew.viewer, "viewer-token")
    before = state(crew)
    response = client_for(crew, who).post(reverse("token_revoke", args=[token.pk]))
    if who == "viewer":
        assert response.status_code == 302
        token.refresh_from_db()
        assert token.revoked_at is not None
    else:
        # Only the owner: even a superuser revokes other people's tokens in the admin.
        assert_status(response, LOGIN if who == "anonymous" else 404)
        assert state(crew) == before
