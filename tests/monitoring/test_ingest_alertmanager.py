"""POST /ingest/alertmanager/: Alertmanager's webhook receiver body, version 4."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitoring.models import Alert
from tests.monitoring.ingest_support import (
    assert_nothing_stored,
    bearer,
    event_kinds,
    fixture,
    post,
)

pytestmark = pytest.mark.django_db


def url(key: str = "") -> str:
    return f"/ingest/alertmanager/{key}/" if key else "/ingest/alertmanager/"


def resolved(body: dict) -> dict:
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2023-02-06T13:20:45.828Z"
    return body


def test_it_stores_a_firing_alert(doors):
    door = doors["alertmanager"]
    response = post(url(door.key), fixture("alertmanager-webhook-v4.json"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "received": 1, "results": {"created": 1}}
    alert = Alert.objects.get()
    assert alert.service == door.integration.service
    assert alert.integration == door.integration
    assert (alert.status, alert.severity, alert.source) == ("firing", "critical", "alertmanager")
    assert alert.fingerprint == "1a30ba71cca2921f"  # Alertmanager's own
    assert alert.summary == "Probe failure: https://api.example.org"
    assert alert.description == "Down for over 5m"
    assert alert.labels == {
        "alertname": "ProbeFailure",
        "instance": "https://api.example.org",
        "job": "http_checks",
        "severity": "critical",
    }
    assert alert.starts_at == datetime(2023, 2, 6, 13, 8, 45, 828000, tzinfo=UTC)
    assert alert.ends_at is None  # 0001-01-01 means "not ended"
    assert alert.generator_url.startswith("http://prometheus.example.org:9090/graph")
    assert {"href": "http://alertmanager.example.org:9093", "text": "Alertmanager"} in alert.links
    assert event_kinds() == ["alert.firing"]
    door.integration.refresh_from_db()
    assert door.integration.last_received_at is not None


def test_it_accepts_the_key_as_a_bearer_token(doors):
    door = doors["alertmanager"]
    response = post(url(), fixture("alertmanager-webhook-v4.json"), **bearer(door.key))
    assert response.status_code == 200
    assert Alert.objects.get().integration == door.integration


def test_the_path_works_without_a_trailing_slash(doors):
    response = post(
        url(doors["alertmanager"].key).rstrip("/"), fixture("alertmanager-webhook-v4.json")
    )
    assert response.status_code == 200
    assert Alert.objects.count() == 1


def test_it_ignores_resend(doors, django_assert_num_queries):
    key = doors["alertmanager"].key
    post(url(key), fixture("alertmanager-webhook-v4.json"))
    # The batch's alerts and the re-send bump: the integration is remembered from the first post
    # (the key cache) and last_received_at was written then, kept at minute resolution.
    with django_assert_num_queries(2):
        response = post(url(key), fixture("alertmanager-webhook-v4.json"))
    assert response.json()["results"] == {"resent": 1}
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert event_kinds() == ["alert.firing"]


def test_it_resolves(doors):
    key = doors["alertmanager"].key
    post(url(key), fixture("alertmanager-webhook-v4.json"))
    response = post(url(key), resolved(fixture("alertmanager-webhook-v4.json")))
    assert response.json()["results"] == {"resolved": 1}
    alert = Alert.objects.get()
    assert alert.status == "resolved"
    assert alert.ends_at == datetime(2023, 2, 6, 13, 20, 45, 828000, tzinfo=UTC)
    assert event_kinds() == ["alert.firing", "alert.resolved"]


def test_a_batch_stores_each_alert(doors):
    body = fixture("alertmanager-webhook-v4.json")
    first = body["alerts"][0]
    second = {
        **first,
        "labels": {**first["labels"], "instance": "https://www.example.org", "severity": "warn"},
        "fingerprint": "2b41cb82ddb0032a",
    }
    third = {**first, "labels": {"alertname": "Watchdog", "severity": "none"}}
    del third["fingerprint"]
    body["alerts"] = [first, second, third]
    response = post(url(doors["alertmanager"].key), body)
    assert response.json() == {"status": "ok", "received": 3, "results": {"created": 3}}
    stored = dict(Alert.objects.values_list("labels__instance", "severity"))
    assert stored == {
        "https://api.example.org": "critical",
        "https://www.example.org": "warning",
        None: "info",
    }
    watchdog = Alert.objects.get(labels__alertname="Watchdog")
    assert len(watchdog.fingerprint) == 16  # from the sorted labels
    assert event_kinds() == ["alert.firing"] * 3


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("P1", "critical"),
        ("error", "error"),
        ("high", "error"),
        ("major", "error"),
        ("warning", "warning"),
        ("medium", "warning"),
        ("minor", "warning"),
        ("info", "info"),
        ("low", "info"),
        ("none", "info"),
        ("whatever", "error"),
        (None, "error"),
    ],
)
def test_it_maps_the_severity_label(doors, word, severity):
    body = fixture("alertmanager-webhook-v4.json")
    labels = body["alerts"][0]["labels"]
    if word is None:
        del labels["severity"]
    else:
        labels["severity"] = word
    post(url(doors["alertmanager"].key), body)
    assert Alert.objects.get().severity == severity


def test_malformed_json_stores_nothing(doors):
    response = post(url(doors["alertmanager"].key), raw='{"alerts": [')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error"
    assert "not valid JSON" in error["message"]
    assert_nothing_stored()


def test_one_bad_alert_in_a_batch_stores_nothing(doors):
    body = fixture("alertmanager-webhook-v4.json")
    good = body["alerts"][0]
    body["alerts"] = [
        good,
        {**good, "fingerprint": "x1", "status": "burning"},
        {**good, "labels": {"alertname": 5}, "startsAt": "yesterday"},
    ]
    response = post(url(doors["alertmanager"].key), body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {
        "alerts[1].status",
        "alerts[2].labels.alertname",
        "alerts[2].startsAt",
    }
    assert "alerts[1].status" in error["message"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "4"}, "alerts"),
        ({"version": "4", "alerts": {}}, "alerts"),
        ({"version": "3", "alerts": []}, "version"),
        ({"alerts": [{"status": "firing"}]}, "alerts[0].labels"),
        ({"alerts": [{"labels": {}}]}, "alerts[0].labels"),
        ({"alerts": ["firing"]}, "alerts[0]"),
        ({"alerts": [{"labels": {"a": "b"}, "annotations": []}]}, "alerts[0].annotations"),
        ({"alerts": [{"labels": {"a": "b"}, "fingerprint": "f" * 256}]}, "alerts[0].fingerprint"),
    ],
)
def test_an_invalid_body_names_the_field(doors, body, field):
    response = post(url(doors["alertmanager"].key), body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert_nothing_stored()


def test_a_body_that_is_not_an_object_is_refused(doors):
    response = post(url(doors["alertmanager"].key), [1, 2])
    assert response.status_code == 400
    assert "Alertmanager webhook" in response.json()["error"]["message"]
    assert_nothing_stored()


def test_an_empty_group_is_accepted(doors):
    response = post(url(doors["alertmanager"].key), {"version": "4", "alerts": []})
    assert response.status_code == 200
    assert response.json()["received"] == 0
    assert_nothing_stored()


def test_a_grafana_key_is_not_an_alertmanager_key(doors):
    response = post(url(doors["grafana"].key), fixture("alertmanager-webhook-v4.json"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert_nothing_stored()
