"""The alert pipeline: dedup, state changes, events, flapping, cheap re-sends."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.models import Alert, AlertStatus, Severity
from monitoring.pipeline import AlertInput, Result, fingerprint_labels, process
from tocsin.models import Event

LABELS = {"alertname": "HighLatency", "instance": "api-1", "severity": "critical"}


def firing(**overrides) -> AlertInput:
    return AlertInput(labels=dict(LABELS), severity=Severity.CRITICAL, **overrides)


def kinds() -> list[str]:
    """The pipeline's own events (incidents add theirs in the same transaction)."""
    alert_events = Event.objects.filter(kind__startswith="alert.").order_by("id")
    return list(alert_events.values_list("kind", flat=True))


def test_fingerprint_ignores_label_order():
    assert fingerprint_labels({"a": "1", "b": "2"}) == fingerprint_labels({"b": "2", "a": "1"})
    assert fingerprint_labels({"a": "1"}) != fingerprint_labels({"a": "2"})


def test_fingerprints_stay_what_earlier_versions_stored():
    """Stored alerts are found again by fingerprint: a new way of computing it must give the
    same digests (sha256 over each name and value followed by 0xff, sorted by name)."""
    assert fingerprint_labels({}) == "e3b0c44298fc1c14"
    labels = {"job": "node", "alertname": "HostDown", "instance": "db-1:9100"}
    assert fingerprint_labels(labels) == "3b64d6872241f725"
    assert fingerprint_labels({"ü": "✓ é", "n": 5}) == "4393f528d3035560"


def test_a_new_alert_is_stored_and_recorded(service):
    [outcome] = process(service, [firing()], source="alertmanager")
    assert outcome.result == Result.CREATED
    alert = Alert.objects.get()
    assert (alert.status, alert.severity, alert.summary) == ("firing", "critical", "HighLatency")
    assert alert.team_id == service.team_id
    event = Event.objects.get(kind__startswith="alert.")
    assert (event.kind, event.team_id, event.subject_type) == (
        "alert.firing",
        service.team_id,
        "alert",
    )
    assert event.payload["fingerprint"] == alert.fingerprint


def test_identical_resends_only_count(service, django_assert_num_queries):
    process(service, [firing()], source="alertmanager")
    with django_assert_num_queries(2):  # read the batch, bump the re-sends: no event, no lock
        outcomes = process(service, [firing(), firing()], source="alertmanager")
    assert [o.result for o in outcomes] == [Result.RESENT]
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert kinds() == ["alert.firing"]


def test_a_resend_larger_than_one_statement_takes_renews_every_alert(service):
    # Read and renewed in plain SQL, 1,000 values per statement: 1,001 alerts take two of each.
    burst = [AlertInput(labels={"alertname": "HostDown", "host": f"h{i}"}) for i in range(1001)]
    process(service, burst, source="alertmanager")
    later = timezone.now() + timedelta(minutes=5)
    expected_end = later + timedelta(minutes=4)
    for item in burst:
        item.expected_end_at = expected_end
    outcomes = process(service, burst, source="alertmanager", now=later)
    assert {o.result for o in outcomes} == {Result.RESENT} and len(outcomes) == 1001
    renewed = Alert.objects.filter(service=service, occurrences=2, last_seen_at=later)
    assert renewed.filter(expected_end_at=expected_end).count() == 1001


def test_a_changed_resend_updates_and_records(service):
    process(service, [firing()], source="alertmanager")
    [outcome] = process(
        service, [firing(annotations={"summary": "p99 above 2s"})], source="alertmanager"
    )
    assert outcome.result == Result.UPDATED
    assert Alert.objects.get().summary == "p99 above 2s"
    assert kinds() == ["alert.firing", "alert.updated"]


def test_resolve_then_refire_reuses_the_row(service):
    process(service, [firing()], source="alertmanager")
    process(service, [firing(status=AlertStatus.RESOLVED)], source="alertmanager")
    alert = Alert.objects.get()
    assert alert.status == "resolved" and alert.ends_at is not None
    [outcome] = process(service, [firing()], source="alertmanager")
    assert outcome.result == Result.REFIRED
    alert.refresh_from_db()
    assert (alert.status, alert.fired_count, alert.ends_at) == ("firing", 2, None)
    assert kinds() == ["alert.firing", "alert.resolved", "alert.refired"]


def test_resolving_an_unknown_alert_stores_nothing(service):
    [outcome] = process(service, [firing(status=AlertStatus.RESOLVED)], source="alertmanager")
    assert outcome.result == Result.IGNORED
    assert not Alert.objects.exists()
    assert not Event.objects.exists()


def test_a_repeated_resolve_is_ignored(service):
    process(service, [firing()], source="alertmanager")
    process(service, [firing(status=AlertStatus.RESOLVED)], source="alertmanager")
    [outcome] = process(service, [firing(status=AlertStatus.RESOLVED)], source="alertmanager")
    assert outcome.result == Result.IGNORED
    assert kinds() == ["alert.firing", "alert.resolved"]


