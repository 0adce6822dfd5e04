"""POST /ingest/grafana/: Grafana's webhook contact point, version 1."""

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

GRAFANA = "grafana-webhook.json"


def url(key: str = "") -> str:
    return f"/ingest/grafana/{key}/" if key else "/ingest/grafana/"


def test_it_stores_a_firing_alert(doors):
    door = doors["grafana"]
    response = post(url(door.key), fixture(GRAFANA))
    assert response.status_code == 200
    assert response.json()["results"] == {"created": 1}
    alert = Alert.objects.get()
    assert (alert.status, alert.severity, alert.source) == ("firing", "error", "grafana")
    assert alert.fingerprint == "c6eadffa33fcdf37"
    assert alert.summary == "This alert was triggered for zone us-1"
    assert alert.description == "The system has high memory usage"
    assert alert.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert alert.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.details == {"values": {"B": 44.23943737541908, "C": 1}}
    texts = {link["text"]: link["href"] for link in alert.links}
    assert texts["Runbook"] == "https://myrunbook.com/runbook/1234"
    assert texts["Silence"].startswith("https://play.grafana.org/alerting/silence/new")
    assert "Dashboard" not in texts and "Panel" not in texts  # sent empty
    assert alert.generator_url == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert event_kinds() == ["alert.firing"]


def test_it_accepts_the_key_as_a_bearer_token(doors):
    response = post(url(), fixture(GRAFANA), **bearer(doors["grafana"].key))
    assert response.status_code == 200
    assert Alert.objects.count() == 1


def test_older_grafana_value_string_goes_into_details(doors):
    body = fixture(GRAFANA)
    alert = body["alerts"][0]
    del alert["values"]
    alert["valueString"] = "[ var='B' labels={} value=44.2 ]"
    alert["dashboardURL"] = "https://play.grafana.org/d/abc"
    alert["panelURL"] = "https://play.grafana.org/d/abc?viewPanel=2"
    post(url(doors["grafana"].key), body)
    stored = Alert.objects.get()
    assert stored.details == {"valueString": "[ var='B' labels={} value=44.2 ]"}
    texts = {link["text"] for link in stored.links}
    assert {"Dashboard", "Panel", "Silence"} <= texts


def test_the_severity_label_is_mapped(doors):
    body = fixture(GRAFANA)
    body["alerts"][0]["labels"]["severity"] = "minor"
    post(url(doors["grafana"].key), body)
    assert Alert.objects.get().severity == "warning"


def test_it_ignores_resend(doors):
    key = doors["grafana"].key
    post(url(key), fixture(GRAFANA))
    response = post(url(key), fixture(GRAFANA))
    assert response.json()["results"] == {"resent": 1}
    assert Alert.objects.get().occurrences == 2
    assert event_kinds() == ["alert.firing"]


def test_new_values_update_the_alert(doors):
    key = doors["grafana"].key
    post(url(key), fixture(GRAFANA))
    body = fixture(GRAFANA)
    body["alerts"][0]["values"] = {"B": 51.0, "C": 1}
    assert post(url(key), body).json()["results"] == {"updated": 1}
    assert Alert.objects.get().details["values"]["B"] == 51.0


def test_it_resolves(doors):
    key = doors["grafana"].key
    post(url(key), fixture(GRAFANA))
    body = fixture(GRAFANA)
    body["status"], body["state"] = "resolved", "ok"
    body["alerts"][0].update(status="resolved", endsAt="2021-10-12T10:01:03+02:00")
    assert post(url(key), body).json()["results"] == {"resolved": 1}
    alert = Alert.objects.get()
    assert alert.status == "resolved"
    assert alert.ends_at == datetime(2021, 10, 12, 8, 1, 3, tzinfo=UTC)
    assert event_kinds() == ["alert.firing", "alert.resolved"]


def test_a_batch_with_a_bad_alert_stores_nothing(doors):
    body = fixture(GRAFANA)
    good = body["alerts"][0]
    body["alerts"] = [good, {**good, "fingerprint": "d1", "values": [1, 2]}]
    response = post(url(doors["grafana"].key), body)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["alerts[1].values"]
    assert_nothing_stored()


def test_an_alertmanager_body_version_is_refused(doors):
    body = fixture(GRAFANA)
    body["version"] = "4"
    response = post(url(doors["grafana"].key), body)
    assert response.status_code == 400
    assert "version" in response.json()["error"]["fields"]
    assert_nothing_stored()


def test_an_alertmanager_key_is_not_a_grafana_key(doors):
    response = post(url(doors["alertmanager"].key), fixture(GRAFANA))
    assert response.status_code == 404
    assert_nothing_stored()
