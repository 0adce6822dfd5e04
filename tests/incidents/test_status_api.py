"""The status page REST API: team-scoped, managers write pages and components, responders post
public updates, errors in the house shape."""

from __future__ import annotations

import pytest

from incidents.statuspages.models import Component, PublicUpdate, StatusPage
from monitoring.models import Service
from tests.incidents.status_support import make_component, make_page, open_incident
from tocsin.models import Event


@pytest.fixture
def service(crew):
    return Service.objects.create(team=crew.team, name="Checkout API")


def test_a_manager_creates_a_page_with_components(crew, api, service):
    manager = api(crew.manager)
    response = manager.post(
        "/api/v1/status-pages/",
        {"team": crew.team.slug, "title": "Shop", "slug": "shop", "services": [service.pk]},
        format="json",
    )
    assert response.status_code == 201, response.content
    page = response.json()
    assert page["published"] is False and page["services"] == [service.pk]
    assert page["public_url"].endswith("/status/shop/")
    group = manager.post(
        "/api/v1/status-component-groups/", {"page": page["id"], "name": "Core"}, format="json"
    ).json()
    response = manager.post(
        "/api/v1/status-components/",
        {"page": page["id"], "name": "API", "group": group["id"], "service": service.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    component = response.json()
    listed = manager.get(f"/api/v1/status-components/?status_page={page['id']}").json()
    assert [c["id"] for c in listed["results"]] == [component["id"]]
    other = manager.get(f"/api/v1/status-components/?status_page={page['id'] + 1000}").json()
    assert other["results"] == []
    response = manager.patch(
        f"/api/v1/status-components/{component['id']}/",
        {"manual_status": "under_maintenance"},
        format="json",
    )
    assert response.json()["manual_status"] == "under_maintenance"
    response = manager.patch(
        f"/api/v1/status-components/{component['id']}/", {"manual_status": None}, format="json"
    )
    assert response.json()["manual_status"] is None
    response = manager.patch(
        f"/api/v1/status-pages/{page['id']}/", {"published": True}, format="json"
    )
    assert response.json()["published"] is True and response.json()["published_at"]
    assert Event.objects.filter(kind__startswith="status_").count() >= 6


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_viewers_and_responders_read_but_do_not_configure(crew, api, service, role):
    page = make_page(crew.team)
    client = api(crew.by_role(role))
    assert client.get("/api/v1/status-pages/").json()["results"][0]["id"] == page.pk
    response = client.patch(f"/api/v1/status-pages/{page.pk}/", {"title": "X"}, format="json")
    assert response.status_code == 403
    response = client.post(
        "/api/v1/status-components/", {"page": page.pk, "name": "API"}, format="json"
    )
    assert response.status_code == 403
    assert not Component.objects.exists()


def test_other_teams_see_nothing(crew, api):
    page = make_page(crew.team)
    outsider = api(crew.outsider)
    assert outsider.get("/api/v1/status-pages/").json()["results"] == []
    assert outsider.get(f"/api/v1/status-pages/{page.pk}/").status_code == 404
    response = outsider.post(
        "/api/v1/status-components/", {"page": page.pk, "name": "API"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page": ["no such object that you can view"]}
    assert api().get("/api/v1/status-pages/").status_code == 401


def test_bad_input_is_a_400_naming_the_field(crew, api, service):
    page = make_page(crew.team)
    manager = api(crew.manager)
    cases = [
        ("/api/v1/status-pages/", {"team": crew.team.pk, "title": "T", "slug": "payments"}, "slug"),
        ("/api/v1/status-pages/", {"team": crew.team.pk, "title": "T", "slug": "a b"}, "slug"),
        (
            "/api/v1/status-pages/",
            {"team": crew.team.pk, "title": "T", "slug": "t", "brand_colour": "red"},
            "brand_colour",
        ),
        ("/api/v1/status-components/", {"page": page.pk, "name": "X", "bogus": 1}, "bogus"),
        (
            "/api/v1/status-components/",
            {"page": page.pk, "name": "X", "source_kind": "probe", "target_id": 99},
            "target_id",
        ),
    ]
    for url, body, field in cases:
        response = manager.post(url, body, format="json")
        assert response.status_code in (400, 409), (body, response.content)
        assert field in response.json()["error"]["fields"], (body, response.json())
    assert StatusPage.objects.count() == 1


def test_responders_post_public_updates_viewers_cannot(crew, api, service):
    page = make_page(crew.team)
    page.services.add(service)
    make_component(page, "API", service=service)
    incident = open_incident(service, "P1")
    body = {
        "page": page.pk,
        "incident": incident.pk,
        "status": "investigating",
        "title": "Errors at checkout",
        "body": "We are on it.",
        "impact": "major",
    }
    assert api(crew.viewer).post("/api/v1/status-updates/", body, format="json").status_code == 403
    response = api(crew.responder).post("/api/v1/status-updates/", body, format="json")
    assert response.status_code == 201, response.content
    update = response.json()
    assert update["public_incident"]["title"] == "Errors at checkout"
    assert update["public_incident"]["incident"] == incident.pk
    follow = {"page": page.pk, "public_incident": update["public_incident"]["id"]}
    response = api(crew.responder).post(
        "/api/v1/status-updates/", {**follow, "status": "resolved", "body": "Fixed"}, format="json"
    )
    assert response.status_code == 201
    listed = api(crew.viewer).get(f"/api/v1/status-updates/?status_page={page.pk}").json()
    assert [u["status"] for u in listed["results"]] == ["resolved", "investigating"]
    response = api(crew.responder).post(
        "/api/v1/status-updates/", {**body, "status": "unknown"}, format="json"
    )
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]
    assert PublicUpdate.objects.count() == 2
