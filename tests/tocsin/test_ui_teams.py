"""Team pages: members and roles, the manager's forms, the test-event button."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user
from tocsin.models import Event, Membership, Role, Team


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def membership(team: Team, user: Any) -> Membership:
    return Membership.objects.get(team=team, user=user)


def roles(team: Team) -> dict[str, str]:
    return {m.user.username: m.role for m in team.memberships.select_related("user")}


@pytest.fixture
def team_url(crew) -> str:
    return reverse("team", args=[crew.team.slug])


# -- the page --------------------------------------------------------------------------------
def test_team_list_shows_only_the_users_teams(crew):
    html = logged_in(crew.viewer).get(reverse("teams")).content.decode()
    assert "Payments" in html
    assert "Search" not in html


def test_team_list_shows_every_team_to_a_superuser(crew):
    html = logged_in(crew.admin).get(reverse("teams")).content.decode()
    assert "Payments" in html and "Search" in html


def test_team_page_lists_members_with_their_roles(crew, team_url):
    html = logged_in(crew.viewer).get(team_url).content.decode()
    for username, role in (
        ("viewer", "viewer"),
        ("responder", "responder"),
        ("manager", "manager"),
    ):
        row = re.search(rf'<tr id="member-\d+">\s*<td>\s*{username}\b.*?</tr>', html, re.S)
        assert row, username
        assert f'<span class="role role-{role}">{role}</span>' in row.group(0)
    assert "outsider" not in html


def test_team_page_is_404_for_non_members(crew, team_url):
    assert logged_in(crew.outsider).get(team_url).status_code == 404


def test_unknown_team_is_404(crew):
    assert logged_in(crew.admin).get(reverse("team", args=["nope"])).status_code == 404


def test_viewer_sees_no_forms_and_no_test_button(crew, team_url):
    html = logged_in(crew.viewer).get(team_url).content.decode()
    assert "Send test event" not in html
    assert "Add member" not in html
    assert "/members/" not in html
    assert "/edit/" not in html


def test_responder_sees_the_test_button_but_no_manager_forms(crew, team_url):
    html = logged_in(crew.responder).get(team_url).content.decode()
    assert "Send test event" in html
    assert "Add member" not in html


def test_manager_sees_the_manager_forms(crew, team_url):
    html = logged_in(crew.manager).get(team_url).content.decode()
    assert "Send test event" in html
    assert "Add member" in html
    assert 'action="/teams/payments/edit/"' in html
    assert html.count(">Remove</button>") == 3


def test_team_page_query_count_does_not_grow_with_members(
    crew, team_url, django_assert_max_num_queries
):
    for i in range(20):
        Membership.objects.create(team=crew.team, user=make_user(f"user{i}"), role=Role.VIEWER)
    client = logged_in(crew.manager)
    with django_assert_max_num_queries(6):
        response = client.get(team_url)
    assert response.status_code == 200


def test_post_endpoints_refuse_get(crew):
    client = logged_in(crew.manager)
    m = membership(crew.team, crew.viewer)
    for url in (
        reverse("team_update", args=["payments"]),
        reverse("member_add", args=["payments"]),
        reverse("member_role", args=["payments", m.pk]),
        reverse("member_remove", args=["payments", m.pk]),
        reverse("team_test_event", args=["payments"]),
    ):
        assert client.get(url).status_code == 405, url


# -- adding members --------------------------------------------------------------------------
def test_manager_adds_a_member_by_username(crew):
    newbie = make_user("newbie")
    client = logged_in(crew.manager)
    response = client.post(
        reverse("member_add", args=["payments"]), {"username": "newbie", "role": "responder"}
    )
    assert response.status_code == 302
    assert membership(crew.team, newbie).role == Role.RESPONDER
    assert Event.objects.filter(kind="team.member_added", team=crew.team).exists()
    page = client.get(response["Location"]).content.decode()
    assert "newbie joined Payments as responder" in page


def test_adding_an_unknown_username_shows_the_error_next_to_the_field(crew):
    before = roles(crew.team)
    response = logged_in(crew.manager).post(
        reverse("member_add", args=["payments"]), {"username": "ghost", "role": "viewer"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_username_error"><li>no user named &#x27;ghost&#x27;', html)
    assert 'value="ghost"' in html
    assert roles(crew.team) == before


def test_adding_an_existing_member_is_refused(crew):
    before = roles(crew.team)
    response = logged_in(crew.manager).post(
        reverse("member_add", args=["payments"]), {"username": "viewer", "role": "manager"}
    )
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert roles(crew.team) == before


def test_adding_a_deactivated_user_is_refused(crew):
    make_user("gone", is_active=False)
    response = logged_in(crew.manager).post(
        reverse("member_add", args=["payments"]), {"username": "gone", "role": "viewer"}
    )
    assert response.status_code == 400
    assert "deactivated" in response.content.decode()
    assert "gone" not in roles(crew.team)


def test_adding_with_an_unknown_role_is_refused(crew):
    make_user("newbie")
    response = logged_in(crew.manager).post(
        reverse("member_add", args=["payments"]), {"username": "newbie", "role": "owner"}
    )
    assert response.status_code == 400
    assert 'id="id_role_error"' in response.content.decode()
    assert "newbie" not in roles(crew.team)


# -- changing roles and removing -------------------------------------------------------------
def test_manager_changes_a_role(crew):
    m = membership(crew.team, crew.viewer)
    response = logged_in(crew.manager).post(
        reverse("member_role", args=["payments", m.pk]), {"role": "responder"}
    )
    assert response.status_code == 302
    m.refresh_from_db()
    assert m.role == Role.RESPONDER


def test_demoting_the_last_manager_is_refused_and_shown_on_the_row(crew):
    m = membership(crew.team, crew.manager)
    response = logged_in(crew.manager).post(
        reverse("member_role", args=["payments", m.pk]), {"role": "viewer"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    row = re.search(rf'<tr id="member-{m.pk}" class="row-invalid">.*?</tr>', html, re.S)
    assert row and "at least one manager" in row.group(0)
    m.refresh_from_db()
    assert m.role == Role.MANAGER


def test_changing_a_role_of_another_teams_member_is_404(crew):
    other = membership(crew.other_team, crew.outsider)
    response = logged_in(crew.manager).post(
        reverse("member_role", args=["payments", other.pk]), {"role": "viewer"}
    )
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.role == Role.MANAGER


def test_manager_removes_a_member(crew):
    m = membership(crew.team, crew.responder)
    response = logged_in(crew.manager).post(reverse("member_remove", args=["payments", m.pk]))
    assert response.status_code == 302
    assert "responder" not in roles(crew.team)
    assert Event.objects.filter(kind="team.member_removed", team=crew.team).exists()


def test_removing_the_last_manager_is_refused(crew):
    m = membership(crew.team, crew.manager)
    response = logged_in(crew.manager).post(reverse("member_remove", args=["payments", m.pk]))
    assert response.status_code == 400
    assert "at least one manager" in response.content.decode()
    assert roles(crew.team)["manager"] == Role.MANAGER


def test_a_manager_who_leaves_is_sent_to_the_team_list(crew):
    Membership.objects.filter(team=crew.team, user=crew.responder).update(role=Role.MANAGER)
    m = membership(crew.team, crew.manager)
    response = logged_in(crew.manager).post(reverse("member_remove", args=["payments", m.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("teams")


# -- team details ----------------------------------------------------------------------------
def test_manager_renames_and_describes_the_team_and_the_address_stays(crew):
    response = logged_in(crew.manager).post(
        reverse("team_update", args=["payments"]),
        {"name": "Payments & Billing", "description": "Card and invoice flows"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("team", args=["payments"])
    crew.team.refresh_from_db()
    assert crew.team.name == "Payments & Billing"
    assert crew.team.description == "Card and invoice flows"
    assert crew.team.slug == "payments"
    assert Event.objects.filter(kind="team.updated", team=crew.team).exists()


def test_a_manager_requires_a_second_factor_of_the_team_from_its_page(crew):
    client = logged_in(crew.manager)
    page = client.get(reverse("team", args=["payments"])).content.decode()
    assert (
        'name="require_two_factor"' in page
        and "checked" not in page.split('name="require_two_factor"')[1].split(">")[0]
    )
    response = client.post(
        reverse("team_update", args=["payments"]),
        {"name": "Payments", "description": "", "require_two_factor": "on"},
    )
    assert response.status_code == 302
    crew.team.refresh_from_db()
    assert crew.team.require_two_factor
    event = Event.objects.get(kind="team.updated", team=crew.team)
    assert event.payload["changes"]["require_two_factor"] == [False, True]
    # Members now have to enrol before using Tocsin (tocsin.two_factor.policy).
    viewer_page = logged_in(crew.viewer).get(reverse("teams"))
    assert viewer_page.status_code == 302 and "/two-factor/" in viewer_page["Location"]


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_managers_change_the_two_factor_rule(crew, role):
    response = logged_in(crew.by_role(role)).post(
        reverse("team_update", args=["payments"]),
        {"name": "Payments", "description": "", "require_two_factor": "on"},
    )
    assert response.status_code in (403, 404)
    crew.team.refresh_from_db()
    assert not crew.team.require_two_factor


def test_renaming_to_another_teams_name_is_refused(crew):
    response = logged_in(crew.manager).post(
        reverse("team_update", args=["payments"]), {"name": "search", "description": ""}
    )
    assert response.status_code == 400
    assert re.search(
        r'id="id_name_error"><li>another team already has this name', response.content.decode()
    )
    crew.team.refresh_from_db()
    assert crew.team.name == "Payments"


def test_renaming_to_a_blank_name_is_refused(crew):
    response = logged_in(crew.manager).post(
        reverse("team_update", args=["payments"]), {"name": "   ", "description": "x"}
    )
    assert response.status_code == 400
    crew.team.refresh_from_db()
    assert crew.team.name == "Payments"
    assert crew.team.description == ""


# -- test event ------------------------------------------------------------------------------
def test_responder_sends_a_test_event_and_is_told_to_watch_live(crew):
    client = logged_in(crew.responder)
    response = client.post(reverse("team_test_event", args=["payments"]))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "A worker will write a test event; watch Live." in page
