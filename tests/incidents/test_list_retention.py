"""Retention of resolved alerts: old ones go in batches, what incidents still show stays, and the
event log keeps their history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident, IncidentAlert
from monitoring.models import Alert, Service
from monitoring.retention import prunable, prune_resolved_alerts, retention_days
from tocsin.events import record
from tocsin.models import Event
from tocsin.scheduling import registered

DAY = timedelta(days=1)


@pytest.fixture
def now():
    return timezone.now()


def alert(service: Service, name: str, *, status: str, changed_days_ago: float, now) -> Alert:
    at = now - changed_days_ago * DAY
    return Alert.objects.create(
        team_id=service.team_id,
        service=service,
        source="test",
        fingerprint=name,
        status=status,
        summary=name,
        content_hash="0" * 64,
        starts_at=at - timedelta(minutes=5),
        ends_at=at if status == "resolved" else None,
        last_change_at=at,
    )


def incident(service: Service, name: str, *, resolved_days_ago: float | None, now) -> Incident:
    return Incident.objects.create(
        team_id=service.team_id,
        service=service,
        title=name,
        status="triggered" if resolved_days_ago is None else "resolved",
        created_at=now - 90 * DAY,
        resolved_at=None if resolved_days_ago is None else now - resolved_days_ago * DAY,
        group_key=name,
    )


def link(incident: Incident, alert: Alert) -> IncidentAlert:
    return IncidentAlert.objects.create(incident=incident, alert=alert)


def test_old_resolved_alerts_go_and_what_is_needed_stays(service, now):
    old = alert(service, "old", status="resolved", changed_days_ago=45, now=now)
    recent = alert(service, "recent", status="resolved", changed_days_ago=3, now=now)
    stale_firing = alert(service, "stale-firing", status="firing", changed_days_ago=200, now=now)
    of_open = alert(service, "of-open", status="resolved", changed_days_ago=60, now=now)
    link(incident(service, "open", resolved_days_ago=None, now=now), of_open)
    of_recent = alert(service, "of-recent", status="resolved", changed_days_ago=60, now=now)
    link(incident(service, "recently-resolved", resolved_days_ago=10, now=now), of_recent)
    of_old = alert(service, "of-old", status="resolved", changed_days_ago=80, now=now)
    long_ago = incident(service, "long-resolved", resolved_days_ago=70, now=now)
    link(long_ago, of_old)
    record(
        "alert.resolved",
        team=service.team_id,
        subject=of_old,
        subject_label=of_old.summary,
        payload=of_old.event_payload(),
    )

    deleted = prune_resolved_alerts(now, days=30)

    assert deleted == 2
    assert set(Alert.objects.values_list("fingerprint", flat=True)) == {
        "recent",
        "stale-firing",
        "of-open",
        "of-recent",
    }
    assert not Alert.objects.filter(pk__in=[old.pk, of_old.pk]).exists()
    # The incident stays, without the link; the event log still tells the alert's story.
    assert Incident.objects.filter(pk=long_ago.pk).exists()
    assert not IncidentAlert.objects.filter(incident=long_ago).exists()
    event = Event.objects.get(kind="alert.resolved", subject_id=str(of_old.pk))
    assert event.payload["summary"] == "of-old"
    assert recent.pk and stale_firing.pk


def test_retention_runs_in_batches_and_stops_after_its_share(service, now):
    for i in range(7):
        alert(service, f"old-{i}", status="resolved", changed_days_ago=40 + i, now=now)

    assert prune_resolved_alerts(now, days=30, batch_size=2, max_batches=2) == 4
    assert Alert.objects.count() == 3
    assert prune_resolved_alerts(now, days=30, batch_size=2) == 3
    assert Alert.objects.count() == 0
    assert prune_resolved_alerts(now, days=30, batch_size=2) == 0


def test_zero_days_keeps_every_alert(service, now, settings):
    alert(service, "ancient", status="resolved", changed_days_ago=3000, now=now)

    assert prune_resolved_alerts(now, days=0) == 0
    settings.TOCSIN_ALERT_RETENTION_DAYS = 0
    assert prune_resolved_alerts(now) == 0
    settings.TOCSIN_ALERT_RETENTION_DAYS = 30
    assert prune_resolved_alerts(now) == 1


def test_the_default_is_30_days_and_the_pruning_is_scheduled_hourly(service, now):
    alert(service, "29-days", status="resolved", changed_days_ago=29, now=now)
    alert(service, "31-days", status="resolved", changed_days_ago=31, now=now)

    assert retention_days() == 30
    assert list(prunable(now - 30 * DAY).values_list("fingerprint", flat=True)) == ["31-days"]
    task = {t.name: t for t in registered()}["monitoring.prune_resolved_alerts"]
    assert (task.func, task.minutes) == ("monitoring.retention.prune_resolved_alerts", 60)
