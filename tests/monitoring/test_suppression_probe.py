"""The pipeline asks once, in one statement, whether anything may mute a batch: with nothing
to mute it reads no silence, window or rule; with one of them it still finds it (on the edges
of its time range, on every database)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import Alert, InhibitionRule, MaintenanceWindow, Silence
from monitoring.pipeline import AlertInput, process

# Microseconds on purpose: SQLite compares times as text, and a probe that wrote them in
# another form than Django stores them would be off at the edges.
NOW = datetime(2026, 11, 29, 12, 30, 15, 250_000, tzinfo=UTC)
SUPPRESSION_TABLES = ("monitoring_silence", "monitoring_maintenancewindow", "monitoring_inhibit")


def fire(service, name: str = "DiskFull", **labels: str) -> Alert:
    item = AlertInput(labels={"alertname": name, **labels})
    process(service, [item], source="test", now=NOW)
    return Alert.objects.get(service=service, fingerprint=item.get_fingerprint())


def suppression_statements(service, name: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        fire(service, name)
    return [
        q["sql"]
        for q in captured.captured_queries
        if any(t in q["sql"] for t in SUPPRESSION_TABLES)
    ]


def silence(service, starts_at: datetime, ends_at: datetime) -> Silence:
    return Silence.objects.create(
        team=service.team,
        matchers=[{"name": "alertname", "op": "=", "value": "DiskFull"}],
        starts_at=starts_at,
        ends_at=ends_at,
    )


def test_with_nothing_to_mute_a_batch_asks_once(service):
    [probe] = suppression_statements(service, "First")
    assert all(table in probe for table in SUPPRESSION_TABLES)


def test_a_silence_or_rule_is_still_loaded_when_there_is_one(service):
    silence(service, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    statements = suppression_statements(service, "Other")
    assert len(statements) == 2  # the probe, then the team's silences (no window, no rule read)
    assert "monitoring_silence" in statements[1]


@pytest.mark.parametrize(
    ("starts", "ends", "muted"),
    [
        (timedelta(0), timedelta(microseconds=1), True),  # starts this very microsecond
        (-timedelta(hours=1), timedelta(microseconds=1), True),  # ends a microsecond later
        (-timedelta(hours=1), timedelta(0), False),  # ended this very microsecond
        (timedelta(microseconds=1), timedelta(hours=1), False),  # starts a microsecond later
        (-timedelta(seconds=15, microseconds=250_000), timedelta(hours=1), True),  # whole second
    ],
)
def test_a_silence_at_the_edges_of_its_time(service, starts, ends, muted):
    silence(service, NOW + starts, NOW + ends)
    assert (fire(service).suppression == "silenced") is muted


def test_an_open_maintenance_window_and_a_recurring_one_mute(service, other_service):
    MaintenanceWindow.objects.create(
        service=service, title="Upgrade", starts_at=NOW, ends_at=NOW + timedelta(minutes=5)
    )
    assert fire(service).suppression == "maintenance"
    # Recurring: every day at 12:00 UTC for an hour (no ends_at, checked in Python).
    MaintenanceWindow.objects.create(
        service=other_service,
        title="Nightly",
        weekdays=list(range(7)),
        start_time=time(12, 0),
        duration=timedelta(hours=1),
        time_zone="UTC",
    )
    assert fire(other_service).suppression == "maintenance"


def test_a_window_that_ended_or_belongs_to_another_service_mutes_nothing(service, other_service):
    MaintenanceWindow.objects.create(
        service=service, title="Done", starts_at=NOW - timedelta(hours=1), ends_at=NOW
    )
    MaintenanceWindow.objects.create(
        service=other_service, title="Theirs", starts_at=NOW, ends_at=NOW + timedelta(hours=1)
    )
    assert fire(service).suppression == ""


def test_only_an_enabled_inhibition_rule_inhibits(service):
    rule = InhibitionRule.objects.create(
        team=service.team,
        name="DB down mutes the API",
        source_matchers=[{"name": "alertname", "op": "=", "value": "DatabaseDown"}],
        target_matchers=[{"name": "alertname", "op": "=", "value": "DiskFull"}],
        enabled=False,
    )
    fire(service, "DatabaseDown")
    assert fire(service, host="a").suppression == ""
    rule.enabled = True
    rule.save()
    assert fire(service, host="b").suppression == "inhibited"
