"""The probe scheduler: claims from rows (never a slot twice, none lost to a killed worker),
gaps recorded as unknown without a burst, locations, concurrency, constant claim queries."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from probes.checks import scheduler
from probes.checks.choices import LEASE
from probes.checks.inflight import PACE
from probes.checks.models import CheckState, Result, ResultStatus, Slot
from probes.conditions import condition
from probes.conditions.parser import parse_tree
from tests.probes import test_check_target as support
from tests.probes.test_check_target import down_alert, due_at, make_check, step
from tocsin.duework import DueWorkLoop
from tocsin.models import Event
from tocsin.scheduling import due_work
from tocsin.wake import Sleeper

service, target = support.service, support.target  # fixtures


def latest_due(checks) -> object:
    return max(due_at(check) for check in checks)


def test_two_workers_never_claim_the_same_slot(service, target):
    checks = [make_check(service, target, name=f"c{i}") for i in range(5)]
    now = latest_due(checks)

    token_a, first = scheduler.claim(now)
    _token_b, second = scheduler.claim(now)  # the other worker, a moment later

    assert len(first) == 5 and second == []
    outcomes = scheduler.run_sync(lambda: scheduler.run_slots(first, now))
    assert all(scheduler.record(s, token_a, o, now) for s, o in zip(first, outcomes, strict=True))
    assert Result.objects.count() == 5
    assert scheduler.run_batch(now) == 0


def test_a_killed_worker_loses_no_slot_and_none_runs_twice(service, target):
    check = make_check(service, target)
    slot_time = due_at(check)
    _token, [_claimed] = scheduler.claim(slot_time)  # ... and this worker is killed here

    assert scheduler.run_batch(slot_time + timedelta(seconds=30)) == 0  # still leased
    assert scheduler.run_batch(slot_time + LEASE) == 1  # retaken after the lease

    ran = Result.objects.get(probe=check, status=ResultStatus.UP)
    assert ran.slot_at == slot_time  # the killed worker's slot, run once
    gap = Result.objects.get(probe=check, status=ResultStatus.UNKNOWN)
    assert gap.slots == int(LEASE.total_seconds() // 60)  # the slots the outage swallowed
    assert Result.objects.count() == 2


def test_a_worker_whose_lease_ran_out_stores_nothing(service, target):
    check = make_check(service, target)
    slot_time = due_at(check)
    slow_token, [slow] = scheduler.claim(slot_time)
    assert scheduler.run_batch(slot_time + LEASE) == 1  # another worker retook and ran it

    outcome = scheduler.run_sync(lambda: scheduler.run_slots([slow], slot_time))[0]

    assert scheduler.record(slow, slow_token, outcome, slot_time + LEASE) is False
    assert Result.objects.filter(probe=check, slot_at=slot_time).count() == 1


def test_a_gap_is_recorded_as_unknown_and_no_burst_of_late_runs_follows(service, target):
    check = make_check(service, target)
    step(check)
    missed_from = due_at(check)
    back = missed_from + timedelta(hours=1)  # the prober was down for an hour

    assert scheduler.run_batch(back) == 1

    gap = Result.objects.get(probe=check, status=ResultStatus.UNKNOWN)
    assert gap.slots == 60
    assert gap.started_at == missed_from + timedelta(seconds=60)
    assert scheduler.run_batch(back + timedelta(seconds=1)) == 0  # no burst
    assert back + timedelta(seconds=60) <= due_at(check) <= back + timedelta(seconds=62)
    check.refresh_from_db()
    assert check.state == CheckState.UP  # the gap is not the target's downtime


def test_claiming_costs_the_same_queries_for_one_slot_or_twenty(service, target):
    counts = []
    for n in (1, 20):
        checks = [make_check(service, target, name=f"{n}-{i}") for i in range(n)]
        now = latest_due(checks)
        with CaptureQueriesContext(connection) as queries:
            _token, claimed = scheduler.claim(now)
        assert len(claimed) == n
        counts.append(len(queries))
        Slot.objects.update(next_run_at=None)  # out of the way for the next round

    assert counts[0] == counts[1]


def test_a_worker_claims_only_its_location_and_any_location(service, target):
    anywhere = make_check(service, target, name="anywhere")
    placed = make_check(service, target, name="placed", locations=["eu", "us"])
    now = latest_due([anywhere, placed])

    assert scheduler.run_batch(now, location="asia") == 1  # only the check that runs anywhere
    assert scheduler.run_batch(now, location="eu") == 1
    assert scheduler.run_batch(now, location="us") == 1
    assert set(Result.objects.filter(probe=placed).values_list("location", flat=True)) == {
        "eu",
        "us",
    }


def test_down_when_n_of_its_locations_fail(service, target):
    check = make_check(
        service, target, locations=["eu", "us"], down_when_failing=2, failure_threshold=1
    )
    target.set(503)
    now = due_at(check)
    scheduler.run_batch(now, location="eu")
    check.refresh_from_db()
    assert check.state == CheckState.DEGRADED  # one place of two fails: not down
    assert down_alert(check) is None

    scheduler.run_batch(now, location="us")
    check.refresh_from_db()
    assert check.state == CheckState.DOWN
    assert down_alert(check) is not None


def test_a_hanging_target_fails_on_its_own_timeout_and_the_others_run(service, target, http_server):
    hanging = make_check(
        service, target, name="hangs", config={"url": http_server.url("/slow/5")}, timeout=0.5
    )
    fine = [make_check(service, target, name=f"fine {i}") for i in range(3)]

    assert scheduler.run_batch(latest_due([hanging, *fine])) == 4

    hung = Result.objects.get(probe=hanging)
    assert hung.status == ResultStatus.DOWN
    assert "timed out" in hung.error
    assert (
        list(Result.objects.exclude(probe=hanging).values_list("status", flat=True)) == ["up"] * 3
    )


def test_the_due_work_loop_sleeps_until_the_next_slot(service, target):
    loop = DueWorkLoop(works=[w for w in due_work() if w.name == "checks"])
    check = make_check(service, target)
    due = due_at(check)

    assert loop.run_once(now=due - timedelta(seconds=1)) == (0, due)
    started, _ = loop.run_once(now=due)  # starts the run on the probes' event loop
    assert started == 1
    scheduler.drain()  # what a stopping worker does: wait for the runs in flight, record them

    assert Result.objects.get(probe=check).status == ResultStatus.UP
    assert scheduler.next_due() == due_at(check) > due


def test_the_loop_comes_back_to_record_runs_in_flight_when_nothing_else_is_due(service, target):
    loop = DueWorkLoop(works=[w for w in due_work() if w.name == "checks"], listener=Sleeper())
    check = make_check(service, target)
    Slot.objects.filter(probe=check).update(next_run_at=timezone.now())
    try:
        started, _ = loop.run_once()
        assert started == 1
        for _ in range(200):  # passes as the worker makes them, each at its own "now"
            started, earliest = loop.run_once()
            if started:
                break
            time.sleep(loop.sleep_for(started, earliest))
        assert Result.objects.get(probe=check).status == ResultStatus.UP  # recorded, not drained
    finally:
        scheduler.drain()


def test_the_loop_claims_a_pace_ahead_and_starts_each_run_at_its_slot(service, target):
    soon = make_check(service, target, name="soon")
    later = make_check(service, target, name="later")
    now = timezone.now()
    Slot.objects.filter(probe=soon).update(next_run_at=now + PACE / 2)
    Slot.objects.filter(probe=later).update(next_run_at=now + PACE * 4)
    try:
        assert scheduler.run_due(now) == 1  # only the slot due within a pace
    finally:
        scheduler.drain()

    ran = Result.objects.get(probe=soon)
    assert ran.slot_at == ran.started_at == now + PACE / 2  # run for its slot, at its time
    assert not Result.objects.filter(probe=later).exists()
    assert Slot.objects.get(probe=later).next_run_at == now + PACE * 4


def test_the_loop_records_finished_runs_while_a_hanging_one_is_in_flight(
    service, target, http_server
):
    hanging = make_check(
        service, target, name="hangs", config={"url": http_server.url("/slow/3")}, timeout=2
    )
    fine = make_check(service, target, name="fine")
    now = latest_due([hanging, fine])
    assert scheduler.run_due(now) == 2  # both started

    while not Result.objects.filter(probe=fine).exists():
        scheduler.run_due(now)  # records what finished; the hanging run stays in flight

    assert not Result.objects.filter(probe=hanging).exists()  # it waits for its 2 s timeout
    assert Slot.objects.get(probe=hanging).claimed_by  # still claimed, in flight
    scheduler.drain()
    assert Result.objects.get(probe=hanging).status == ResultStatus.DOWN


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_run_each_slot_once(crew, target):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    from monitoring.models import Service

    service = Service.objects.create(team=crew.team, name="Shop")
    checks = [make_check(service, target, name=f"c{i}") for i in range(30)]
    now = latest_due(checks)
    barrier = threading.Barrier(3)
    counts: list[int] = []

    def worker() -> None:
        try:
            barrier.wait()
            counts.append(scheduler.run_batch(now))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 30
    assert Result.objects.count() == 30


def test_a_duplicate_result_releases_the_claim_instead_of_retrying_forever(service, target):
    check = make_check(service, target)
    slot_time = due_at(check)
    token, [slot] = scheduler.claim(slot_time)
    Result.objects.create(
        probe=check, slot_at=slot_time, started_at=slot_time, status=ResultStatus.UP
    )
    outcome = scheduler.run_sync(lambda: scheduler.run_slots([slot], slot_time))[0]

    assert scheduler.record(slot, token, outcome, slot_time) is False

    slot.refresh_from_db()
    assert (slot.claimed_by, slot.slot_at) == ("", None)
    assert slot.next_run_at == slot_time + timedelta(seconds=60)


def test_editing_a_check_keeps_the_claim_of_a_run_in_flight(service, target):
    from probes.checks import services

    check = make_check(service, target)
    slot_time = due_at(check)
    token, [slot] = scheduler.claim(slot_time)

    services.update_check(check, config={"url": target.url("/other")})

    outcome = scheduler.run_sync(lambda: scheduler.run_slots([slot], slot_time))[0]
    assert scheduler.record(slot, token, outcome, slot_time) is True
    assert Result.objects.filter(probe=check, slot_at=slot_time).count() == 1


def test_recording_a_batch_costs_the_same_statements_for_one_slot_or_five(service, target):
    checks = [make_check(service, target, name=f"c{i}") for i in range(6)]
    for check in checks:  # a first verdict each, so the next runs change nothing
        step(check)
    costs = []
    for batch in (checks[:1], checks[1:]):
        now = latest_due(batch)
        with CaptureQueriesContext(connection) as queries:
            assert scheduler.run_batch(now, only=[c.pk for c in batch]) == len(batch)
        costs.append(len(queries))

    assert costs[0] == costs[1]
    # claim (select, update, read back), then one transaction: lock the checks, lock their
    # slots, insert the results, update the slots, update the checks; a savepoint pair each
    # (the test runs in a transaction)
    assert costs[1] == 3 + 5 + 2 * 2


def test_a_batch_in_which_every_check_changes_state_costs_the_same_statements(service, target):
    """A fleet that comes up (or goes down) together: each change is an event naming the
    check's team, and the teams are read once for the batch, not once per check."""
    checks = [make_check(service, target, name=f"c{i}") for i in range(6)]
    costs = []
    for batch in (checks[:1], checks[1:]):  # each check's first run: its first verdict
        now = latest_due(batch)
        with CaptureQueriesContext(connection) as queries:
            assert scheduler.run_batch(now, only=[c.pk for c in batch]) == len(batch)
        costs.append(len(queries))

    assert costs[0] == costs[1]
    moved = Event.objects.filter(kind="check.state_changed")
    assert sorted(moved.values_list("payload__check_id", flat=True)) == [c.pk for c in checks]
    assert set(moved.values_list("team_id", flat=True)) == {service.team_id}


