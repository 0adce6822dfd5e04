"""The admin as a caller of the services: every change leaves its event, every rule holds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.forms import BooleanField
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_user
from tocsin import services
from tocsin.events import record
from tocsin.models import Event, Membership, Role, Team, WorkerHeartbeat

LAST_MANAGER = "needs at least one manager"  # the admin capitalises messages


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def team_events(kind: str) -> Any:
    return Event.objects.filter(kind=kind)


def change_form_data(response: Any) -> dict[str, Any]:
    """The POST a browser would send for an untouched admin change page (forms and inlines)."""
    data: dict[str, Any] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        forms.extend(inline.formset.forms)
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field, BooleanField):
                if value:
                    data[form.add_prefix(name)] = "on"
            elif value is not None:
                data[form.add_prefix(name)] = value
    return data


def inline_prefix(data: dict[str, Any], membership: Membership) -> str:
    """The form prefix ("memberships-1") of a membership row in the team page."""
    for key, value in data.items():
        if key.endswith("-id") and str(value) == str(membership.pk):
            return key[: -len("-id")]
    raise AssertionError(f"no row for {membership}")


def team_page(client: Client, team: Team) -> tuple[str, dict[str, Any]]:
    url = reverse("admin:tocsin_team_change", args=[team.pk])
    response = client.get(url)
    assert response.status_code == 200
    return url, change_form_data(response)


def membership(crew: Any, user: Any) -> Membership:
    return Membership.objects.get(team=crew.team, user=user)


# -- memberships ---------------------------------------------------------------------------------
def test_editing_a_membership_role_records_an_event(crew: Any) -> None:
    row = membership(crew, crew.viewer)
    url = reverse("admin:tocsin_membership_change", args=[row.pk])
    response = client_for(crew.manager).post(url, {"role": Role.RESPONDER})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.role == Role.RESPONDER
    (event,) = team_events("team.member_role_changed")
    assert event.team_id == crew.team.pk
    assert event.actor_id == crew.manager.pk
    assert event.payload["role"] == [Role.VIEWER, Role.RESPONDER]
    assert event.payload["username"] == "viewer"


def test_changing_a_role_in_the_team_page_records_an_event(crew: Any) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data[inline_prefix(data, membership(crew, crew.responder)) + "-role"] = Role.VIEWER
    assert client.post(url, data).status_code == 302
    assert membership(crew, crew.responder).role == Role.VIEWER
    (event,) = team_events("team.member_role_changed")
    assert event.payload["role"] == [Role.RESPONDER, Role.VIEWER]
    assert not team_events("team.updated").exists()


def test_adding_a_member_in_the_team_page_records_an_event(crew: Any) -> None:
    newbie = make_user("newbie")
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data["memberships-2-0-user"] = newbie.pk
    data["memberships-2-0-role"] = Role.RESPONDER
    assert client.post(url, data).status_code == 302
    assert membership(crew, newbie).role == Role.RESPONDER
    (event,) = team_events("team.member_added")
    assert event.payload == {"user_id": newbie.pk, "username": "newbie", "role": "responder"}
    assert event.actor_id == crew.manager.pk


def test_adding_someone_who_is_already_a_member_shows_an_error(crew: Any) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data["memberships-2-0-user"] = crew.viewer.pk
    data["memberships-2-0-role"] = Role.MANAGER
    response = client.post(url, data)
    assert response.status_code == 200
    assert b"already exists" in response.content or b"already a member" in response.content
    assert membership(crew, crew.viewer).role == Role.VIEWER
    assert not team_events("team.member_added").exists()


def test_adding_a_deactivated_user_is_refused(crew: Any) -> None:
    gone = make_user("gone", is_active=False)
    url = reverse("admin:tocsin_membership_add")
    response = client_for(crew.manager).post(
        url, {"team": crew.team.pk, "user": gone.pk, "role": Role.VIEWER}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user"] == ["this user account is deactivated"]
    assert not Membership.objects.filter(user=gone).exists()


def test_removing_a_member_in_the_team_page_records_an_event(crew: Any) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data[inline_prefix(data, membership(crew, crew.viewer)) + "-DELETE"] = "on"
    assert client.post(url, data).status_code == 302
    assert not Membership.objects.filter(team=crew.team, user=crew.viewer).exists()
    (event,) = team_events("team.member_removed")
    assert event.payload == {"user_id": crew.viewer.pk, "username": "viewer"}


def test_promoting_and_demoting_in_one_save_hands_over_the_team(crew: Any) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data[inline_prefix(data, membership(crew, crew.manager)) + "-role"] = Role.VIEWER
    data[inline_prefix(data, membership(crew, crew.responder)) + "-role"] = Role.MANAGER
    assert client.post(url, data).status_code == 302
    assert membership(crew, crew.responder).role == Role.MANAGER
    assert membership(crew, crew.manager).role == Role.VIEWER
    assert team_events("team.member_role_changed").count() == 2


def test_demoting_the_last_manager_is_refused_with_a_visible_error(crew: Any) -> None:
    row = membership(crew, crew.manager)
    url = reverse("admin:tocsin_membership_change", args=[row.pk])
    response = client_for(crew.manager).post(url, {"role": Role.VIEWER})
    assert response.status_code == 200
    assert LAST_MANAGER in response.content.decode()
    assert response.context["adminform"].form.errors["role"]
    assert membership(crew, crew.manager).role == Role.MANAGER
    assert not team_events("team.member_role_changed").exists()


def test_removing_the_last_manager_in_the_team_page_is_refused_and_nothing_is_saved(
    crew: Any,
) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data["name"] = "Renamed"
    data[inline_prefix(data, membership(crew, crew.responder)) + "-role"] = Role.VIEWER
    data[inline_prefix(data, membership(crew, crew.manager)) + "-DELETE"] = "on"
    response = client.post(url, data)
    assert response.status_code == 200
    assert LAST_MANAGER in response.content.decode()
    # The whole save rolled back: the rename and the other row's change too.
    crew.team.refresh_from_db()
    assert crew.team.name == "Payments"
    assert membership(crew, crew.manager).role == Role.MANAGER
    assert membership(crew, crew.responder).role == Role.RESPONDER
    assert not Event.objects.filter(team=crew.team).exists()


def test_deleting_the_last_manager_membership_is_refused(crew: Any) -> None:
    row = membership(crew, crew.manager)
    client = client_for(crew.admin)
    url = reverse("admin:tocsin_membership_delete", args=[row.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert LAST_MANAGER in response.content.decode()
    assert Membership.objects.filter(pk=row.pk).exists()
    assert not team_events("team.member_removed").exists()


def test_bulk_removing_every_manager_is_refused_as_a_whole(crew: Any) -> None:
    services.change_role(membership(crew, crew.responder), Role.MANAGER)
    rows = Membership.objects.filter(team=crew.team, role=Role.MANAGER)
    client = client_for(crew.admin)
    response = client.post(
        reverse("admin:tocsin_membership_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [row.pk for row in rows],
            "post": "yes",
        },
        follow=True,
    )
    assert LAST_MANAGER in response.content.decode()
    assert b"Successfully deleted" not in response.content
    assert Membership.objects.filter(team=crew.team, role=Role.MANAGER).count() == 2
    assert not team_events("team.member_removed").exists()


def test_bulk_removing_members_records_one_event_each(crew: Any) -> None:
    rows = Membership.objects.filter(team=crew.team, user__in=[crew.viewer, crew.responder])
    client_for(crew.manager).post(
        reverse("admin:tocsin_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [r.pk for r in rows], "post": "yes"},
    )
    assert list(Membership.objects.filter(team=crew.team).values_list("user", flat=True)) == [
        crew.manager.pk
    ]
    assert team_events("team.member_removed").count() == 2


# -- teams -----------------------------------------------------------------------------------------
def test_renaming_the_team_records_an_event(crew: Any) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    data["name"] = "Payments & Billing"
    assert client.post(url, data).status_code == 302
    crew.team.refresh_from_db()
    assert crew.team.name == "Payments & Billing"
    (event,) = team_events("team.updated")
    assert event.payload == {"changes": {"name": ["Payments", "Payments & Billing"]}}
    assert event.actor_id == crew.manager.pk


def test_saving_an_unchanged_team_records_nothing(crew: Any) -> None:
    client = client_for(crew.manager)
    url, data = team_page(client, crew.team)
    assert client.post(url, data).status_code == 302
    assert not Event.objects.filter(team=crew.team).exists()


def test_superuser_creates_a_team_with_its_first_manager(crew: Any) -> None:
    client = client_for(crew.admin)
    response = client.get(reverse("admin:tocsin_team_add"))
    data = change_form_data(response)
    data.update(
        {
            "name": "Platform",
            "description": "Kubernetes and friends",
            "memberships-2-0-user": crew.viewer.pk,
            "memberships-2-0-role": Role.MANAGER,
        }
    )
    response = client.post(reverse("admin:tocsin_team_add"), data)
    assert response.status_code == 302
    team = Team.objects.get(name="Platform")
    assert team.slug == "platform"
    assert Membership.objects.get(team=team).user == crew.viewer
    kinds = list(Event.objects.filter(team=team).order_by("id").values_list("kind", flat=True))
    assert kinds == ["team.created", "team.member_added"]


def test_a_new_team_whose_slug_is_taken_gets_a_form_error(crew: Any) -> None:
    client = client_for(crew.admin)
    data = change_form_data(client.get(reverse("admin:tocsin_team_add")))
    data["name"] = "payments!"
    response = client.post(reverse("admin:tocsin_team_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"]
    assert Team.objects.count() == 2


def test_a_team_with_history_cannot_be_deleted(crew: Any) -> None:
    with transaction.atomic():
        record("team.updated", team=crew.team)
    client = client_for(crew.admin)
    url = reverse("admin:tocsin_team_delete", args=[crew.team.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert "1 recorded events" in response.content.decode()
    client.post(url, {"post": "yes"})
    assert Team.objects.filter(pk=crew.team.pk).exists()


def test_deleting_a_team_without_history_records_it(crew: Any) -> None:
    empty = Team.objects.create(name="Empty")
    client = client_for(crew.admin)
    url = reverse("admin:tocsin_team_delete", args=[empty.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Team.objects.filter(pk=empty.pk).exists()
    (event,) = team_events("team.deleted")
    assert (event.team_id, event.subject_label, event.actor_id) == (None, "Empty", crew.admin.pk)


# -- tokens ----------------------------------------------------------------------------------------
def test_revoke_action_revokes_and_records_an_event(crew: Any) -> None:
    token, _raw = services.issue_token(crew.viewer, "ci")
    kept, _raw = services.issue_token(crew.viewer, "laptop")
    response = client_for(crew.admin).post(
        reverse("admin:tocsin_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
        follow=True,
    )
    assert "Revoked 1 token" in response.content.decode()
    token.refresh_from_db()
    kept.refresh_from_db()
    assert token.revoked_at is not None
    assert kept.revoked_at is None
    (event,) = team_events("user.token_revoked")
    assert (event.subject_id, event.actor_id) == (str(token.pk), crew.admin.pk)


def test_token_pages_show_the_prefix_and_never_the_hash(crew: Any) -> None:
    token, raw = services.issue_token(crew.viewer, "ci")
    client = client_for(crew.admin)
    for url in (
        reverse("admin:tocsin_apitoken_changelist"),
        reverse("admin:tocsin_apitoken_change", args=[token.pk]),
    ):
        page = client.get(url).content.decode()
        assert token.prefix in page
        assert token.token_hash not in page
        assert raw not in page


def test_tokens_are_not_created_changed_or_deleted_in_the_admin(crew: Any) -> None:
    token, _raw = services.issue_token(crew.viewer, "ci")
    client = client_for(crew.admin)
    assert client.get(reverse("admin:tocsin_apitoken_add")).status_code == 403
    change = reverse("admin:tocsin_apitoken_change", args=[token.pk])
    assert client.post(change, {"name": "renamed"}).status_code == 403
    delete = reverse("admin:tocsin_apitoken_delete", args=[token.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    token.refresh_from_db()
    assert token.name == "ci"


# -- the event log ---------------------------------------------------------------------------------
@pytest.fixture
def event(crew: Any) -> Event:
    with transaction.atomic():
        return record("team.updated", team=crew.team, subject_label="hello", payload={"a": 1})


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_events_cannot_be_edited_or_deleted_even_by_a_superuser(
    crew: Any, event: Event, who: str
) -> None:
    client = client_for(crew.by_role(who))
    change = reverse("admin:tocsin_event_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200  # read-only view
    assert b'name="_save"' not in page.content
    assert client.post(change, {"kind": "forged", "subject_label": "x"}).status_code == 403
    delete = reverse("admin:tocsin_event_delete", args=[event.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:tocsin_event_add")).status_code == 403
    listing = client.get(reverse("admin:tocsin_event_changelist"))
    actions = listing.context["cl"].model_admin.get_actions(listing.wsgi_request)
    assert "delete_selected" not in actions
    client.post(
        reverse("admin:tocsin_event_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    stored = Event.objects.get(pk=event.pk)
    assert (stored.kind, stored.subject_label, stored.payload) == (
        "team.updated",
        "hello",
        {"a": 1},
    )


def test_event_page_shows_the_payload(crew: Any, event: Event) -> None:
    page = client_for(crew.admin).get(reverse("admin:tocsin_event_change", args=[event.pk]))
    assert "&quot;a&quot;: 1" in page.content.decode()


# -- worker heartbeats -----------------------------------------------------------------------------
def test_heartbeats_are_listed_with_their_age_for_superusers_only(crew: Any) -> None:
    WorkerHeartbeat.objects.create(
        worker="host-1", last_seen_at=timezone.now() - timedelta(seconds=90)
    )
    url = reverse("admin:tocsin_workerheartbeat_changelist")
    page = client_for(crew.admin).get(url).content.decode()
    assert "host-1" in page
    assert "90 s" in page or "91 s" in page
    assert client_for(crew.manager).get(url).status_code == 403


# -- branding --------------------------------------------------------------------------------------
def test_admin_is_branded_and_links_back_to_the_app(crew: Any) -> None:
    page = client_for(crew.manager).get(reverse("admin:index")).content.decode()
    assert "Tocsin administration" in page
    assert '<a href="/">View site</a>' in page
    assert "--header-bg: #1e293b" in page
    login = Client().get(reverse("admin:login")).content.decode()
    assert "Back to Tocsin" in login


# -- query counts ----------------------------------------------------------------------------------
@pytest.fixture
def many(crew: Any) -> Any:
    """Forty teams of five members, the manager in all of them, and a few hundred events."""
    users = [make_user(f"user{i}") for i in range(5)]
    teams = Team.objects.bulk_create(
        Team(name=f"Team {i:02}", slug=f"team-{i:02}") for i in range(40)
    )
    Membership.objects.bulk_create(
        [Membership(team=t, user=u, role=Role.VIEWER) for t in teams for u in users]
        + [Membership(team=t, user=crew.manager, role=Role.MANAGER) for t in teams]
    )
    with transaction.atomic():
        for i in range(300):
            record("team.updated", team=teams[i % 40], subject_label=f"event {i}", actor=crew.admin)
    return crew


@pytest.mark.parametrize("who", ["manager", "admin"])
@pytest.mark.parametrize(
    ("page", "rows", "max_queries"),
    [
        ("admin:tocsin_team_changelist", 41, 9),
        ("admin:tocsin_membership_changelist", 100, 10),
        ("admin:tocsin_event_changelist", 100, 12),
    ],
)
def test_changelist_queries_do_not_grow_with_rows(
    many: Any, django_assert_max_num_queries: Any, who: str, page: str, rows: int, max_queries: int
) -> None:
    client = client_for(many.by_role(who))
    with django_assert_max_num_queries(max_queries):
        response = client.get(reverse(page))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= rows


def test_team_page_queries_do_not_grow_with_members(
    many: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(30):
        services.add_member(many.team, make_user(f"extra{i}"), Role.VIEWER)
    client = client_for(many.manager)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("admin:tocsin_team_change", args=[many.team.pk]))
    assert response.status_code == 200
