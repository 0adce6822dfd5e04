"""Teams created from the teams page by staff, and no services in the built-in system team."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from monitoring import services as catalog
from monitoring.metrics import system_team
from monitoring.models import Service
from tests.conftest import make_user
from tocsin.models import Event, Membership, Role, Team
from tocsin.services import ServiceError


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_superuser_creates_a_team_with_a_first_manager(crew):
    response = client_for(crew.admin).post(
        reverse("team_create"),
        {"name": "Data Platform", "description": "ETL", "manager": "viewer"},
    )
    team = Team.objects.get(name="Data Platform")
    assert response.status_code == 302
    assert response["Location"] == reverse("team", args=[team.slug])
    assert Membership.objects.get(team=team).user == crew.viewer
    assert Membership.objects.get(team=team).role == Role.MANAGER
    assert Event.objects.filter(kind="team.created", team=team, actor=crew.admin).exists()
    # The superuser is not made a member: they see every team anyway.
    assert not Membership.objects.filter(team=team, user=crew.admin).exists()


@pytest.mark.django_db
def test_staff_without_a_manager_named_manage_the_team_themselves(crew):
    staff = make_user("staffer", is_staff=True)
    response = client_for(staff).post(reverse("team_create"), {"name": "Mobile"})
    assert response.status_code == 302
    team = Team.objects.get(name="Mobile")
    assert Membership.objects.get(team=team, user=staff).role == Role.MANAGER
    assert client_for(staff).get(reverse("team", args=[team.slug])).status_code == 200


@pytest.mark.django_db
def test_staff_who_name_another_manager_land_on_the_teams_list(crew):
    staff = make_user("staffer", is_staff=True)
    client = client_for(staff)
    response = client.post(reverse("team_create"), {"name": "Mobile", "manager": "viewer"})
    assert response.status_code == 302 and response["Location"] == reverse("teams")
    team = Team.objects.get(name="Mobile")
    assert Membership.objects.get(team=team).user == crew.viewer
    assert "created for its manager" in client.get(reverse("teams")).content.decode()


@pytest.mark.django_db
def test_the_teams_page_offers_the_form_to_staff_only(crew):
    assert "New team" in client_for(crew.admin).get(reverse("teams")).content.decode()
    assert "New team" not in client_for(crew.manager).get(reverse("teams")).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "responder", "manager", "outsider"])
def test_members_who_are_not_staff_cannot_create_teams(crew, role):
    response = client_for(crew.by_role(role)).post(reverse("team_create"), {"name": "Rogue"})
    assert response.status_code == 403
    assert not Team.objects.filter(name="Rogue").exists()


@pytest.mark.django_db
def test_bad_input_is_a_form_error(crew):
    client = client_for(crew.admin)
    taken = client.post(reverse("team_create"), {"name": "payments"})
    assert taken.status_code == 400
    assert "another team already has this name" in taken.content.decode()
    nobody = client.post(reverse("team_create"), {"name": "Ghosts", "manager": "nobody"})
    assert nobody.status_code == 400
    assert "no user named" in nobody.content.decode()
    # The team is not left behind without its manager.
    assert not Team.objects.filter(name="Ghosts").exists()
    assert client.post(reverse("team_create"), {"name": ""}).status_code == 400


@pytest.mark.django_db
def test_no_service_can_be_created_in_the_system_team(crew):
    team = system_team()
    with pytest.raises(ServiceError, match="built in"):
        catalog.create_service(team, "Sneaky", actor=crew.admin)
    # The page does not offer the team, and a forged POST is a form error.
    client = client_for(crew.admin)
    page = client.get(reverse("services")).content.decode()
    assert f'<option value="{team.pk}"' not in page
    response = client.post(reverse("service_create"), {"team": team.pk, "name": "Sneaky"})
    assert response.status_code == 400
    assert not Service.objects.filter(team=team).exists()


@pytest.mark.django_db
def test_the_api_refuses_a_service_in_the_system_team(crew, api):
    team = system_team()
    response = api(crew.admin).post(
        "/api/v1/services/", {"team": team.pk, "name": "Sneaky"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]
    assert not Service.objects.filter(team=team).exists()


@pytest.mark.django_db
def test_tocsin_itself_still_creates_internal_services(crew):
    service = catalog.ensure_internal_service(
        system_team().pk, slug="host", name="Host", integration_name="Host rules"
    )
    assert service.team.slug == "tocsin-system"


@pytest.mark.django_db
def test_the_admin_refuses_a_service_in_the_system_team(crew):
    team = system_team()
    response = client_for(crew.admin).post(
        reverse("admin:monitoring_service_add"), {"team": team.pk, "name": "Sneaky"}
    )
    assert response.status_code == 200
    assert "is built in: pick your own team" in response.content.decode()
    assert not Service.objects.filter(team=team).exists()
