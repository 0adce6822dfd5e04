"""/api/v1/me/, /api/v1/teams/ and /api/v1/teams/{id}/test-event/."""

from __future__ import annotations

from typing import Any

import pytest
from django_q.brokers import get_broker

from tests.conftest import make_user
from tests.live import wait_for
from tests.tocsin.api_support import assert_error, bearer, db_state
from tocsin import services
from tocsin.models import Event, Membership, Role, Team


def team_url(team: Team) -> str:
    return f"/api/v1/teams/{team.pk}/"


# --- /me/ ---------------------------------------------------------------------------------------


def test_me_shows_the_user_and_their_teams_with_roles(crew: Any, api: Any) -> None:
    Membership.objects.create(team=crew.other_team, user=crew.responder, role=Role.VIEWER)

    body = api(crew.responder).get("/api/v1/me/").json()

    assert body["username"] == "responder"
    assert body["is_superuser"] is False
    assert body["token"] is None
    assert body["teams"] == [
        {"id": crew.team.pk, "name": "Payments", "slug": "payments", "role": "responder"},
        {"id": crew.other_team.pk, "name": "Search", "slug": "search", "role": "viewer"},
    ]


def test_me_names_the_token_in_use(crew: Any, api: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "laptop")

    body = bearer(api(), raw).get("/api/v1/me/").json()

    assert body["username"] == "viewer"
    assert body["token"] == {
        "id": token.pk,
        "name": "laptop",
        "prefix": token.prefix,
        "expires_at": None,
    }


def test_me_requires_authentication(db: None, api: Any) -> None:
    response = api().get("/api/v1/me/")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# --- list ---------------------------------------------------------------------------------------


def test_list_shows_only_teams_the_user_belongs_to(crew: Any, api: Any) -> None:
    body = api(crew.viewer).get("/api/v1/teams/").json()

    assert body["count"] == 1
    [team] = body["results"]
    assert team == {
        "id": crew.team.pk,
        "name": "Payments",
        "slug": "payments",
        "description": "",
        "created_at": team["created_at"],
        "role": "viewer",
    }


def test_user_without_teams_gets_an_empty_list(db: None, api: Any) -> None:
    loner = make_user("loner")

    body = api(loner).get("/api/v1/teams/").json()

    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_superuser_lists_every_team_without_a_role(crew: Any, api: Any) -> None:
    body = api(crew.admin).get("/api/v1/teams/").json()

    assert [(t["name"], t["role"]) for t in body["results"]] == [
        ("Payments", None),
        ("Search", None),
    ]


