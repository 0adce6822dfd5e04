"""POST /ingest/pagerduty/v2/enqueue: the PagerDuty Events API v2, answered as PagerDuty does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitoring.models import Alert
from tests.monitoring.ingest_support import assert_nothing_stored, event_kinds, fixture, post

pytestmark = pytest.mark.django_db

URL = "/ingest/pagerduty/v2/enqueue"


def trigger(key: str, **overrides) -> dict:
    body = fixture("pagerduty-events-v2-trigger.json")
    body["routing_key"] = key
    body.update(overrides)
    return body


def follow_up(key: str, action: str, dedup_key: str = "srv01/mysql") -> dict:
    return {"routing_key": key, "dedup_key": dedup_key, "event_action": action}


def test_a_trigger_is_stored_and_answered_like_pagerduty(doors):
    door = doors["events_v2"]
    response = post(URL, trigger(door.key))
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "srv01/mysql",
    }
    alert = Alert.objects.get()
    assert alert.integration == door.integration
    assert (alert.status, alert.severity, alert.source) == ("firing", "critical", "events_v2")
    assert alert.fingerprint == "srv01/mysql"
    assert alert.summary == "DISK at 99% on machine prod-datapipe03.example.com"
    assert alert.labels == {
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
    }
    assert alert.details == {"free space": "1%", "ping time": "1500ms", "load avg": 0.75}
    assert alert.starts_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert {"href": "https://monitoring.service.com", "text": "Sample Monitoring Service"} in (
        alert.links
    )
    assert {"href": "http://pagerduty.example.com", "text": "An example link."} in alert.links
    image = next(link for link in alert.links if "image" in link)
    assert image["href"] == "https://example.com/"
    assert image["image"].endswith("pagerduty-logo-green.png")
    assert event_kinds() == ["alert.firing"]


def test_a_trigger_without_dedup_key_gets_one(doors):
    body = trigger(doors["events_v2"].key)
    del body["dedup_key"]
    response = post(URL, body)
    assert response.status_code == 202
    dedup_key = response.json()["dedup_key"]
    assert len(dedup_key) == 32
    assert Alert.objects.get().fingerprint == dedup_key
    # The returned key resolves the alert, as with PagerDuty.
    post(URL, follow_up(doors["events_v2"].key, "resolve", dedup_key))
    assert Alert.objects.get().status == "resolved"


def test_a_repeated_trigger_is_a_resend(doors):
    key = doors["events_v2"].key
    post(URL, trigger(key))
    assert post(URL, trigger(key)).status_code == 202
    assert Alert.objects.get().occurrences == 2
    assert event_kinds() == ["alert.firing"]


def test_acknowledge_then_resolve(doors):
    key = doors["events_v2"].key
    post(URL, trigger(key))
    response = post(URL, follow_up(key, "acknowledge"))
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "srv01/mysql"
    assert Alert.objects.get().acknowledged_at is not None
    post(URL, follow_up(key, "resolve"))
    alert = Alert.objects.get()
    assert alert.status == "resolved" and alert.ends_at is not None
    assert event_kinds() == ["alert.firing", "alert.acknowledged", "alert.resolved"]


def test_resolving_an_unknown_dedup_key_is_accepted_and_stores_nothing(doors):
    response = post(URL, follow_up(doors["events_v2"].key, "resolve", "never-seen"))
    assert response.status_code == 202
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("word", "severity"),
    [("critical", "critical"), ("error", "error"), ("warning", "warning"), ("info", "info")],
)
def test_the_four_severities(doors, word, severity):
    body = trigger(doors["events_v2"].key)
    body["payload"]["severity"] = word
    post(URL, body)
    assert Alert.objects.get().severity == severity


def test_an_invalid_event_is_answered_like_pagerduty(doors):
    body = trigger(doors["events_v2"].key)
    del body["payload"]["summary"]
    body["payload"]["severity"] = "page"
    response = post(URL, body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid event"
    assert answer["message"] == "Event object is invalid"
    assert "payload.summary is required" in answer["errors"]
    assert any(error.startswith("payload.severity must be one of") for error in answer["errors"])
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event_action": "explode"}, "event_action must be one of"),
        ({"payload": None}, "payload must be a JSON object"),
        ({"payload": {"summary": "s", "severity": "info"}}, "payload.source is required"),
        ({"dedup_key": "k" * 256}, "dedup_key must be at most 255 characters"),
        ({"links": {"href": "x"}}, "links must be a list"),
        ({"images": [{"href": "x"}]}, "images[0].src is required"),
        (
            {
                "payload": {
                    **fixture("pagerduty-events-v2-trigger.json")["payload"],
                    "timestamp": "now",
                }
            },
            "payload.timestamp is not an RFC 3339 time",
        ),
    ],
)
def test_invalid_trigger_fields(doors, change, error):
    response = post(URL, trigger(doors["events_v2"].key, **change))
    assert response.status_code == 400
    assert any(e.startswith(error) for e in response.json()["errors"]), response.json()
    assert_nothing_stored()


def test_resolve_without_dedup_key_is_invalid(doors):
    body = follow_up(doors["events_v2"].key, "resolve")
    del body["dedup_key"]
    response = post(URL, body)
    assert response.status_code == 400
    assert response.json()["errors"] == ["dedup_key is required to resolve"]


def test_a_missing_routing_key_is_invalid(doors):
    body = trigger("")
    del body["routing_key"]
    response = post(URL, body)
    assert response.status_code == 400
    assert "routing_key is required" in response.json()["errors"]
    assert_nothing_stored()


def test_malformed_json_is_an_invalid_event(doors):
    response = post(URL, raw="{routing_key: nope}")
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid event"
    assert answer["errors"][0].startswith("The body is not valid JSON")
    assert_nothing_stored()


def test_an_unknown_routing_key_is_not_found(doors):
    response = post(URL, trigger("e93facc04764012d7bfb002500d5d1a6"))
    assert response.status_code == 404
    assert "routing_key" in response.json()["message"]
    assert_nothing_stored()


def test_a_generic_key_is_not_a_routing_key(doors):
    response = post(URL, trigger(doors["generic"].key))
    assert response.status_code == 404
    assert_nothing_stored()


def test_a_pagerduty_client_base_url_works(doors):
    """Clients append /v2/enqueue to their base URL; some send a trailing slash."""
    assert post(URL + "/", trigger(doors["events_v2"].key)).status_code == 202
