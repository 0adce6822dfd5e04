"""tocsin.db.bulk.insert stores exactly what bulk_create stores, in one statement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from monitoring.models import Alert, Service, Suppression
from tocsin.db import bulk
from tocsin.models import Event

WHEN = datetime(2025, 3, 30, 1, 30, 15, 123456, tzinfo=UTC)


def alerts(service: Service, prefix: str, n: int) -> list[Alert]:
    return [
        Alert(
            team_id=service.team_id,
            service=service,
            source="test",
            fingerprint=f"{prefix}-{i}",
            status="firing",
            summary=f"Disk full on host-{i} ✓",
            labels={"alertname": "DiskFull", "host": f"host-{i}", "note": 'quote " and ü'},
            annotations={"runbook": "https://example.org/r"},
            details={"nested": {"list": [1, 2.5, None, True]}},
            links=[{"href": "https://example.org", "text": "dash"}],
            content_hash="h" * 64,
            starts_at=WHEN,
            first_seen_at=WHEN,
            last_seen_at=WHEN,
            last_change_at=WHEN,
            recent_changes=[WHEN.isoformat()],
        )
        for i in range(n)
    ]


def stored(prefix: str) -> list[dict]:
    rows = Alert.objects.filter(fingerprint__startswith=f"{prefix}-").order_by("fingerprint")
    return [
        {k: v for k, v in row.items() if k not in ("id", "fingerprint")} for row in rows.values()
    ]


def test_it_stores_what_bulk_create_stores_and_sets_the_keys(crew):
    service = Service.objects.create(team=crew.team, name="Bulk")
    ours, theirs = alerts(service, "ours", 30), alerts(service, "theirs", 30)
    with CaptureQueriesContext(connection) as captured:
        bulk.insert(ours)
    assert len(captured.captured_queries) == 1
    Alert.objects.bulk_create(theirs)
    assert stored("ours") == stored("theirs")
    assert [a.pk for a in ours] == list(
        Alert.objects.filter(fingerprint__startswith="ours-")
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert all(not a._state.adding for a in ours)


def test_events_keep_their_payload_and_time(crew):
    event = Event(kind="team.test", team=crew.team, payload={"ü": [1, {"a": None}]})
    bulk.insert([event])
    fresh = Event.objects.get(pk=event.pk)
    assert fresh.payload == {"ü": [1, {"a": None}]}
    assert fresh.created_at == event.created_at


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_raises_and_stores_nothing(crew):
    service = Service.objects.create(team=crew.team, name="Dupes")
    bulk.insert(alerts(service, "dup", 2))
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert(alerts(service, "dup", 3))  # dup-0 and dup-1 exist
    assert Alert.objects.filter(service=service).count() == 2


def test_skipping_conflicts_stores_the_new_rows_and_returns_only_those(crew):
    service = Service.objects.create(team=crew.team, name="Racing")
    theirs = alerts(service, "race", 2)
    bulk.insert(theirs[:1])  # another process stored race-0 a moment ago
    mine = alerts(service, "race", 3)
    with CaptureQueriesContext(connection) as captured:
        kept = bulk.insert(mine, skip_conflicts=("service_id", "fingerprint"))
    assert [a.fingerprint for a in kept] == ["race-1", "race-2"]
    assert mine[0].pk is None and all(a.pk for a in kept)
    assert {a.pk for a in kept} == set(
        Alert.objects.filter(fingerprint__in=["race-1", "race-2"]).values_list("pk", flat=True)
    )
    assert Alert.objects.filter(fingerprint="race-0").get().pk == theirs[0].pk
    # One statement, no savepoint: the transaction goes on as if nothing happened.
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["INSERT"]


def test_rows_without_instances_store_what_bulk_create_stores(crew):
    service = Service.objects.create(team=crew.team, name="Rows")
    theirs = alerts(service, "theirs", 3)
    Alert.objects.bulk_create(theirs)
    fields = [f.attname for f in Alert._meta.concrete_fields if not f.primary_key]
    rows = [{name: getattr(a, name) for name in fields} for a in alerts(service, "ours", 3)]
    for row in rows:  # fields left out get their defaults
        del row["occurrences"]
    bulk.insert_rows(Alert, rows[1:2])  # another process stored ours-1 a moment ago
    with CaptureQueriesContext(connection) as captured:
        bulk.insert_rows(Alert, rows, skip_conflicts=("service_id", "fingerprint"))
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["INSERT"]
    assert stored("ours") == stored("theirs")


def test_update_stores_what_bulk_update_stores_in_one_statement(crew):
    service = Service.objects.create(team=crew.team, name="Bulk")
    ours, theirs = alerts(service, "ours", 30), alerts(service, "theirs", 30)
    bulk.insert(ours)
    bulk.insert(theirs)
    later = WHEN.replace(hour=3)
    fields = ["status", "summary", "labels", "last_seen_at", "ends_at"]
    for number, alert in enumerate([*ours, *theirs]):
        alert.status = "resolved"
        alert.summary = f"Recovered ✓ {number % 30}"
        alert.labels = {**alert.labels, "seen": [number % 30, None]}
        alert.last_seen_at = later
        alert.ends_at = later if number % 2 else None

    with CaptureQueriesContext(connection) as captured:
        bulk.update(ours, fields)
    assert len(captured.captured_queries) == 1
    Alert.objects.bulk_update(theirs, fields)

    assert stored("ours") == stored("theirs")
    assert Alert.objects.filter(fingerprint__startswith="ours-", status="resolved").count() == 30
    with CaptureQueriesContext(connection) as nothing:
        bulk.update([], fields)
    assert nothing.captured_queries == []


def test_json_values_orjson_would_write_differently_are_stored_as_json_dumps_writes_them(crew):
    """On PostgreSQL the JSON goes through orjson; what it refuses or would write otherwise
    (integer keys, integers past 64 bits, TextChoices) is stored exactly as before."""
    payloads = [
        {"1": "int keys become strings", 2: "two"},
        {"big": 2**70, "negative": -(2**65)},
        {"status": Alert.status.field.choices[0][0], "suppression": Suppression.SILENCED},
        {"float": 0.1, "exp": 1e300, "unicode": "ü\u2028✓", "nested": [[[]], {}]},
    ]
    ours = [Event(kind="team.test", team=crew.team, payload=p) for p in payloads]
    theirs = [Event(kind="team.test", team=crew.team, payload=p) for p in payloads]
    bulk.insert(ours)
    Event.objects.bulk_create(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert Event.objects.get(pk=mine.pk).payload == Event.objects.get(pk=reference.pk).payload
    assert Event.objects.get(pk=ours[0].pk).payload == {"1": "int keys become strings", "2": "two"}


def test_a_value_json_cannot_encode_still_raises_type_error(crew):
    with pytest.raises(TypeError):
        bulk.insert([Event(kind="team.test", team=crew.team, payload={"when": WHEN})])


def test_not_a_number_is_refused_as_before_never_stored_as_null(crew):
    """orjson writes NaN as null; json.dumps writes NaN, which every database's JSON refuses
    (PostgreSQL's jsonb, SQLite's JSON_VALID check): refused as before, never a null stored."""
    payload = {"value": float("nan"), "none": None}
    with pytest.raises((DataError, IntegrityError)), transaction.atomic():
        bulk.insert([Event(kind="team.test", team=crew.team, payload=payload)])
    assert not Event.objects.filter(kind="team.test").exists()
    # A plain null is stored as a null.
    bulk.insert([Event(kind="team.test", team=crew.team, payload={"none": None})])
    assert Event.objects.get(kind="team.test").payload == {"none": None}


def test_a_batch_sends_each_json_column_as_one_document_and_keeps_every_value_in_its_row(crew):
    """On PostgreSQL a JSON column of many rows goes as one jsonb array, split back in order;
    every value is stored as bulk_create stores it, whatever orjson makes of it."""
    payloads = [
        {"n": 0, "text": "null"},  # the string "null" stays a string
        {"n": 1, "nested": [None, {"k": None}], "empty": [[], {}]},
        {"n": 2, 3: "an integer key"},  # orjson refuses: the column goes value by value
        {"n": 3, "big": 2**70},
        {"n": 4, "unicode": "ü\u2028✓ \" ' \\ \u0001"},
    ]
    ours = [Event(kind="team.test", team=crew.team, payload=p) for p in payloads]
    theirs = [Event(kind="team.test", team=crew.team, payload=p) for p in payloads]
    with CaptureQueriesContext(connection) as captured:
        bulk.insert(ours)
    [statement] = captured.captured_queries
    if connection.vendor == "postgresql":
        assert "jsonb_array_elements" in statement["sql"]
    Event.objects.bulk_create(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert Event.objects.get(pk=mine.pk).payload == Event.objects.get(pk=reference.pk).payload
    assert [Event.objects.get(pk=e.pk).payload["n"] for e in ours] == [0, 1, 2, 3, 4]
    assert Event.objects.get(pk=ours[0].pk).payload == {"n": 0, "text": "null"}


def test_a_batch_with_not_a_number_in_one_row_stores_none_of_it(crew):
    payloads = [{"value": 1.5}, {"value": float("inf")}, {"value": None}]
    with pytest.raises((DataError, IntegrityError)), transaction.atomic():
        bulk.insert([Event(kind="team.test", team=crew.team, payload=p) for p in payloads])
    assert not Event.objects.filter(kind="team.test").exists()


def test_a_batch_of_alerts_stores_its_json_columns_row_by_row(crew):
    service = Service.objects.create(team=crew.team, name="Bulk JSON")
    ours = alerts(service, "ours", 3)
    for i, alert in enumerate(ours):
        alert.labels = {**alert.labels, "row": str(i)}
        alert.links = [] if i == 1 else alert.links
    bulk.insert(ours)
    rows = {a.fingerprint: a for a in Alert.objects.filter(service=service)}
    for i in range(3):
        alert = rows[f"ours-{i}"]
        assert alert.labels["row"] == str(i)
        assert alert.links == ([] if i == 1 else [{"href": "https://example.org", "text": "dash"}])
        assert alert.details == {"nested": {"list": [1, 2.5, None, True]}}


def test_a_json_column_too_large_for_one_document_goes_value_by_value(crew, monkeypatch):
    """One jsonb value holds at most 256 MiB; a column past the limit is sent as before."""
    monkeypatch.setattr(bulk, "MAX_JSON_DOCUMENT", 40)
    payloads = [{"n": i, "text": "x" * 30} for i in range(3)]
    ours = [Event(kind="team.test", team=crew.team, payload=p) for p in payloads]
    with CaptureQueriesContext(connection) as captured:
        bulk.insert(ours)
    [statement] = captured.captured_queries
    assert "jsonb_array_elements" not in statement["sql"]
    assert [Event.objects.get(pk=e.pk).payload for e in ours] == payloads