def test_team_list_query_count_does_not_grow_with_teams(
    crew: Any, api: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(30):
        team = Team.objects.create(name=f"Team {n:02}")
        Membership.objects.create(team=team, user=crew.viewer, role=Role.MANAGER)
    client = api(crew.viewer)

    with django_assert_max_num_queries(5):  # session, user, roles, count, page
        body = client.get("/api/v1/teams/?page_size=100").json()

    assert body["count"] == 31
    assert {t["role"] for t in body["results"]} == {"viewer", "manager"}


def test_team_list_pages(crew: Any, api: Any) -> None:
    for n in range(3):
        Membership.objects.create(
            team=Team.objects.create(name=f"Extra {n}"), user=crew.viewer, role=Role.VIEWER
        )
    client = api(crew.viewer)

    first = client.get("/api/v1/teams/?page_size=3").json()
    second = client.get(first["next"]).json()

    assert first["count"] == 4
    assert len(first["results"]) == 3
    assert [t["name"] for t in second["results"]] == ["Payments"]
    assert second["next"] is None


# --- create -------------------------------------------------------------------------------------


def test_superuser_creates_a_team_and_the_event_records_it(crew: Any, api: Any) -> None:
    response = api(crew.admin).post(
        "/api/v1/teams/", {"name": "Data Platform", "description": "pipelines"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    team = Team.objects.get(pk=body["id"])
    assert (team.name, team.slug, team.description) == (
        "Data Platform",
        "data-platform",
        "pipelines",
    )
    assert body["slug"] == "data-platform"
    assert body["role"] is None
    event = Event.objects.get(kind="team.created", team=team)
    assert (event.actor, event.subject_id) == (crew.admin, str(team.pk))


def test_manager_cannot_create_teams(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.manager).post("/api/v1/teams/", {"name": "Shadow"}, format="json")

    error = assert_error(response, 403, "permission_denied")
    assert "administrators" in error["message"]
    assert db_state() == before


def test_duplicate_team_name_is_a_conflict(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.admin).post("/api/v1/teams/", {"name": "Payments"}, format="json")

    error = assert_error(response, 409, "duplicate", {"name"})
    assert "already" in error["message"]
    assert db_state() == before


def test_name_that_only_differs_in_case_is_a_conflict(crew: Any, api: Any) -> None:
    # The name is unique as written, but its slug ("payments") is taken.
    before = db_state()

    response = api(crew.admin).post("/api/v1/teams/", {"name": "PAYMENTS"}, format="json")

    assert_error(response, 409, "duplicate", {"name"})
    assert db_state() == before


def test_team_name_needs_a_letter_or_digit(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.admin).post("/api/v1/teams/", {"name": "!!!"}, format="json")

    error = assert_error(response, 400, "invalid", {"name"})
    assert error["fields"]["name"] == ["needs at least one letter or digit"]
    assert db_state() == before


# --- retrieve -----------------------------------------------------------------------------------


def test_member_sees_the_team(crew: Any, api: Any) -> None:
    body = api(crew.responder).get(team_url(crew.team)).json()

    assert (body["id"], body["name"], body["role"]) == (crew.team.pk, "Payments", "responder")


def test_outsider_gets_404_exactly_like_a_missing_team(crew: Any, api: Any) -> None:
    client = api(crew.outsider)

    hidden = client.get(team_url(crew.team))
    missing = client.get("/api/v1/teams/999999/")

    assert assert_error(hidden, 404, "not_found") == assert_error(missing, 404, "not_found")


def test_non_numeric_team_id_is_a_json_404(crew: Any, api: Any) -> None:
    assert_error(api(crew.viewer).get("/api/v1/teams/payments/"), 404, "not_found")


# --- update -------------------------------------------------------------------------------------


def test_manager_renames_the_team_and_the_slug_stays(crew: Any, api: Any) -> None:
    response = api(crew.manager).patch(
        team_url(crew.team), {"name": "Payments EU", "description": "cards"}, format="json"
    )

    assert response.status_code == 200, response.content
    crew.team.refresh_from_db()
    assert (crew.team.name, crew.team.slug, crew.team.description) == (
        "Payments EU",
        "payments",  # page URLs and API filters keep working
        "cards",
    )
    assert response.json()["name"] == "Payments EU"
    event = Event.objects.get(kind="team.updated")
    assert event.actor == crew.manager
    assert event.payload["changes"] == {
        "name": ["Payments", "Payments EU"],
        "description": ["", "cards"],
    }


def test_patch_with_unchanged_values_records_nothing(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.manager).patch(team_url(crew.team), {"name": "Payments"}, format="json")

    assert response.status_code == 200
    assert db_state() == before


def test_responder_cannot_rename_the_team(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.responder).patch(team_url(crew.team), {"name": "Mine"}, format="json")

    error = assert_error(response, 403, "permission_denied")
    assert "manager" in error["message"]
    assert db_state() == before


def test_manager_of_another_team_cannot_see_or_rename_this_one(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.outsider).patch(team_url(crew.team), {"name": "Mine"}, format="json")

    assert_error(response, 404, "not_found")
    assert db_state() == before


def test_renaming_to_another_teams_name_is_a_conflict(crew: Any, api: Any) -> None:
    Membership.objects.create(team=crew.other_team, user=crew.manager, role=Role.VIEWER)
    before = db_state()

    response = api(crew.manager).patch(team_url(crew.team), {"name": "Search"}, format="json")

    assert_error(response, 409, "duplicate", {"name"})
    assert db_state() == before


def test_slug_cannot_be_patched(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.manager).patch(team_url(crew.team), {"slug": "pay"}, format="json")

    error = assert_error(response, 400, "invalid", {"slug"})
    assert "read-only" in error["fields"]["slug"][0]
    assert db_state() == before


def test_teams_cannot_be_deleted_even_by_a_superuser(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.admin).delete(team_url(crew.team))

    assert_error(response, 405, "method_not_allowed")
    assert "PATCH" in response["Allow"] and "DELETE" not in response["Allow"]
    assert db_state() == before


def test_put_is_not_offered(crew: Any, api: Any) -> None:
    response = api(crew.manager).put(team_url(crew.team), {"name": "X"}, format="json")

    assert_error(response, 405, "method_not_allowed")


# --- test event ---------------------------------------------------------------------------------


def test_responder_queues_a_test_event(crew: Any, api: Any) -> None:
    queued = get_broker().queue_size()

    response = api(crew.responder).post(f"/api/v1/teams/{crew.team.pk}/test-event/")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["team"] == crew.team.pk
    assert body["kind"] == "team.test"
    assert isinstance(body["task_id"], str) and body["task_id"]
    assert get_broker().queue_size() == queued + 1


def test_viewer_cannot_send_a_test_event(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.viewer).post(f"/api/v1/teams/{crew.team.pk}/test-event/")

    error = assert_error(response, 403, "permission_denied")
    assert "responder" in error["message"]
    assert db_state() == before


def test_outsider_cannot_send_a_test_event(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.outsider).post(f"/api/v1/teams/{crew.team.pk}/test-event/")

    assert_error(response, 404, "not_found")
    assert db_state() == before


@pytest.mark.live
def test_a_worker_writes_the_requested_test_event(
    transactional_db: None, worker: Any, api: Any, settings: Any
) -> None:
    team = Team.objects.create(name="Live")
    responder = make_user("live-responder")
    Membership.objects.create(team=team, user=responder, role=Role.RESPONDER)

    response = api(responder).post(f"/api/v1/teams/{team.pk}/test-event/")
    assert response.status_code == 202, response.content

    event = wait_for(
        lambda: Event.objects.filter(kind="team.test", team=team).first(),
        60,
        "the worker to write the team.test event",
        worker,
    )
    assert event.actor == responder
    assert event.actor_label.startswith("worker ")
    listed = api(responder).get(f"/api/v1/events/?kind=team.test&team={team.slug}").json()
    assert [e["id"] for e in listed["results"]] == [event.pk]
