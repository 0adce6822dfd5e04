"""A firing alert's expected end (Prometheus' endsAt): resolved when it passes without a re-send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert
from monitoring.pipeline import EXPIRY_ACTOR, expire_alerts
from tests.monitoring.ingest_support import event_kinds, fixture, post
from tocsin.models import Event
from tocsin.scheduling import registered

pytestmark = pytest.mark.django_db

LABELS = {"alertname": "HighLatency", "instance": "api-1:9100"}


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def prometheus_send(key: str, ends_at) -> None:
    body = [
        {
            "labels": LABELS,
            "annotations": {"summary": "p99 latency above 2s"},
            "startsAt": iso(timezone.now() - timedelta(minutes=5)),
            "endsAt": iso(ends_at),
        }
    ]
    response = post(f"/ingest/prometheus/{key}/api/v2/alerts", body)
    assert response.status_code == 200, response.content


def test_prometheus_endsat_is_kept_as_the_expected_end(doors):
    ends = timezone.now() + timedelta(minutes=4)
    prometheus_send(doors["prometheus"].key, ends)
    alert = Alert.objects.get()
    assert alert.status == "firing"
    assert alert.ends_at is None
    assert abs(alert.expected_end_at - ends) < timedelta(seconds=1)


def test_an_alert_whose_sender_stopped_resolves_at_its_expected_end(doors):
    ends = timezone.now() + timedelta(minutes=4)
    prometheus_send(doors["prometheus"].key, ends)
    assert expire_alerts(now=ends - timedelta(seconds=1)) == 0
    assert Alert.objects.get().status == "firing"

    assert expire_alerts(now=ends + timedelta(seconds=30)) == 1
    alert = Alert.objects.get()
    assert alert.status == "resolved"
    assert abs(alert.ends_at - ends) < timedelta(seconds=1)  # resolved at endsAt, as Alertmanager
    assert alert.expected_end_at is None
    assert event_kinds() == ["alert.firing", "alert.resolved"]
    resolved = Event.objects.get(kind="alert.resolved")
    assert resolved.actor_label == EXPIRY_ACTOR
    assert expire_alerts(now=ends + timedelta(minutes=5)) == 0  # once


def test_a_resend_moves_the_expected_end_forward(doors):
    key = doors["prometheus"].key
    first_end = timezone.now() + timedelta(minutes=4)
    prometheus_send(key, first_end)
    later_end = first_end + timedelta(minutes=4)
    prometheus_send(key, later_end)  # an identical re-send: the cheap path
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert abs(alert.expected_end_at - later_end) < timedelta(seconds=1)

    assert expire_alerts(now=first_end + timedelta(seconds=30)) == 0
    assert Alert.objects.get().status == "firing"
    assert expire_alerts(now=later_end + timedelta(seconds=30)) == 1


def test_alertmanagers_zero_endsat_means_no_expected_end(doors):
    body = fixture("alertmanager-webhook-v4.json")
    response = post(f"/ingest/alertmanager/{doors['alertmanager'].key}/", body)
    assert response.status_code == 200, response.content
    assert all(alert.expected_end_at is None for alert in Alert.objects.all())
    assert expire_alerts(now=timezone.now() + timedelta(days=365)) == 0
    assert not Alert.objects.filter(status="resolved").exists()


def test_a_generic_firing_alert_with_a_future_ends_at_expires_too(doors):
    ends = timezone.now() + timedelta(minutes=10)
    body = {"title": "Backup overdue", "labels": {"job": "backup"}, "ends_at": iso(ends)}
    response = post(f"/ingest/generic/{doors['generic'].key}/", body)
    assert response.status_code == 200, response.content
    assert expire_alerts(now=ends + timedelta(seconds=1)) == 1
    assert Alert.objects.get().status == "resolved"


def test_expiry_runs_every_minute_from_the_scheduler():
    tasks = {task.name: task for task in registered()}
    assert tasks["monitoring.expire_alerts"].func == "monitoring.pipeline.expire_alerts"
    assert tasks["monitoring.expire_alerts"].minutes == 1
