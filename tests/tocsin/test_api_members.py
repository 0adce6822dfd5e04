"""/api/v1/teams/{id}/members/: list, add, change role, remove — all through tocsin.services."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_user
from tests.tocsin.api_support import assert_error, db_state
from tocsin.models import Event, Membership, Role, Team


def members_url(team: Team) -> str:
    return f"/api/v1/teams/{team.pk}/members/"


def member_url(membership: Membership) -> str:
    return f"/api/v1/teams/{membership.team_id}/members/{membership.pk}/"


def membership_of(crew: Any, role: str) -> Membership:
    return Membership.objects.get(team=crew.team, user=crew.by_role(role))


# --- list and retrieve --------------------------------------------------------------------------


def test_viewer_lists_the_members(crew: Any, api: Any) -> None:
    body = api(crew.viewer).get(members_url(crew.team)).json()

    assert body["count"] == 3
    assert [(m["user"]["username"], m["role"]) for m in body["results"]] == [
        ("manager", "manager"),
        ("responder", "responder"),
        ("viewer", "viewer"),
    ]
    first = body["results"][0]
    assert set(first) == {"id", "team", "user", "role", "created_at"}
    assert first["team"] == crew.team.pk
    assert set(first["user"]) == {"id", "username", "name"}  # no e-mail addresses


def test_outsider_cannot_list_the_members(crew: Any, api: Any) -> None:
    assert_error(api(crew.outsider).get(members_url(crew.team)), 404, "not_found")


def test_member_list_query_count_does_not_grow_with_members(
    crew: Any, api: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(40):
        Membership.objects.create(team=crew.team, user=make_user(f"member{n:02}"))
    client = api(crew.viewer)

    with django_assert_max_num_queries(6):  # session, user, roles, team, count, page
        body = client.get(members_url(crew.team) + "?page_size=100").json()

    assert body["count"] == 43


def test_viewer_reads_one_membership(crew: Any, api: Any) -> None:
    membership = membership_of(crew, "responder")

    body = api(crew.viewer).get(member_url(membership)).json()

    assert body["id"] == membership.pk
    assert body["user"]["username"] == "responder"


def test_membership_of_another_team_is_not_found_through_this_team(crew: Any, api: Any) -> None:
    # The outsider's membership lives in other_team; asking for it under team must not work,
    # even for a manager of team.
    foreign = Membership.objects.get(team=crew.other_team, user=crew.outsider)
    before = db_state()
    client = api(crew.manager)

    url = f"/api/v1/teams/{crew.team.pk}/members/{foreign.pk}/"
    assert_error(client.get(url), 404, "not_found")
    assert_error(client.patch(url, {"role": "viewer"}, format="json"), 404, "not_found")
    assert_error(client.delete(url), 404, "not_found")
    assert db_state() == before


# --- add ----------------------------------------------------------------------------------------


def test_manager_adds_a_member_by_username_as_viewer_by_default(crew: Any, api: Any) -> None:
    newcomer = make_user("newcomer")

    response = api(crew.manager).post(
        members_url(crew.team), {"username": "newcomer"}, format="json"
    )

    assert response.status_code == 201, response.content
    membership = Membership.objects.get(team=crew.team, user=newcomer)
    assert membership.role == Role.VIEWER
    assert response.json()["id"] == membership.pk
    assert response.json()["user"]["username"] == "newcomer"
    event = Event.objects.get(kind="team.member_added")
    assert event.actor == crew.manager
    assert event.payload == {"user_id": newcomer.pk, "username": "newcomer", "role": "viewer"}


def test_manager_adds_a_member_by_user_id_with_a_role(crew: Any, api: Any) -> None:
    newcomer = make_user("newcomer")

    response = api(crew.manager).post(
        members_url(crew.team), {"user_id": newcomer.pk, "role": "responder"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert Membership.objects.get(team=crew.team, user=newcomer).role == Role.RESPONDER


def test_new_member_can_see_the_team_at_once(crew: Any, api: Any) -> None:
    newcomer = make_user("newcomer")
    newcomer_client = api(newcomer)
    assert_error(newcomer_client.get(f"/api/v1/teams/{crew.team.pk}/"), 404)

    api(crew.manager).post(members_url(crew.team), {"username": "newcomer"}, format="json")

    assert newcomer_client.get(f"/api/v1/teams/{crew.team.pk}/").status_code == 200


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_non_managers_cannot_add_members(crew: Any, api: Any, role: str) -> None:
    make_user("newcomer")
    before = db_state()

    response = api(crew.by_role(role)).post(
        members_url(crew.team), {"username": "newcomer", "role": "manager"}, format="json"
    )

    error = assert_error(response, 403, "permission_denied")
    assert "manager" in error["message"]
    assert db_state() == before


def test_adding_an_existing_member_is_a_conflict_on_the_field_sent(crew: Any, api: Any) -> None:
    before = db_state()
    client = api(crew.manager)

    by_name = client.post(members_url(crew.team), {"username": "viewer"}, format="json")
    by_id = client.post(members_url(crew.team), {"user_id": crew.viewer.pk}, format="json")

    assert "already a member" in assert_error(by_name, 409, "duplicate", {"username"})["message"]
    assert_error(by_id, 409, "duplicate", {"user_id"})
    assert db_state() == before


def test_deactivated_users_cannot_be_added(crew: Any, api: Any) -> None:
    make_user("gone", is_active=False)
    before = db_state()

    response = api(crew.manager).post(members_url(crew.team), {"username": "gone"}, format="json")

    error = assert_error(response, 400, "invalid", {"username"})
    assert "deactivated" in error["message"]
    assert db_state() == before


def test_unknown_username_is_refused(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.manager).post(members_url(crew.team), {"username": "ghost"}, format="json")

    assert assert_error(response, 400, "invalid", {"username"})["fields"]["username"] == [
        "no user named 'ghost'"
    ]
    assert db_state() == before


# --- change role --------------------------------------------------------------------------------


def test_manager_promotes_a_responder(crew: Any, api: Any) -> None:
    membership = membership_of(crew, "responder")

    response = api(crew.manager).patch(member_url(membership), {"role": "manager"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["role"] == "manager"
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER
    event = Event.objects.get(kind="team.member_role_changed")
    assert event.payload["role"] == ["responder", "manager"]
    assert event.actor == crew.manager


def test_the_only_manager_cannot_step_down(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.manager).patch(
        member_url(membership_of(crew, "manager")), {"role": "viewer"}, format="json"
    )

    error = assert_error(response, 400, "last_manager", {"role"})
    assert "at least one manager" in error["message"]
    assert db_state() == before


def test_a_manager_may_step_down_once_another_manager_exists(crew: Any, api: Any) -> None:
    client = api(crew.manager)
    client.patch(member_url(membership_of(crew, "responder")), {"role": "manager"}, format="json")

    response = client.patch(
        member_url(membership_of(crew, "manager")), {"role": "viewer"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert membership_of(crew, "manager").role == Role.VIEWER
    # Roles are re-read: the former manager may no longer change roles.
    denied = client.patch(
        member_url(membership_of(crew, "viewer")), {"role": "responder"}, format="json"
    )
    assert_error(denied, 403, "permission_denied")


def test_responder_cannot_promote_themselves(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.responder).patch(
        member_url(membership_of(crew, "responder")), {"role": "manager"}, format="json"
    )

    assert_error(response, 403, "permission_denied")
    assert db_state() == before


def test_the_member_cannot_be_swapped_by_patch(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.manager).patch(
        member_url(membership_of(crew, "viewer")),
        {"role": "viewer", "user_id": crew.outsider.pk},
        format="json",
    )

    assert_error(response, 400, "invalid", {"user_id"})
    assert db_state() == before


# --- remove -------------------------------------------------------------------------------------


def test_manager_removes_a_member(crew: Any, api: Any) -> None:
    membership = membership_of(crew, "viewer")

    response = api(crew.manager).delete(member_url(membership))

    assert response.status_code == 204, response.content
    assert not Membership.objects.filter(pk=membership.pk).exists()
    event = Event.objects.get(kind="team.member_removed")
    assert event.payload == {"user_id": crew.viewer.pk, "username": "viewer"}
    # …and the removed viewer no longer sees the team.
    assert_error(api(crew.viewer).get(f"/api/v1/teams/{crew.team.pk}/"), 404)


def test_the_last_manager_cannot_be_removed(crew: Any, api: Any) -> None:
    before = db_state()

    response = api(crew.admin).delete(member_url(membership_of(crew, "manager")))

    assert_error(response, 400, "last_manager", {"role"})
    assert db_state() == before


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_non_managers_cannot_remove_members(crew: Any, api: Any, role: str) -> None:
    before = db_state()

    response = api(crew.by_role(role)).delete(member_url(membership_of(crew, "viewer")))

    assert_error(response, 403, "permission_denied")
    assert db_state() == before


def test_superuser_manages_members_of_any_team(crew: Any, api: Any) -> None:
    client = api(crew.admin)

    added = client.post(
        members_url(crew.other_team), {"username": "viewer", "role": "responder"}, format="json"
    )

    assert added.status_code == 201, added.content
    assert Membership.objects.get(team=crew.other_team, user=crew.viewer).role == Role.RESPONDER