def test_a_checks_conditions_are_parsed_when_first_seen_not_on_every_run(
    service, target, monkeypatch
):
    parsed = []

    def counting_parse_tree(text):
        parsed.append(text)
        return parse_tree(text)

    monkeypatch.setattr(condition, "parse_tree", counting_parse_tree)
    text = "[RESPONSE_TIME] < 4321"  # a text no other test uses: not parsed yet
    check = make_check(service, target, conditions=["[STATUS] == 200", text])
    for _ in range(3):
        assert step(check)[0] == 1

    assert parsed.count(text) == 1
    assert check.state == CheckState.UP


def test_a_batch_with_a_duplicate_records_the_others_and_releases_the_duplicate(service, target):
    checks = [make_check(service, target, name=f"c{i}") for i in range(3)]
    now = latest_due(checks)
    token, slots = scheduler.claim(now)
    taken = slots[1]
    Result.objects.create(
        probe_id=taken.probe_id, slot_at=taken.slot_at, started_at=now, status=ResultStatus.UP
    )
    outcomes = scheduler.run_sync(lambda: scheduler.run_slots(slots, now))

    runs = [(slot, token, outcome, now) for slot, outcome in zip(slots, outcomes, strict=True)]
    assert scheduler.record_many(runs) == 2

    assert Result.objects.count() == 3  # the two runs and the result that was there
    assert set(Slot.objects.values_list("claimed_by", flat=True)) == {""}
    assert Slot.objects.get(pk=taken.pk).slot_at is None
