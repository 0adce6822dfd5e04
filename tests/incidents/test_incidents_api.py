"""/api/v1/incidents/, /api/v1/escalation-policies/, /api/v1/grouping-preview/: roles and input."""

from __future__ import annotations

import pytest

from incidents.models import EscalationPolicy, Incident, IncidentStatus
from tests.incidents.core_support import NOON, fire


@pytest.fixture
def incident(service):
    fire(service, NOON)
    return Incident.objects.get()


def test_list_and_filter(api, crew, incident):
    body = api(crew.viewer).get("/api/v1/incidents/?status=triggered").json()
    assert [i["id"] for i in body["results"]] == [incident.pk]
    assert api(crew.viewer).get("/api/v1/incidents/?status=resolved").json()["results"] == []
    assert api(crew.viewer).get("/api/v1/incidents/?status=nope").status_code == 400
    assert api(crew.viewer).get("/api/v1/incidents/?tema=1").status_code == 400


def test_outsiders_see_nothing(api, crew, incident):
    assert api(crew.outsider).get("/api/v1/incidents/").json()["results"] == []
    assert api(crew.outsider).get(f"/api/v1/incidents/{incident.pk}/").status_code == 404
    assert api().get("/api/v1/incidents/").status_code == 401


def test_viewer_cannot_acknowledge(api, crew, incident):
    response = api(crew.viewer).post(f"/api/v1/incidents/{incident.pk}/acknowledge/")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "this needs the responder role in the team"


def test_responder_acknowledges_and_resolves(api, crew, incident):
    client = api(crew.responder)
    body = client.post(f"/api/v1/incidents/{incident.pk}/acknowledge/").json()
    assert body["status"] == IncidentStatus.ACKNOWLEDGED
    assert body["assignee"]["username"] == "responder"
    assert client.post(f"/api/v1/incidents/{incident.pk}/resolve/").json()["status"] == "resolved"
    response = client.post(f"/api/v1/incidents/{incident.pk}/acknowledge/")
    assert response.status_code == 400 and response.json()["error"]["code"] == "resolved"


def test_notes_reassign_timeline(api, crew, incident):
    client = api(crew.responder)
    assert (
        client.post(
            f"/api/v1/incidents/{incident.pk}/notes/", {"text": "on it"}, format="json"
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"/api/v1/incidents/{incident.pk}/notes/", {"text": ""}, format="json"
        ).status_code
        == 400
    )
    response = client.post(
        f"/api/v1/incidents/{incident.pk}/reassign/", {"user": crew.viewer.pk}, format="json"
    )
    assert response.status_code == 400
    assert "user" in response.json()["error"]["fields"]
    response = client.post(
        f"/api/v1/incidents/{incident.pk}/reassign/", {"user": crew.manager.pk}, format="json"
    )
    assert response.json()["assignee"]["id"] == crew.manager.pk
    kinds = [e["kind"] for e in client.get(f"/api/v1/incidents/{incident.pk}/timeline/").json()]
    assert kinds == ["alert.firing", "incident.triggered", "incident.note", "incident.reassigned"]


def test_merge(api, crew, service):
    fire(service, NOON, alertname="A")
    fire(service, NOON, alertname="B")
    a, b = Incident.objects.order_by("id")
    response = api(crew.responder).post(
        f"/api/v1/incidents/{a.pk}/merge/", {"sources": [b.pk]}, format="json"
    )
    assert response.status_code == 200
    assert sorted(response.json()["alert_ids"]) == sorted(
        [link.alert_id for link in a.alert_links.all()]
    )
    response = api(crew.responder).post(
        f"/api/v1/incidents/{a.pk}/merge/", {"sources": [999]}, format="json"
    )
    assert response.status_code == 400


POLICY = {
    "team": "payments",
    "name": "Primary",
    "repeat_times": 1,
    "ack_timeout_minutes": 30,
    "steps": [{"delay_minutes": 0, "notify_team": True}, {"delay_minutes": 10}],
}


def test_responder_cannot_edit_policies(api, crew):
    assert (
        api(crew.responder).post("/api/v1/escalation-policies/", POLICY, format="json").status_code
        == 403
    )
    assert not EscalationPolicy.objects.exists()


def test_manager_manages_policies(api, crew):
    client = api(crew.manager)
    response = client.post(
        "/api/v1/escalation-policies/",
        {**POLICY, "steps": [{"user_ids": [crew.responder.pk]}, {"delay_minutes": 10}]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [s["delay_minutes"] for s in body["steps"]] == [0, 10]
    pk = body["id"]
    assert client.post("/api/v1/escalation-policies/", POLICY, format="json").status_code == 409
    response = client.patch(
        f"/api/v1/escalation-policies/{pk}/", {"steps": [{"delay_minutes": 3}]}, format="json"
    )
    assert [s["delay_minutes"] for s in response.json()["steps"]] == [3]
    assert api(crew.responder).delete(f"/api/v1/escalation-policies/{pk}/").status_code == 403
    assert client.delete(f"/api/v1/escalation-policies/{pk}/").status_code == 204


@pytest.mark.parametrize(
    "change",
    [
        {"steps": [{"user_ids": [123456]}]},  # not a member
        {"steps": [{"time_zone": "Mars/Olympus"}]},
        {"steps": [{"windows": [{"start": "25:00", "end": "01:00"}]}]},
        {"steps": [{"min_priority": "P9"}]},
        {"repeat_times": -1},
        {"colour": "red"},
    ],
)
def test_bad_policy_input_is_a_400(api, crew, change):
    response = api(crew.manager).post(
        "/api/v1/escalation-policies/", {**POLICY, **change}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert not EscalationPolicy.objects.exists()


def test_grouping_preview(api, crew, service, incident):
    response = api(crew.viewer).post(
        "/api/v1/grouping-preview/",
        {"service": service.pk, "labels": {"alertname": "HighLatency"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["incident"]["id"] == incident.pk
    assert response.json()["rule"] == "fingerprint"
    bad = api(crew.outsider).post(
        "/api/v1/grouping-preview/", {"service": service.pk, "labels": {"a": "b"}}, format="json"
    )
    assert bad.status_code == 400