def test_the_last_word_in_a_batch_wins(service):
    outcomes = process(
        service, [firing(), firing(status=AlertStatus.RESOLVED)], source="alertmanager"
    )
    assert [o.result for o in outcomes] == [Result.IGNORED]
    assert not Alert.objects.exists()


def test_flapping_is_detected_once(service):
    start = timezone.now()
    for i in range(3):
        now = start + timedelta(minutes=i)
        process(service, [firing()], source="am", now=now)
        process(service, [firing(status=AlertStatus.RESOLVED)], source="am", now=now)
    alert = Alert.objects.get()
    assert alert.is_flapping
    assert kinds().count("alert.flapping") == 1


def test_alerts_far_apart_are_not_flapping(service):
    start = timezone.now()
    for i in range(3):
        now = start + timedelta(hours=i)
        process(service, [firing()], source="am", now=now)
        process(service, [firing(status=AlertStatus.RESOLVED)], source="am", now=now)
    assert not Alert.objects.get().is_flapping


def test_an_acknowledge_is_recorded_once(service):
    process(service, [firing()], source="events_v2")
    [first] = process(service, [firing(acknowledge=True)], source="events_v2")
    [again] = process(service, [firing(acknowledge=True)], source="events_v2")
    assert (first.result, again.result) == (Result.ACKNOWLEDGED, Result.IGNORED)
    assert Alert.objects.get().acknowledged_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_failed_batch_item_leaves_no_half_state(service, monkeypatch):
    import monitoring.models.alerts as alerts

    def boom(*args, **kwargs):
        raise RuntimeError("event log unavailable")

    monkeypatch.setattr(alerts, "record_many", boom)
    with pytest.raises(RuntimeError):
        process(service, [firing()], source="alertmanager")
    assert not Alert.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_batches_sharing_alerts_in_opposite_orders_do_not_deadlock(service):
    # Two web processes, each with a batch that changes one shared alert and re-sends the other,
    # in opposite orders: each takes the rows' locks in id order first, so one waits for the
    # other (without that, each held one row and waited for the other's: a deadlock, a 500).
    x = {"alertname": "Shared", "host": "x"}
    y = {"alertname": "Shared", "host": "y"}
    process(service, [AlertInput(labels=x), AlertInput(labels=y)], source="alertmanager")
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def sender(first: dict, second: dict, name: str) -> None:
        try:
            start.wait()
            for i in range(30):
                changed = AlertInput(labels=first, annotations={"by": f"{name}{i}"})
                process(service, [changed, AlertInput(labels=second)], source="alertmanager")
        except BaseException as exc:  # a deadlock surfaces here
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=sender, args=(x, y, "a")),
        threading.Thread(target=sender, args=(y, x, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert sum(Alert.objects.filter(service=service).values_list("occurrences", flat=True)) == 122


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_dedup_lookup_probes_the_unique_index_even_with_stale_statistics(
    service, other_service
):
    # A storm on a quiet service: the statistics were taken when the table held another
    # service's alerts and none of this one's, then thousands came. As "service_id = %s AND
    # fingerprint = ANY(%s)" the planner believed this service had no alerts and read them all
    # through a service index for every batch.
    from django.test.utils import CaptureQueriesContext

    from monitoring.models.alerts import rows_by_fingerprint

    def storm(target, n: int, name: str) -> None:
        alerts = [AlertInput(labels={"alertname": name, "i": str(i)}) for i in range(n)]
        process(target, alerts, source="alertmanager")

    storm(other_service, 2000, "Quiet")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_alert")
    storm(service, 3000, "Storm")
    wanted = [
        AlertInput(labels={"alertname": "Storm", "i": str(i)}).get_fingerprint() for i in (7, 8)
    ]
    with CaptureQueriesContext(connection) as captured:
        found = rows_by_fingerprint(service.pk, [*wanted, "not-there"])
    assert set(found) == set(wanted)
    [query] = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
        [[plan]] = cursor.fetchone()

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    # Index scans name the table; bitmap index scans (which the planner may pick for a probe
    # when the statistics say the table is empty) name only the index.
    alert_indexes = {
        name
        for name, c in connection.introspection.get_constraints(
            connection.cursor(), "monitoring_alert"
        ).items()
        if c["index"] or c["unique"]
    }
    scans = [
        n
        for n in nodes(plan["Plan"])
        if n.get("Relation Name") == "monitoring_alert" or n.get("Index Name") in alert_indexes
    ]
    shown = json.dumps(plan, indent=1)
    assert scans, shown
    # Each fingerprint is one probe of the unique index; no scan reads alerts it then drops.
    assert any(n.get("Index Name") == "alert_unique_service_fingerprint" for n in scans), shown
    assert all(n.get("Actual Rows", 0) <= 3 for n in scans), shown
    assert all(n.get("Rows Removed by Filter", 0) == 0 for n in scans), shown
    assert all(n.get("Rows Removed by Index Recheck", 0) == 0 for n in scans), shown
