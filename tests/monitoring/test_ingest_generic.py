"""POST /ingest/generic/: Tocsin's own documented JSON alert format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitoring.models import Alert
from monitoring.pipeline import fingerprint_labels
from tests.monitoring.ingest_support import assert_nothing_stored, bearer, event_kinds, post

pytestmark = pytest.mark.django_db

ALERT = {
    "title": "Disk almost full on db-1",
    "severity": "warning",
    "labels": {"host": "db-1", "check": "disk", "attempt": 3},
    "annotations": {"runbook_url": "https://rb/disk"},
    "description": "Less than 5% free on /var",
    "links": ["https://grafana/d/disk", {"href": "https://wiki/db", "text": "Wiki"}],
    "details": {"free": "3%", "mount": "/var"},
    "starts_at": "2024-05-01T12:00:00Z",
}


def url(key: str = "") -> str:
    return f"/ingest/generic/{key}/" if key else "/ingest/generic/"


def test_a_single_alert_is_stored(doors):
    response = post(url(doors["generic"].key), ALERT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "received": 1, "results": {"created": 1}}
    alert = Alert.objects.get()
    assert (alert.status, alert.severity, alert.source) == ("firing", "warning", "generic")
    assert alert.summary == "Disk almost full on db-1"
    assert alert.description == "Less than 5% free on /var"
    assert alert.labels == {"host": "db-1", "check": "disk", "attempt": "3"}
    assert alert.fingerprint == fingerprint_labels(alert.labels)
    assert alert.details == {"free": "3%", "mount": "/var"}
    assert alert.links == [
        {"href": "https://rb/disk", "text": "Runbook"},
        {"href": "https://grafana/d/disk", "text": "https://grafana/d/disk"},
        {"href": "https://wiki/db", "text": "Wiki"},
    ]
    assert alert.starts_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert event_kinds() == ["alert.firing"]


def test_it_accepts_the_key_as_a_bearer_token(doors):
    assert post(url(), ALERT, **bearer(doors["generic"].key)).status_code == 200


def test_a_batch_is_stored(doors):
    body = {
        "alerts": [
            {"title": "Backup late", "dedup_key": "backup-nightly", "severity": "p1"},
            {"summary": "Queue deep", "fingerprint": "queue", "severity": "low"},
            {"title": "Only a title"},
        ]
    }
    response = post(url(doors["generic"].key), body)
    assert response.json()["results"] == {"created": 3}
    stored = dict(Alert.objects.values_list("fingerprint", "severity"))
    assert stored["backup-nightly"] == "critical"
    assert stored["queue"] == "info"
    assert stored[fingerprint_labels({"title": "Only a title"})] == "error"


def test_a_resend_is_counted_and_a_resolve_resolves(doors):
    key = doors["generic"].key
    post(url(key), ALERT)
    assert post(url(key), ALERT).json()["results"] == {"resent": 1}
    assert post(url(key), {**ALERT, "status": "resolved"}).json()["results"] == {"resolved": 1}
    alert = Alert.objects.get()
    assert (alert.status, alert.occurrences) == ("resolved", 2)
    assert event_kinds() == ["alert.firing", "alert.resolved"]


def test_a_bad_alert_in_a_batch_stores_nothing(doors):
    body = {
        "alerts": [
            ALERT,
            {"title": "x", "severity": "apocalyptic"},
            {"title": "y", "labels": {"host": ["a"]}, "status": "maybe"},
            {"details": {"a": 1}},
            "not an alert",
        ]
    }
    response = post(url(doors["generic"].key), body)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {
        "alerts[1].severity",
        "alerts[2].labels.host",
        "alerts[2].status",
        "alerts[3]",
        "alerts[4]",
    }
    assert fields["alerts[3]"] == ["needs a title, labels or a fingerprint to identify the alert"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": 5}, "title"),
        ({"title": "x", "details": [1]}, "details"),
        ({"title": "x", "links": "https://x"}, "links"),
        ({"title": "x", "links": [{"text": "no href"}]}, "links[0].href"),
        ({"title": "x", "starts_at": "2024-05-01T12:00:00"}, "starts_at"),
        ({"alerts": "many"}, "alerts"),
    ],
)
def test_an_invalid_field_is_named(doors, body, field):
    response = post(url(doors["generic"].key), body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert_nothing_stored()


def test_json_that_is_not_an_object_is_refused(doors):
    response = post(url(doors["generic"].key), "alert!")
    assert response.status_code == 400
    assert "Expected a JSON object" in response.json()["error"]["message"]


def test_nan_and_nul_are_refused(doors):
    key = doors["generic"].key
    nan = post(url(key), raw='{"title": "x", "details": {"v": NaN}}')
    nul = post(url(key), raw='{"title": "x\\u0000"}')
    assert (nan.status_code, nul.status_code) == (400, 400)
    assert nan.json()["error"]["code"] == "parse_error"
    assert_nothing_stored()
