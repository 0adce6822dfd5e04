"""/api/v1/services/ and /api/v1/integrations/: CRUD, keys shown once, rotate and revoke."""

from __future__ import annotations

import pytest

from monitoring.models import Integration, Service
from monitoring.pipeline import AlertInput, process
from tests.tocsin.api_support import assert_error
from tocsin.models import Event

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def test_manager_creates_a_service_by_team_slug(crew, api):
    response = api(crew.manager).post(
        "/api/v1/services/",
        {"team": "payments", "name": "Checkout", "tags": ["tier-1"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "checkout" and body["team"]["slug"] == "payments"
    assert (body["firing_alerts"], body["integrations"], body["tags"]) == (0, 0, ["tier-1"])
    assert Event.objects.get().kind == "service.created"


def test_duplicate_service_is_a_409(crew, api, service):
    response = api(crew.manager).post(
        "/api/v1/services/", {"team": crew.team.pk, "name": "checkout api"}, format="json"
    )
    assert_error(response, 409, "duplicate", {"name"})


def test_unknown_fields_and_invisible_teams_are_400(crew, api):
    client = api(crew.manager)
    response = client.post(
        "/api/v1/services/", {"team": "payments", "name": "x", "owner": "me"}, format="json"
    )
    assert_error(response, 400, "invalid", {"owner"})
    response = client.post("/api/v1/services/", {"team": "search", "name": "x"}, format="json")
    assert_error(response, 400, "invalid", {"team"})
    assert not Service.objects.exists()


def test_list_counts_firing_alerts_and_usable_integrations(crew, api, service, doors):
    process(service, [AlertInput(labels={"alertname": "A"})], source="generic")
    Service.objects.create(team=crew.other_team, name="Hidden")
    response = api(crew.viewer).get("/api/v1/services/")
    [row] = response.json()["results"]
    assert (row["name"], row["firing_alerts"], row["integrations"]) == ("Checkout API", 1, 6)


def test_list_filters_by_search_and_rejects_unknown_filters(crew, api, service):
    client = api(crew.viewer)
    assert client.get("/api/v1/services/?search=check").json()["count"] == 1
    assert client.get("/api/v1/services/?search=nope").json()["count"] == 0
    assert_error(client.get("/api/v1/services/?nmae=x"), 400, "invalid", {"nmae"})


def test_patch_renames_and_delete_refuses_a_service_with_alerts(crew, api, service):
    client = api(crew.manager)
    response = client.patch(f"/api/v1/services/{service.pk}/", {"name": "Cart"}, format="json")
    assert response.status_code == 200 and response.json()["slug"] == "checkout-api"
    process(service, [AlertInput(labels={"alertname": "A"})], source="generic")
    assert_error(client.delete(f"/api/v1/services/{service.pk}/"), 400, "protected")


def test_creating_an_integration_shows_the_key_once(crew, api, service):
    client = api(crew.manager)
    response = client.post(
        "/api/v1/integrations/",
        {"service": service.pk, "kind": "alertmanager", "name": "prod"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    key = body["key"]
    assert body["ingest_url"].endswith(f"/ingest/alertmanager/{key}/")
    assert body["key_prefix"] == key[:6]
    assert Integration.by_key(key).pk == body["id"]
    again = client.get(f"/api/v1/integrations/{body['id']}/").json()
    assert "key" not in again and key not in str(again)
    assert again["ingest_url"].endswith("/ingest/alertmanager/<your key>/")
    listed = client.get("/api/v1/integrations/").content.decode()
    assert key not in listed


def test_internal_kind_and_invisible_service_are_refused(crew, api, service, other_service):
    client = api(crew.manager)
    response = client.post(
        "/api/v1/integrations/", {"service": service.pk, "kind": "internal"}, format="json"
    )
    assert_error(response, 400, "invalid", {"kind"})
    response = client.post(
        "/api/v1/integrations/", {"service": other_service.pk, "kind": "generic"}, format="json"
    )
    assert_error(response, 400, "invalid", {"service"})


def test_rotate_key_returns_a_new_key_and_the_old_stops_working(crew, api, doors):
    door = doors["generic"]
    client = api(crew.manager)
    response = client.post(f"/api/v1/integrations/{door.integration.pk}/rotate-key/")
    assert response.status_code == 200, response.content
    new = response.json()["key"]
    assert new != door.key
    assert Integration.by_key(door.key) is None
    assert Integration.by_key(new) == door.integration
    assert_error(
        client.post(
            f"/api/v1/integrations/{door.integration.pk}/rotate-key/", {"x": 1}, format="json"
        ),
        400,
    )


def test_delete_revokes_and_keeps_the_integration_listed(crew, api, doors):
    door = doors["grafana"]
    client = api(crew.manager)
    assert client.delete(f"/api/v1/integrations/{door.integration.pk}/").status_code == 204
    assert Integration.by_key(door.key) is None
    body = client.get(f"/api/v1/integrations/{door.integration.pk}/").json()
    assert body["active"] is False and body["revoked_at"]
    assert client.get("/api/v1/integrations/?revoked=true").json()["count"] == 1
    assert client.get("/api/v1/integrations/?revoked=false").json()["count"] == 5
    assert_error(client.get("/api/v1/integrations/?revoked=maybe"), 400, "invalid", {"revoked"})
    response = client.post(f"/api/v1/integrations/{door.integration.pk}/rotate-key/")
    assert_error(response, 400, "revoked")


def test_integration_list_filters_by_service_and_kind(crew, api, doors, other_service):
    client = api(crew.admin)
    from tests.monitoring.conftest import make_integration

    make_integration(other_service, "generic")
    assert client.get("/api/v1/integrations/").json()["count"] == 7
    sid = doors["generic"].integration.service_id
    assert client.get(f"/api/v1/integrations/?service={sid}&kind=generic").json()["count"] == 1
    assert client.get("/api/v1/integrations/?team=search").json()["count"] == 1


def test_integration_list_query_count_is_flat(crew, api, service, django_assert_max_num_queries):
    from tests.monitoring.conftest import make_integration

    for i in range(30):
        make_integration(service, "generic", f"g{i}")
    client = api(crew.viewer)
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/integrations/")
    assert response.json()["count"] == 30
