"""The postmortem API: an incident's postmortem, its Markdown, and action items; roles; errors."""

from __future__ import annotations

import pytest

from incidents.lifecycle import services
from incidents.models import ActionItem, Incident, Postmortem
from incidents.postmortems import services as postmortems
from tests.incidents.core_support import NOON, fire
from tocsin.models import Event

pytestmark = pytest.mark.usefixtures("fresh_throttles")

ROLES = ["viewer", "responder", "manager", "outsider", "admin"]
MAY_VIEW = {"viewer", "responder", "manager", "admin"}
MAY_WRITE = {"responder", "manager", "admin"}


@pytest.fixture
def incident(crew, service) -> Incident:
    fire(service, NOON)
    incident = Incident.objects.get()
    services.resolve(incident, actor=crew.responder)
    return incident


@pytest.fixture
def pm(crew, incident) -> Postmortem:
    return postmortems.create(incident, actor=crew.responder)


def url(incident: Incident, tail: str = "") -> str:
    return f"/api/v1/incidents/{incident.pk}/postmortem/{tail}"


def event_count() -> int:
    return Event.objects.count()


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]["fields"]


# -- roles ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_reading_the_postmortem_needs_the_viewer_role(crew, api, pm, role):
    response = api(crew.by_role(role)).get(url(pm.incident))
    if role in MAY_VIEW:
        assert response.status_code == 200
        assert response.json()["id"] == pm.pk and response.json()["status"] == "draft"
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_starting_a_postmortem_needs_the_responder_role(crew, api, incident, role):
    response = api(crew.by_role(role)).post(url(incident), format="json")
    expected = 201 if role in MAY_WRITE else (403 if role in MAY_VIEW else 404)
    assert response.status_code == expected
    assert Postmortem.objects.exists() == (expected == 201)
    if expected == 201:
        body = response.json()
        assert body["timeline"][0]["text"].startswith("Triggered")
        assert body["author"]["username"] == crew.by_role(role).get_username()


@pytest.mark.parametrize("role", ROLES)
def test_editing_needs_the_responder_role(crew, api, pm, role):
    before = event_count()
    response = api(crew.by_role(role)).patch(
        url(pm.incident), {"root_cause": "a bad deploy"}, format="json"
    )
    expected = 200 if role in MAY_WRITE else (403 if role in MAY_VIEW else 404)
    assert response.status_code == expected
    pm.refresh_from_db()
    assert (pm.root_cause == "a bad deploy") == (expected == 200)
    assert event_count() == before + (1 if expected == 200 else 0)


@pytest.mark.parametrize("role", ROLES)
def test_action_items_are_written_by_responders_and_read_by_viewers(crew, api, pm, role):
    item = postmortems.add_action_item(pm, actor=crew.responder, title="Add a canary")
    client = api(crew.by_role(role))
    listed = client.get("/api/v1/action-items/").json()["results"]
    assert [i["id"] for i in listed] == ([item.pk] if role in MAY_VIEW else [])
    response = client.patch(f"/api/v1/action-items/{item.pk}/", {"status": "done"}, format="json")
    expected = 200 if role in MAY_WRITE else (403 if role in MAY_VIEW else 404)
    assert response.status_code == expected
    item.refresh_from_db()
    assert (item.status == "done") == (expected == 200)
    response = client.post(
        "/api/v1/action-items/",
        {"incident": pm.incident_id, "title": "Another"},
        format="json",
    )
    assert response.status_code == (201 if role in MAY_WRITE else 403 if role in MAY_VIEW else 400)
    response = client.delete(f"/api/v1/action-items/{item.pk}/")
    assert response.status_code == (204 if role in MAY_WRITE else expected)


