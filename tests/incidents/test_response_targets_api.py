"""/api/v1/response-targets/: viewers read, managers write, everyone else is refused."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from incidents.models import ResponseTarget
from monitoring.models import Service
from tests.tocsin.api_support import assert_error
from tocsin.models import Event

URL = "/api/v1/response-targets/"

pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def target(crew):
    return ResponseTarget.objects.create(
        team=crew.team, priority="P1", ack_minutes=5, resolve_minutes=60
    )


@pytest.fixture
def elsewhere(crew):
    return ResponseTarget.objects.create(team=crew.other_team, priority="P1", ack_minutes=1)


def detail(target) -> str:
    return f"{URL}{target.pk}/"


@pytest.mark.parametrize("role", ["viewer", "responder", "manager"])
def test_members_list_their_teams_targets(api, crew, target, elsewhere, role):
    response = api(crew.by_role(role)).get(URL)
    assert response.status_code == 200
    assert [t["id"] for t in response.json()["results"]] == [target.pk]
    one = api(crew.by_role(role)).get(detail(target)).json()
    assert one["ack_minutes"] == 5 and one["service"] is None
    assert one["team"]["slug"] == crew.team.slug


def test_an_outsider_cannot_see_another_teams_target(api, crew, target):
    assert_error(api(crew.outsider).get(detail(target)), 404, "not_found")
    assert api(crew.outsider).get(URL).json()["results"] == []


def test_anonymous_gets_401(api, crew, target):
    assert_error(api().get(URL), 401)


def test_a_manager_creates_a_target_for_a_service(api, crew):
    service = Service.objects.create(team=crew.team, name="Ledger")
    response = api(crew.manager).post(
        URL,
        {"team": crew.team.slug, "service": service.pk, "priority": "P2", "ack_minutes": 10},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["service"] == {"id": service.pk, "name": "Ledger"}
    assert (body["ack_minutes"], body["resolve_minutes"]) == (10, None)
    assert Event.objects.filter(kind="response_target.created", actor=crew.manager).exists()


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_viewers_and_responders_cannot_write_targets(api, crew, target, role):
    client = api(crew.by_role(role))
    created = client.post(URL, {"team": crew.team.slug, "priority": "P2"}, format="json")
    assert_error(created, 403)
    assert_error(client.patch(detail(target), {"ack_minutes": 1}, format="json"), 403)
    assert_error(client.delete(detail(target)), 403)
    target.refresh_from_db()
    assert target.ack_minutes == 5
    assert ResponseTarget.objects.count() == 1
    assert not Event.objects.filter(kind__startswith="response_target.").exists()


def test_an_outsider_cannot_write_another_teams_targets(api, crew, target):
    client = api(crew.outsider)
    created = client.post(URL, {"team": crew.team.slug, "priority": "P2"}, format="json")
    assert_error(created, 400, "invalid", {"team"})
    assert_error(client.patch(detail(target), {"ack_minutes": 1}, format="json"), 404)
    assert_error(client.delete(detail(target)), 404)
    assert ResponseTarget.objects.filter(team=crew.team).count() == 1


def test_a_manager_changes_and_deletes_a_target(api, crew, target):
    client = api(crew.manager)
    response = client.patch(detail(target), {"ack_minutes": None}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["ack_minutes"] is None
    assert client.delete(detail(target)).status_code == 204
    assert not ResponseTarget.objects.exists()
    kinds = list(Event.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["response_target.updated", "response_target.deleted"]


def test_minutes_must_be_positive(api, crew, target):
    response = api(crew.manager).patch(detail(target), {"resolve_minutes": 0}, format="json")
    assert_error(response, 400, "invalid", {"resolve_minutes"})


def test_a_second_target_for_the_same_priority_is_a_409(api, crew, target):
    response = api(crew.manager).post(
        URL, {"team": crew.team.slug, "priority": "P1", "ack_minutes": 3}, format="json"
    )
    error = assert_error(response, 409, "duplicate")
    assert "already has a target" in error["message"]


def test_a_service_of_another_team_is_a_400_on_service(api, crew):
    search = Service.objects.create(team=crew.other_team, name="Search API")
    response = api(crew.admin).post(
        URL, {"team": crew.team.slug, "service": search.pk, "priority": "P1"}, format="json"
    )
    assert_error(response, 400, "invalid", {"service"})


def test_unknown_and_read_only_fields_are_refused(api, crew, target):
    response = api(crew.manager).patch(detail(target), {"priority": "P2"}, format="json")
    assert_error(response, 400, "invalid", {"priority"})


def test_the_list_filters_by_priority_and_refuses_unknown_filters(api, crew, target):
    ResponseTarget.objects.create(team=crew.team, priority="P3", ack_minutes=30)
    body = api(crew.viewer).get(URL, {"priority": "P3"}).json()
    assert [t["priority"] for t in body["results"]] == ["P3"]
    assert_error(api(crew.viewer).get(URL, {"prio": "P3"}), 400, "invalid", {"prio"})


# --- Admin -------------------------------------------------------------------------------------


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_adds_a_target_in_the_admin_through_the_service(crew):
    response = admin_client(crew.manager).post(
        reverse("admin:incidents_responsetarget_add"),
        {"team": crew.team.pk, "service": "", "priority": "P2", "ack_minutes": 7},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    target = ResponseTarget.objects.get()
    assert (target.team, target.priority, target.ack_minutes) == (crew.team, "P2", 7)
    assert Event.objects.filter(kind="response_target.created", actor=crew.manager).exists()


def test_the_admin_refuses_a_duplicate_and_a_zero(crew, target):
    response = admin_client(crew.manager).post(
        reverse("admin:incidents_responsetarget_add"),
        {"team": crew.team.pk, "service": "", "priority": "P1", "ack_minutes": 0},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "ack_minutes" in errors
    assert "The team already has a target for this priority." in str(errors)
    assert ResponseTarget.objects.count() == 1


def test_the_admin_refuses_another_teams_service(crew):
    search = Service.objects.create(team=crew.other_team, name="Search API")
    response = admin_client(crew.admin).post(
        reverse("admin:incidents_responsetarget_add"),
        {"team": crew.team.pk, "service": search.pk, "priority": "P1", "ack_minutes": 3},
    )
    assert response.status_code == 200
    assert "service" in response.context["adminform"].form.errors
    assert not ResponseTarget.objects.exists()


def test_a_manager_sees_only_their_teams_targets_in_the_admin(crew, target, elsewhere):
    response = admin_client(crew.manager).get(reverse("admin:incidents_responsetarget_changelist"))
    assert list(response.context["cl"].result_list) == [target]
    other = reverse("admin:incidents_responsetarget_change", args=[elsewhere.pk])
    assert admin_client(crew.manager).get(other).status_code == 302  # "does not exist"


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_viewers_and_responders_have_no_admin_for_targets(crew, target, role):
    response = admin_client(crew.by_role(role)).get(
        reverse("admin:incidents_responsetarget_changelist")
    )
    assert response.status_code in (302, 403)
