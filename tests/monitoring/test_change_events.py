"""PagerDuty change events (POST /ingest/pagerduty/v2/change/enqueue): stored, recorded, shown.

And every refusal under /ingest/ is JSON, never an HTML page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import ChangeEvent
from monitoring.pipeline import AlertInput, process
from tests.monitoring.ingest_support import post
from tocsin.models import Event

pytestmark = pytest.mark.django_db

URL = "/ingest/pagerduty/v2/change/enqueue"


def change(key: str, **payload) -> dict:
    """PagerDuty's documented example of a change event."""
    return {
        "routing_key": key,
        "payload": {
            "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
            "timestamp": "2020-07-17T08:42:58.315+0000",
            "source": "acme-build-pipeline-tool-default-i-9999",
            "custom_details": {"build_state": "passed", "build_number": "2", "run_time": "1236s"},
            **payload,
        },
        "links": [{"href": "https://acme.pagerduty.dev/build/2", "text": "View more details"}],
    }


def test_a_change_event_is_accepted_like_pagerduty_does(doors, service):
    response = post(URL, change(doors["events_v2"].key))
    assert response.status_code == 202, response.content
    assert response.json() == {"status": "success", "message": "Change event processed"}
    stored = ChangeEvent.objects.get()
    assert stored.service == service
    assert stored.summary.startswith("Build Success")
    assert stored.source == "acme-build-pipeline-tool-default-i-9999"
    assert stored.timestamp.isoformat() == "2020-07-17T08:42:58.315000+00:00"
    assert stored.links == [
        {"href": "https://acme.pagerduty.dev/build/2", "text": "View more details"}
    ]
    assert stored.custom_details["build_number"] == "2"


def test_a_change_records_change_received_with_the_service_as_subject(doors, service):
    post(URL, change(doors["events_v2"].key))
    event = Event.objects.get(kind="change.received")
    assert (event.team_id, event.subject_type, event.subject_id) == (
        service.team_id,
        "service",
        str(service.pk),
    )
    assert event.payload["summary"].startswith("Build Success")
    assert event.actor_label == f"events_v2: {doors['events_v2'].integration.name}"


def test_a_change_never_raises_an_alert(doors, service):
    post(URL, change(doors["events_v2"].key))
    assert not service.alerts.exists()


def test_an_invalid_change_is_refused_in_pagerdutys_shape(doors):
    body = change(doors["events_v2"].key)
    del body["payload"]["summary"]
    body["links"] = [{"href": "javascript:alert(1)"}]
    response = post(URL, body)
    assert response.status_code == 400
    data = response.json()
    assert (data["status"], data["message"]) == ("invalid event", "Event object is invalid")
    assert "payload.summary is required" in data["errors"]
    assert any(e.startswith("links[0].href") for e in data["errors"])
    assert not ChangeEvent.objects.exists()


def test_an_unknown_routing_key_is_a_json_404(doors):
    response = post(URL, change("0" * 32))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert not ChangeEvent.objects.exists()


def test_get_is_refused_as_json(client, db):
    response = client.get(URL)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "path",
    [
        "/ingest/nothing-here",
        "/ingest/pagerduty/v3/enqueue",
        "/ingest/",
        "/ingest/alertmanager/k/x",
    ],
)
def test_unknown_ingest_paths_answer_json_in_the_ingest_error_shape(client, db, path):
    response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_the_service_page_shows_changes_next_to_the_alerts_after_them(client, crew, doors, service):
    deployed = timezone.now() - timedelta(minutes=30)
    body = change(
        doors["events_v2"].key, summary="Deploy checkout v42", timestamp=deployed.isoformat()
    )
    assert post(URL, body).status_code == 202
    process(
        service,
        [AlertInput(labels={"alertname": "Errors"}, summary="5xx rate above 5%")],
        source="generic",
    )
    client.force_login(crew.viewer)
    page = client.get(f"/services/{service.team.slug}/{service.slug}/").content.decode()
    assert "Recent changes" in page
    assert "Deploy checkout v42" in page
    row = page[page.index("5xx rate above 5%") :]
    assert "after change: Deploy checkout v42" in row[: row.index("</tr>")]