# -- behaviour -----------------------------------------------------------------------------------
def test_a_second_start_is_a_conflict(crew, api, pm):
    response = api(crew.responder).post(url(pm.incident), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate"


def test_missing_postmortem_is_404_with_the_error_shape(crew, api, incident):
    response = api(crew.viewer).get(url(incident))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_patch_edits_timeline_rows_and_publishes_in_one_call(crew, api, pm):
    rows = [
        {"at": "2025-01-15T12:00:00Z", "text": "Deploy 42 went out"},
        {"at": "2025-01-15T12:10:00+01:00", "text": "Paged", "event_id": 5, "kind": "x"},
    ]
    response = api(crew.responder).patch(
        url(pm.incident), {"timeline": rows, "status": "published"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "published" and body["published_at"]
    assert [r["text"] for r in body["timeline"]] == ["Paged", "Deploy 42 went out"]
    assert body["timeline"][0]["at"] == "2025-01-15T11:10:00Z"


def test_published_postmortem_refuses_edits_until_reopened(crew, api, pm):
    client = api(crew.responder)
    assert client.post(url(pm.incident, "publish/"), format="json").status_code == 200
    response = client.patch(url(pm.incident), {"summary": "new"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "published"
    response = client.patch(url(pm.incident), {"summary": "new", "status": "draft"}, format="json")
    assert response.status_code == 200
    assert response.json()["summary"] == "new" and response.json()["status"] == "draft"


def test_a_refused_publish_keeps_the_edits_out_too(crew, api, service):
    fire(service, NOON, alertname="still-firing")
    open_incident = Incident.objects.get(status="triggered")
    pm = postmortems.create(open_incident, actor=crew.responder)
    before = event_count()
    response = api(crew.responder).patch(
        url(open_incident), {"summary": "new", "status": "published"}, format="json"
    )
    assert response.status_code == 400
    assert "status" in error_fields(response)
    pm.refresh_from_db()
    assert pm.summary != "new" and pm.status == "draft"
    assert event_count() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "archived"}, "status"),
        ({"summary": "x" * (postmortems.MAX_TEXT + 1)}, "summary"),
        ({"timeline": [{"at": "yesterday", "text": "x"}]}, "timeline.0.at"),
        ({"timeline": [{"at": "2025-01-15T12:00:00Z"}]}, "timeline.0.text"),
        ({"timeline": [{"at": "2025-01-15T12:00:00Z", "text": "x", "by": "me"}]}, "timeline.0.by"),
        ({"author": 1}, "author"),
    ],
)
def test_bad_postmortem_input_is_400_with_the_field_and_changes_nothing(crew, api, pm, body, field):
    before = (event_count(), Postmortem.objects.values().get())
    response = api(crew.responder).patch(url(pm.incident), body, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)
    assert (event_count(), Postmortem.objects.values().get()) == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"owner": "outsider"}, "owner"),
        ({"owner": 999999}, "owner"),
        ({"due_date": "someday"}, "due_date"),
        ({"due_date": "2025-13-01"}, "due_date"),
        ({"status": "half-done"}, "status"),
        ({"title": ""}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"tracker_url": "not a url"}, "tracker_url"),
    ],
)
def test_bad_action_item_input_is_400_with_the_field_and_changes_nothing(
    crew, api, pm, body, field
):
    if body.get("owner") == "outsider":
        body = {"owner": crew.outsider.pk}
    item = postmortems.add_action_item(pm, actor=crew.responder, title="Keep me")
    before = (event_count(), ActionItem.objects.values().get())
    response = api(crew.responder).patch(f"/api/v1/action-items/{item.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in error_fields(response)
    assert (event_count(), ActionItem.objects.values().get()) == before


def test_action_item_created_with_owner_and_due_date(crew, api, pm):
    response = api(crew.responder).post(
        "/api/v1/action-items/",
        {
            "incident": pm.incident_id,
            "title": "Add a canary",
            "owner": crew.viewer.pk,
            "due_date": "2025-02-01",
            "tracker_url": "https://tracker.example/T-1",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == {"id": crew.viewer.pk, "username": "viewer"}
    assert body["due_date"] == "2025-02-01" and body["overdue"] is True
    assert body["incident"] == pm.incident_id and body["status"] == "open"
    kinds = list(Event.objects.order_by("-id").values_list("kind", flat=True)[:1])
    assert kinds == ["postmortem.action_item_added"]


def test_my_open_action_items_filter(crew, api, pm):
    mine = postmortems.add_action_item(pm, actor=crew.responder, title="mine", owner=crew.viewer)
    done = postmortems.add_action_item(pm, actor=crew.responder, title="done", owner=crew.viewer)
    postmortems.complete_action_item(done, actor=crew.viewer)
    postmortems.add_action_item(pm, actor=crew.responder, title="theirs", owner=crew.manager)
    response = api(crew.viewer).get("/api/v1/action-items/?owner=me&status=open")
    assert [i["id"] for i in response.json()["results"]] == [mine.pk]
    response = api(crew.viewer).get("/api/v1/action-items/?owner=someone")
    assert response.status_code == 400


def test_markdown_export_over_the_api(crew, api, pm):
    postmortems.add_action_item(
        pm, actor=crew.responder, title="Add | canary", owner=crew.viewer, due_date="2025-02-01"
    )
    for accept in ("*/*", "text/markdown"):
        response = api(crew.viewer).get(url(pm.incident, "markdown/"), HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/markdown; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="postmortem-')
        text = response.content.decode()
        assert "## Action items" in text and "| Add \\| canary | viewer | 2025-02-01 |" in text
    assert api(crew.outsider).get(url(pm.incident, "markdown/")).status_code == 404
