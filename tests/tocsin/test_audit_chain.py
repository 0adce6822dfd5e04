"""The audit chain: the sealer chains every event per team, and ``manage.py audit verify``
finds an event changed, deleted or inserted behind Tocsin's back (raw SQL, as an attacker with
database access would), with a non-zero exit status."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import declared_payload, team_test_event
from tocsin.audit import chain
from tocsin.audit.verify import verify
from tocsin.events import NewEvent, record, record_many
from tocsin.models import AuditAnchor, AuditHead, Event


@pytest.fixture(autouse=True)
def _no_margin(settings):
    settings.TOCSIN_AUDIT_SEAL_MARGIN = 0
    settings.TOCSIN_AUDIT_KEY = "test-audit-key"


def write(crew, n=3, team=None):
    with transaction.atomic():
        return [team_test_event(team or crew.team, actor=crew.manager) for _ in range(n)]


def system_event():
    with transaction.atomic():
        return record("team.test", team=None, payload=declared_payload("team.test"))


def run_verify(*args):
    out = StringIO()
    try:
        call_command("audit", "verify", "--json", *args, stdout=out)
    except CommandError as error:
        return False, json.loads(out.getvalue()), str(error)
    return True, json.loads(out.getvalue()), ""


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_sealing_chains_each_team_in_id_order(crew):
    first = write(crew, 2)
    other = write(crew, 1, team=crew.other_team)
    lone = system_event()
    later = write(crew, 1)
    assert chain.seal() == 5
    rows = {e.pk: e for e in Event.objects.all()}
    team_chain = [rows[e.pk] for e in [*first, *later]]
    assert [e.seq for e in team_chain] == [1, 2, 3]
    assert team_chain[0].prev_hash == chain.GENESIS
    assert [e.prev_hash for e in team_chain[1:]] == [e.hash for e in team_chain[:-1]]
    assert rows[other[0].pk].seq == 1 and rows[lone.pk].seq == 1
    heads = {h.chain: (h.seq, h.event_id) for h in AuditHead.objects.all()}
    assert heads == {
        crew.team.pk: (3, later[0].pk),
        crew.other_team.pk: (1, other[0].pk),
        chain.SYSTEM_CHAIN: (1, lone.pk),
    }
    assert verify().ok


def test_sealing_is_idempotent_and_continues_the_chains(crew):
    write(crew, 2)
    assert chain.seal() == 2
    hashes = list(Event.objects.order_by("id").values_list("hash", flat=True))
    assert chain.seal() == 0
    assert list(Event.objects.order_by("id").values_list("hash", flat=True)) == hashes
    write(crew, 1)
    assert chain.seal() == 1
    assert list(Event.objects.order_by("id").values_list("seq", flat=True)) == [1, 2, 3]
    assert verify().ok


def test_events_younger_than_the_margin_wait(crew, settings):
    settings.TOCSIN_AUDIT_SEAL_MARGIN = 60
    write(crew, 2)
    assert chain.seal() == 0
    assert chain.seal(timezone.now() + timedelta(seconds=61)) == 2


def test_the_hash_depends_on_the_key(crew, settings):
    write(crew, 1)
    chain.seal()
    assert verify().ok
    settings.TOCSIN_AUDIT_KEY = "another-key"
    # The event's seal and the anchor's digest: neither can be forged without the key.
    assert verify().by_kind() == {"modified": 1, "anchor": 1}


def test_verify_passes_on_an_intact_log(crew):
    write(crew, 3)
    system_event()
    chain.seal()
    ok, report, _ = run_verify()
    assert ok and report["problems"] == [] and report["checked"] == 4


def test_verify_detects_a_modified_event(crew):
    events = write(crew, 3)
    chain.seal()
    raw("UPDATE tocsin_event SET actor_label = %s WHERE id = %s", ["someone-else", events[1].pk])
    ok, report, error = run_verify()
    assert not ok and "broken" in error
    assert [(p["kind"], p["event"]) for p in report["problems"]] == [("modified", events[1].pk)]


def test_verify_detects_a_modified_payload(crew):
    events = write(crew, 2)
    chain.seal()
    raw(
        "UPDATE tocsin_event SET payload = %s WHERE id = %s",
        [json.dumps({"forged": True}), events[0].pk],
    )
    ok, report, _ = run_verify()
    assert not ok
    assert [(p["kind"], p["event"]) for p in report["problems"]] == [("modified", events[0].pk)]


def test_verify_detects_a_deleted_event(crew):
    events = write(crew, 3)
    chain.seal()
    raw("DELETE FROM tocsin_event WHERE id = %s", [events[1].pk])
    ok, report, _ = run_verify()
    assert not ok
    assert [(p["kind"], p["event"]) for p in report["problems"]] == [("deleted", events[2].pk)]


def test_verify_detects_the_last_event_deleted(crew):
    events = write(crew, 3)
    chain.seal()
    raw("DELETE FROM tocsin_event WHERE id = %s", [events[2].pk])
    ok, report, _ = run_verify()
    assert not ok
    # The chain's head and the anchor both remember how far it went.
    assert {(p["kind"], p["chain"]) for p in report["problems"]} == {
        ("deleted", crew.team.pk),
        ("anchor", crew.team.pk),
    }


def _insert_copy(event, *, id=None, created_at=None):
    """A plausible row: a copy of a real event, as someone with SQL access would forge it."""
    row = Event.objects.values(
        "team_id", "kind", "subject_type", "subject_id", "subject_label", "actor_label"
    ).get(pk=event.pk)
    columns = ["created_at", *row, "payload"]
    values = [created_at or event.created_at, *row.values(), json.dumps(event.payload)]
    if id is not None:
        columns.insert(0, "id")
        values.insert(0, id)
    marks = ", ".join(["%s"] * len(values))
    raw(f"INSERT INTO tocsin_event ({', '.join(columns)}) VALUES ({marks})", values)


def test_verify_detects_an_event_inserted_inside_the_sealed_range(crew):
    events = write(crew, 3)
    # A gap in the ids (a rolled-back transaction leaves one on PostgreSQL): fill it later.
    raw("DELETE FROM tocsin_event WHERE id = %s", [events[1].pk])
    chain.seal()
    assert verify().ok
    _insert_copy(events[0], id=events[1].pk)
    assert chain.seal() == 0  # nothing after the sealed range
    ok, report, _ = run_verify()
    assert not ok
    assert [(p["kind"], p["event"]) for p in report["problems"]] == [("inserted", events[1].pk)]


def test_verify_detects_a_back_dated_event_even_once_sealed(crew):
    events = write(crew, 3)
    chain.seal()
    # Forged to sit among the first events, then sealed by the schedule like any other.
    _insert_copy(events[0], created_at=events[0].created_at - timedelta(hours=1))
    later = write(crew, 1)
    # The forged row and a real one after it (written two hours on) are both sealed.
    raw(
        "UPDATE tocsin_event SET created_at = %s WHERE id = %s",
        [timezone.now() + timedelta(hours=2), later[0].pk],
    )
    assert chain.seal(timezone.now() + timedelta(hours=3)) == 2
    report = verify()
    inserted = [p for p in report.problems if p.kind == "inserted"]
    assert [p.event_id for p in inserted] == [later[0].pk - 1]


def test_verify_detects_a_forged_chain_position(crew):
    events = write(crew, 2)
    chain.seal()
    head = Event.objects.get(pk=events[1].pk)
    # Copy the last event's seal onto a forged row: same position, same hash.
    _insert_copy(events[1])
    forged = Event.objects.order_by("-id").first()
    raw(
        "UPDATE tocsin_event SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
        [head.seq, head.prev_hash, head.hash, forged.pk],
    )
    report = verify()
    assert {(p.kind, p.event_id) for p in report.problems} >= {("inserted", forged.pk)}
    assert not report.ok


def test_an_anchor_catches_a_chain_rewritten_without_the_heads(crew, settings):
    events = write(crew, 2)
    chain.seal()
    first, last = Event.objects.filter(pk__in=[e.pk for e in events]).order_by("id")
    assert AuditAnchor.objects.get().heads == {str(crew.team.pk): [2, last.hash, last.pk]}
    # Delete the last event and move the chain's head back to hide it.
    raw("DELETE FROM tocsin_event WHERE id = %s", [last.pk])
    raw("UPDATE tocsin_audithead SET seq = 1, hash = %s, event_id = %s", [first.hash, first.pk])
    assert {p.kind for p in verify().problems} == {"anchor"}


def test_anchors_are_logged_and_not_written_more_often_than_configured(crew, caplog):
    write(crew, 1)
    with caplog.at_level("INFO", logger="tocsin.audit.anchor"):
        chain.seal()
    line = next(r.getMessage() for r in caplog.records if r.name == "tocsin.audit.anchor")
    anchor = AuditAnchor.objects.get()
    assert anchor.digest in line and f'"sealed_through":{anchor.sealed_through}' in line
    write(crew, 1)
    chain.seal()
    assert AuditAnchor.objects.count() == 1  # the next one after TOCSIN_AUDIT_ANCHOR_MINUTES
    chain.seal(timezone.now() + timedelta(minutes=11))
    assert AuditAnchor.objects.count() == 2


def test_writing_events_costs_no_extra_query(crew):
    """The hot path inserts events as before: one INSERT for a batch, whatever its size."""
    for n in (1, 50):
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            record_many(
                [
                    NewEvent("team.test", crew.team, payload=declared_payload("team.test"))
                    for _ in range(n)
                ]
            )
        inserts = [q["sql"] for q in queries.captured_queries if "tocsin_event" in q["sql"]]
        assert len(inserts) == 1
        assert "tocsin_audit" not in " ".join(q["sql"] for q in queries.captured_queries)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        team_test_event(crew.team)
    assert sum("tocsin_event" in q["sql"] for q in queries.captured_queries) == 1


def test_sealing_costs_a_fixed_number_of_queries(crew):
    write(crew, 5)
    write(crew, 5, team=crew.other_team)
    with CaptureQueriesContext(connection) as small:
        chain.seal()
    write(crew, 50)
    write(crew, 50, team=crew.other_team)
    with CaptureQueriesContext(connection) as large:
        chain.seal(timezone.now() + timedelta(minutes=11))
    assert len(large.captured_queries) <= len(small.captured_queries) + 1


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_with_a_lower_id_is_not_lost_nor_a_false_alarm(crew, settings):
    """On PostgreSQL ids are drawn at INSERT and seen at COMMIT: the margin keeps the sealer
    behind every transaction still open; without it, the late event would be reported."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    settings.TOCSIN_AUDIT_SEAL_MARGIN = 60
    inserted, release = threading.Event(), threading.Event()
    slow: list[Event] = []

    def slow_writer():
        try:
            with transaction.atomic():
                slow.append(team_test_event(crew.team))
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inserted.wait(10)
    fast = write(crew, 1)[0]
    assert fast.pk > slow[0].pk
    assert chain.seal() == 0  # the fast event is younger than the margin: it waits
    release.set()
    thread.join()
    assert chain.seal(timezone.now() + timedelta(seconds=61)) == 2
    assert verify().ok
    sealed = dict(Event.objects.values_list("id", "seq"))
    assert sealed[slow[0].pk] == 1 and sealed[fast.pk] == 2
