"""Who gets into the admin and what they see there, role by role.

Roles, not is_staff: none of the crew's users is staff. Managers enter and see only their teams;
viewers and responders get the admin login page; Django's own admins stay superuser-only.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD, make_user
from tocsin import services
from tocsin.admin_mixins import TeamListFilter
from tocsin.events import record
from tocsin.models import ApiToken, Event, Membership, Role, Team

ROLES = ("anonymous", "viewer", "responder", "manager", "outsider", "admin")
ADMIN_USERS = {"manager", "outsider", "admin"}
LOGIN = "login"  # redirected to the admin login page: not allowed into the admin at all
MISSING = "missing"  # redirected to the index with "does not exist": the row is out of scope


def client_for(crew: Any, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(crew.by_role(role))
    return client


def outcome(response: Any) -> int | str:
    if response.status_code == 302:
        if response["Location"].startswith(reverse("admin:login")):
            return LOGIN
        if response["Location"] == reverse("admin:index"):
            return MISSING
    return response.status_code


def pages(crew: Any) -> dict[str, str]:
    return {
        "index": reverse("admin:index"),
        "team list": reverse("admin:tocsin_team_changelist"),
        "own team": reverse("admin:tocsin_team_change", args=[crew.team.pk]),
        "other team": reverse("admin:tocsin_team_change", args=[crew.other_team.pk]),
        "team add": reverse("admin:tocsin_team_add"),
        "membership list": reverse("admin:tocsin_membership_changelist"),
        "membership add": reverse("admin:tocsin_membership_add"),
        "event list": reverse("admin:tocsin_event_changelist"),
        "token list": reverse("admin:tocsin_apitoken_changelist"),
        "heartbeat list": reverse("admin:tocsin_workerheartbeat_changelist"),
        "user list": reverse("admin:auth_user_changelist"),
        "group list": reverse("admin:auth_group_changelist"),
        "task schedule list": reverse("admin:django_q_schedule_changelist"),
    }


def expected(page: str, role: str) -> int | str:
    """ "Own team" is Payments: the manager's team, and not the outsider's (who manages Search)."""
    if role not in ADMIN_USERS:
        return LOGIN
    if role == "admin":
        return 200
    superuser_only = {"team add", "token list", "heartbeat list", "user list", "group list"}
    if page in superuser_only or page == "task schedule list":
        return 403
    if page == "own team":
        return 200 if role == "manager" else MISSING
    if page == "other team":
        return 200 if role == "outsider" else MISSING
    return 200


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_admin_pages(crew: Any, role: str) -> None:
    client = client_for(crew, role)
    got = {page: outcome(client.get(url)) for page, url in pages(crew).items()}
    assert got == {page: expected(page, role) for page in got}


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_members_without_a_manager_role_see_the_admin_refusal(crew: Any, role: str) -> None:
    response = client_for(crew, role).get(reverse("admin:index"), follow=True)
    assert response.status_code == 200
    assert b"not authorized to access this page" in response.content


@pytest.mark.parametrize(
    ("role", "visible"),
    [("manager", {"Payments"}), ("outsider", {"Search"}), ("admin", {"Payments", "Search"})],
)
def test_team_list_shows_only_the_teams_one_manages(crew: Any, role: str, visible: set) -> None:
    response = client_for(crew, role).get(reverse("admin:tocsin_team_changelist"))
    assert {team.name for team in response.context["cl"].result_list} == visible


@pytest.mark.parametrize(
    ("role", "teams"),
    [("manager", {"Payments"}), ("outsider", {"Search"}), ("admin", {"Payments", "Search"})],
)
def test_membership_list_and_its_team_filter_show_only_managed_teams(
    crew: Any, role: str, teams: set
) -> None:
    response = client_for(crew, role).get(reverse("admin:tocsin_membership_changelist"))
    cl = response.context["cl"]
    assert {m.team.name for m in cl.result_list} == teams
    expected_rows = Membership.objects.filter(team__name__in=teams).count()
    assert len(cl.result_list) == expected_rows
    (team_filter,) = [f for f in cl.filter_specs if isinstance(f, TeamListFilter)]
    assert {name for _pk, name in team_filter.lookup_choices} == teams


def test_team_filter_with_another_teams_id_shows_nothing_more(crew: Any) -> None:
    client = client_for(crew, "manager")
    url = reverse("admin:tocsin_membership_changelist")
    response = client.get(url, {"team": crew.other_team.pk})
    assert all(m.team_id == crew.team.pk for m in response.context["cl"].result_list)


def _events(crew: Any) -> dict[str, Event]:
    with transaction.atomic():
        return {
            "own": record("team.updated", team=crew.team, subject_label="own"),
            "other": record("team.updated", team=crew.other_team, subject_label="other"),
            "teamless": record("user.logged_out", team=None, subject_label="sign-in"),
        }


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("manager", {"own"}),
        ("outsider", {"other"}),
        ("admin", {"own", "other", "teamless"}),
    ],
)
def test_event_list_shows_managers_their_teams_events_only(
    crew: Any, role: str, visible: set
) -> None:
    client = client_for(crew, role)  # signing in records a team-less event too
    events = _events(crew)
    response = client.get(reverse("admin:tocsin_event_changelist"))
    shown = {event.pk for event in response.context["cl"].result_list}
    assert shown & {e.pk for e in events.values()} == {events[name].pk for name in visible}
    if role == "admin":
        assert shown == set(Event.objects.values_list("pk", flat=True))
    else:
        assert all(event.team_id is not None for event in response.context["cl"].result_list)


def test_superusers_can_filter_team_less_events(crew: Any) -> None:
    client = client_for(crew, "admin")
    events = _events(crew)
    response = client.get(reverse("admin:tocsin_event_changelist"), {"team": "none"})
    shown = response.context["cl"].result_list
    assert events["teamless"] in shown
    assert all(event.team_id is None for event in shown)


def test_event_detail_of_another_team_is_not_found_for_a_manager(crew: Any) -> None:
    events = _events(crew)
    client = client_for(crew, "manager")
    for name in ("other", "teamless"):
        url = reverse("admin:tocsin_event_change", args=[events[name].pk])
        assert outcome(client.get(url)) == MISSING
    own = reverse("admin:tocsin_event_change", args=[events["own"].pk])
    assert client.get(own).status_code == 200


def test_manager_index_lists_only_team_scoped_models(crew: Any) -> None:
    response = client_for(crew, "manager").get(reverse("admin:index"))
    models = {
        (app["app_label"], model["object_name"])
        for app in response.context["app_list"]
        for model in app["models"]
    }
    assert models == {
        ("tocsin", "Team"),
        ("tocsin", "Membership"),
        ("tocsin", "Event"),
        ("monitoring", "Service"),
        ("monitoring", "Integration"),
        ("monitoring", "Alert"),
        ("monitoring", "AlertRule"),
        ("monitoring", "ServiceLevelObjective"),
        ("monitoring", "MetricSeries"),
        ("monitoring", "Silence"),
        ("monitoring", "InhibitionRule"),
        ("monitoring", "MaintenanceWindow"),
        ("incidents", "EscalationPolicy"),
        ("incidents", "ServiceIncidentSettings"),
        ("incidents", "Incident"),
        ("incidents", "Schedule"),
        ("incidents", "NotificationChannel"),
        ("incidents", "Delivery"),
        ("incidents", "Postmortem"),
        ("incidents", "ResponseTarget"),
        ("incidents", "StatusPage"),
        ("incidents", "ComponentGroup"),
        ("incidents", "Component"),
        ("incidents", "PublicIncident"),
        ("incidents", "PublicUpdate"),
        ("incidents", "MaintenanceNotice"),
        ("incidents", "StatusSubscriber"),
        ("incidents", "StatusDelivery"),
        ("monitoring", "MonitoredDatabase"),
        ("backups", "BackupStorage"),
        ("backups", "BackupTarget"),
        ("backups", "BackupPlan"),
        ("backups", "BackupRun"),
        ("probes", "Heartbeat"),
        ("probes", "Ping"),
        ("probes", "Check"),
        ("probes", "Result"),
        ("probes", "Rollup"),
    }


def test_manager_without_staff_flag_logs_in_through_the_admin_form(crew: Any) -> None:
    assert not crew.manager.is_staff
    response = Client().post(
        reverse("admin:login"),
        {"username": "manager", "password": PASSWORD, "next": reverse("admin:index")},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_members_without_a_manager_role_cannot_log_in_to_the_admin(crew: Any, role: str) -> None:
    client = Client()
    response = client.post(reverse("admin:login"), {"username": role, "password": PASSWORD})
    assert response.status_code == 200
    assert b"team manager" in response.content
    assert "_auth_user_id" not in client.session


def test_deactivated_manager_cannot_log_in_to_the_admin(crew: Any) -> None:
    crew.manager.is_active = False
    crew.manager.save()
    client = Client()
    client.post(reverse("admin:login"), {"username": "manager", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


# -- writes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "team_key", "allowed"),
    [
        ("viewer", "team", False),
        ("responder", "team", False),
        ("manager", "team", True),
        ("manager", "other_team", False),
        ("outsider", "team", False),
        ("outsider", "other_team", True),
        ("admin", "team", True),
        ("admin", "other_team", True),
    ],
)
def test_adding_a_membership_needs_the_manager_role_in_that_team(
    crew: Any, role: str, team_key: str, allowed: bool
) -> None:
    newbie = make_user("newbie")
    team = getattr(crew, team_key)
    response = client_for(crew, role).post(
        reverse("admin:tocsin_membership_add"),
        {"team": team.pk, "user": newbie.pk, "role": Role.RESPONDER},
    )
    created = Membership.objects.filter(team=team, user=newbie).exists()
    assert created is allowed
    assert Event.objects.filter(kind="team.member_added").exists() is allowed
    if allowed:
        assert response.status_code == 302
    elif role in ADMIN_USERS:
        assert response.status_code == 200  # the form, with the team refused
        assert response.context["adminform"].form.errors["team"]
    else:
        assert outcome(response) == LOGIN


def test_manager_cannot_rename_another_team(crew: Any) -> None:
    url = reverse("admin:tocsin_team_change", args=[crew.other_team.pk])
    response = client_for(crew, "manager").post(url, {"name": "Hijacked", "description": ""})
    assert outcome(response) == MISSING
    crew.other_team.refresh_from_db()
    assert crew.other_team.name == "Search"
    assert not Event.objects.filter(kind__startswith="team.").exists()


@pytest.mark.parametrize("role", ["anonymous", "viewer", "responder"])
def test_non_managers_cannot_rename_the_team(crew: Any, role: str) -> None:
    url = reverse("admin:tocsin_team_change", args=[crew.team.pk])
    response = client_for(crew, role).post(url, {"name": "Hijacked", "description": ""})
    assert outcome(response) == LOGIN
    crew.team.refresh_from_db()
    assert crew.team.name == "Payments"


def test_manager_cannot_create_or_delete_teams(crew: Any) -> None:
    client = client_for(crew, "manager")
    response = client.post(reverse("admin:tocsin_team_add"), {"name": "New", "description": ""})
    assert response.status_code == 403
    delete = reverse("admin:tocsin_team_delete", args=[crew.team.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    response = client.post(
        reverse("admin:tocsin_team_changelist"),
        {"action": "delete_selected", "_selected_action": [crew.team.pk], "post": "yes"},
    )
    assert sorted(Team.objects.values_list("name", flat=True)) == ["Payments", "Search"]
    assert not Event.objects.filter(kind__startswith="team.").exists()


def test_outsider_cannot_change_or_remove_memberships_of_another_team(crew: Any) -> None:
    membership = Membership.objects.get(team=crew.team, user=crew.viewer)
    client = client_for(crew, "outsider")
    change = reverse("admin:tocsin_membership_change", args=[membership.pk])
    assert outcome(client.post(change, {"role": Role.MANAGER})) == MISSING
    delete = reverse("admin:tocsin_membership_delete", args=[membership.pk])
    assert outcome(client.post(delete, {"post": "yes"})) == MISSING
    client.post(
        reverse("admin:tocsin_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
    )
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    assert not Event.objects.filter(kind__startswith="team.").exists()


def test_managers_cannot_revoke_tokens_or_touch_users(crew: Any) -> None:
    token, _raw = services.issue_token(crew.viewer, "laptop")
    client = client_for(crew, "manager")
    response = client.post(
        reverse("admin:tocsin_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    response = client.post(
        reverse("admin:auth_user_change", args=[crew.viewer.pk]),
        {"username": "viewer", "is_superuser": "on"},
    )
    assert response.status_code == 403
    crew.viewer.refresh_from_db()
    assert not crew.viewer.is_superuser
    assert ApiToken.objects.usable().count() == 1


# -- picking users -------------------------------------------------------------------------------
def _autocomplete(client: Client, term: str, model: str = "membership", field: str = "user"):
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": "tocsin", "model_name": model, "field_name": field, "term": term},
    )


def test_manager_finds_active_users_to_add_as_members(crew: Any) -> None:
    make_user("rosa")
    make_user("rolf", is_active=False)
    # Outside the manager's teams, only an exact username or address finds someone (#14).
    assert _autocomplete(client_for(crew, "manager"), "ro").json()["results"] == []
    response = _autocomplete(client_for(crew, "manager"), "rosa")
    assert response.status_code == 200
    assert {r["text"] for r in response.json()["results"]} == {"rosa"}
    assert _autocomplete(client_for(crew, "manager"), "rolf").json()["results"] == []


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_non_managers_cannot_search_users(crew: Any, role: str) -> None:
    response = _autocomplete(client_for(crew, role), "ro")
    assert outcome(response) == LOGIN


def test_user_search_is_only_open_for_member_picking(crew: Any) -> None:
    response = _autocomplete(client_for(crew, "manager"), "ad", model="event", field="actor")
    assert response.status_code == 403
