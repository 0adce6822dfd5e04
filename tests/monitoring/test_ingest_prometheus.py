"""POST /ingest/prometheus/…/api/v2/alerts: Prometheus talking to us as to an Alertmanager."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert
from monitoring.pipeline import fingerprint_labels
from tests.monitoring.ingest_support import (
    assert_nothing_stored,
    bearer,
    event_kinds,
    fixture,
    post,
)

pytestmark = pytest.mark.django_db

LABELS = {"alertname": "HighLatency", "instance": "api-1:9100", "job": "api", "severity": "page"}


def url(key: str = "") -> str:
    return f"/ingest/prometheus/{key}/api/v2/alerts" if key else "/ingest/prometheus/api/v2/alerts"


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def prometheus_alert(ends_in: timedelta = timedelta(minutes=4), **overrides) -> dict:
    """What Prometheus sends: endsAt in the future while firing, renewed on every send."""
    now = timezone.now()
    return {
        "labels": dict(LABELS),
        "annotations": {"summary": "p99 latency above 2s", "runbook_url": "https://rb/latency"},
        "startsAt": iso(now - timedelta(minutes=10)),
        "endsAt": iso(now + ends_in),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
        **overrides,
    }


def test_it_stores_a_firing_alert_and_answers_like_alertmanager(doors):
    response = post(url(doors["prometheus"].key), [prometheus_alert()])
    assert response.status_code == 200
    assert response.content == b""
    alert = Alert.objects.get()
    assert (alert.status, alert.severity, alert.source) == ("firing", "critical", "prometheus")
    assert alert.fingerprint == fingerprint_labels(LABELS)
    assert alert.labels == LABELS
    assert alert.summary == "p99 latency above 2s"
    assert alert.ends_at is None  # a future endsAt is Prometheus's expiry guess, not an end
    assert alert.links == [{"href": "https://rb/latency", "text": "Runbook"}]
    assert event_kinds() == ["alert.firing"]


def test_it_accepts_the_key_as_a_bearer_token(doors):
    response = post(url(), [prometheus_alert()], **bearer(doors["prometheus"].key))
    assert response.status_code == 200
    assert Alert.objects.count() == 1


def test_each_evaluation_resend_only_counts(doors):
    key = doors["prometheus"].key
    post(url(key), [prometheus_alert()])
    post(url(key), [prometheus_alert(ends_in=timedelta(minutes=5))])  # a new endsAt each time
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert event_kinds() == ["alert.firing"]


def test_an_ends_at_in_the_past_resolves(doors):
    key = doors["prometheus"].key
    post(url(key), [prometheus_alert()])
    post(url(key), [prometheus_alert(ends_in=-timedelta(seconds=30))])
    alert = Alert.objects.get()
    assert alert.status == "resolved"
    assert alert.ends_at < timezone.now()
    assert event_kinds() == ["alert.firing", "alert.resolved"]


def test_an_alert_without_ends_at_is_firing(doors):
    item = prometheus_alert()
    del item["endsAt"]
    post(url(doors["prometheus"].key), [item])
    assert Alert.objects.get().status == "firing"


def test_the_webhook_fixture_alerts_are_accepted(doors):
    """Alertmanager's own alerts array (zero endsAt, fingerprint) is API v2 shaped too."""
    alerts = fixture("alertmanager-webhook-v4.json")["alerts"]
    assert post(url(doors["prometheus"].key), alerts).status_code == 200
    assert Alert.objects.get().status == "firing"


def test_a_bad_alert_stores_nothing_and_names_its_index(doors):
    response = post(
        url(doors["prometheus"].key),
        [prometheus_alert(), prometheus_alert(labels={}), prometheus_alert(endsAt=12)],
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"[1].labels", "[2].endsAt"}
    assert_nothing_stored()


def test_an_object_instead_of_an_array_is_refused(doors):
    response = post(url(doors["prometheus"].key), {"alerts": [prometheus_alert()]})
    assert response.status_code == 400
    assert "JSON array" in response.json()["error"]["message"]
    assert_nothing_stored()


def test_a_generic_key_is_not_a_prometheus_key(doors):
    response = post(url(doors["generic"].key), [prometheus_alert()])
    assert response.status_code == 404
    assert_nothing_stored()
