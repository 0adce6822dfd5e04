"""Heartbeat alerting: missing, failed (with tolerance), too long, too short, too often; each
raised through the monitoring pipeline and resolved by a good ping. Time is driven with ``now``.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from monitoring.models import Alert, AlertStatus, Service
from probes.heartbeats import evaluation, services
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, PingKind, Problem
from probes.heartbeats.services import PingData
from tocsin.duework import DueWorkLoop
from tocsin.models import Event
from tocsin.scheduling import due_work

T0 = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


@pytest.fixture
def heartbeat(service) -> Heartbeat:
    return Heartbeat.objects.create(
        service=service, name="Backup", slug="backup", period=3600, grace=600
    )


def ping(
    heartbeat: Heartbeat,
    at: datetime,
    kind: str = PingKind.SUCCESS,
    *,
    rid: uuid.UUID | None = None,
    exit_status: int | None = None,
) -> float | None:
    """Ping as the endpoint does (locked, in a transaction); returns the ping's duration."""
    with transaction.atomic():
        locked = services.lock_by_uuid(heartbeat.uuid)
        recorded = services.record_ping(
            locked, PingData(kind=kind, rid=rid, exit_status=exit_status), now=at
        )
    heartbeat.refresh_from_db()
    return recorded.duration


def alert(heartbeat: Heartbeat, problem: str) -> Alert | None:
    return Alert.objects.filter(
        service=heartbeat.service, fingerprint=f"heartbeat:{heartbeat.pk}:{problem}"
    ).first()


def firing(heartbeat: Heartbeat) -> set[str]:
    names = Alert.objects.filter(service=heartbeat.service, status=AlertStatus.FIRING)
    return {a.labels["alertname"] for a in names}


# -- on time and late ---
def test_a_job_on_time_raises_nothing(heartbeat):
    ping(heartbeat, T0)
    ping(heartbeat, T0 + timedelta(minutes=58))

    assert heartbeat.next_due_at == T0 + timedelta(minutes=58 + 60 + 10)
    assert evaluation.run_due(T0 + timedelta(minutes=80)) == 0  # the first deadline has moved
    assert not Alert.objects.exists()
    assert heartbeat.get_status(T0 + timedelta(minutes=100)) == HeartbeatStatus.UP


def test_a_new_heartbeat_expects_nothing_before_its_first_ping(heartbeat):
    assert heartbeat.next_due_at is None
    assert evaluation.run_due(T0 + timedelta(days=30)) == 0
    assert heartbeat.status == HeartbeatStatus.NEW


def test_it_is_late_within_the_grace_and_missing_after_it(heartbeat):
    ping(heartbeat, T0)
    deadline = T0 + timedelta(minutes=70)

    assert heartbeat.get_status(T0 + timedelta(minutes=65)) == HeartbeatStatus.LATE
    assert evaluation.run_due(deadline - timedelta(seconds=1)) == 0
    assert not Alert.objects.exists()

    assert evaluation.run_due(deadline) == 1

    missing = alert(heartbeat, Problem.MISSING)
    assert missing.status == AlertStatus.FIRING
    assert missing.labels == {
        "alertname": "HeartbeatMissing",
        "heartbeat": "backup",
        "service": heartbeat.service.slug,
    }
    assert "expected by 2025-06-02 13:00 UTC" in missing.summary
    assert "grace 10 min" in missing.summary
    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.DOWN
    assert heartbeat.next_due_at is None  # nothing more to find until it pings


def test_the_next_ping_resolves_the_missing_alert(heartbeat):
    ping(heartbeat, T0)
    evaluation.run_due(T0 + timedelta(minutes=70))

    ping(heartbeat, T0 + timedelta(minutes=90))

    assert alert(heartbeat, Problem.MISSING).status == AlertStatus.RESOLVED
    assert heartbeat.status == HeartbeatStatus.UP
    assert heartbeat.next_due_at == T0 + timedelta(minutes=90 + 70)


def test_the_due_work_loop_wakes_for_the_deadline_and_alerts_within_30_seconds(heartbeat):
    loop = DueWorkLoop(works=[w for w in due_work() if w.name == "heartbeats"])
    ping(heartbeat, T0)
    deadline = T0 + timedelta(minutes=70)

    started, earliest = loop.run_once(now=T0 + timedelta(minutes=1))
    assert (started, earliest) == (0, deadline)  # the loop sleeps until exactly then

    started, _ = loop.run_once(now=deadline + timedelta(seconds=1))

    assert started == 1
    assert firing(heartbeat) == {"HeartbeatMissing"}


# -- failures ---
def test_fail_raises_at_once_and_a_success_resolves_it(heartbeat):
    ping(heartbeat, T0, PingKind.FAIL)

    failed = alert(heartbeat, Problem.FAILED)
    assert failed.status == AlertStatus.FIRING
    assert failed.summary == "Backup failed."
    assert heartbeat.status == HeartbeatStatus.DOWN

    ping(heartbeat, T0 + timedelta(minutes=5))

    failed.refresh_from_db()
    assert failed.status == AlertStatus.RESOLVED
    assert heartbeat.status == HeartbeatStatus.UP


def test_a_non_zero_exit_status_is_a_failure_that_names_the_status(heartbeat):
    ping(heartbeat, T0, exit_status=3)

    assert alert(heartbeat, Problem.FAILED).summary == "Backup failed with exit status 3."
    assert heartbeat.last_exit_status == 3

    ping(heartbeat, T0 + timedelta(minutes=1), exit_status=0)
    assert alert(heartbeat, Problem.FAILED).status == AlertStatus.RESOLVED


def test_a_failure_also_counts_as_checking_in(heartbeat):
    heartbeat.failures_before_alert = 3
    heartbeat.save()
    ping(heartbeat, T0, PingKind.FAIL)

    assert evaluation.run_due(T0 + timedelta(minutes=69)) == 0
    assert heartbeat.next_due_at == T0 + timedelta(minutes=70)
    assert not Alert.objects.exists()


def test_it_alerts_only_after_n_failures_in_a_row(heartbeat):
    heartbeat.failures_before_alert = 3
    heartbeat.save()

    ping(heartbeat, T0, PingKind.FAIL)
    ping(heartbeat, T0 + timedelta(minutes=1), PingKind.FAIL)
    assert not Alert.objects.exists()
    assert heartbeat.status == HeartbeatStatus.UP

    ping(heartbeat, T0 + timedelta(minutes=2), PingKind.FAIL)
    assert alert(heartbeat, Problem.FAILED).summary == "Backup failed (3 failures in a row)."

    ping(heartbeat, T0 + timedelta(minutes=3))
    assert alert(heartbeat, Problem.FAILED).status == AlertStatus.RESOLVED


def test_a_success_between_failures_starts_the_count_again(heartbeat):
    heartbeat.failures_before_alert = 2
    heartbeat.save()

    for minute, kind in enumerate([PingKind.FAIL, PingKind.SUCCESS, PingKind.FAIL]):
        ping(heartbeat, T0 + timedelta(minutes=minute), kind)

    assert not Alert.objects.exists()


def test_a_failure_share_over_a_window_alerts_and_resolves_when_it_drops(heartbeat):
    heartbeat.failure_percent, heartbeat.failure_window = 50, 4
    heartbeat.save()
    outcomes = "ssf"  # 1 of 3
    for minute, outcome in enumerate(outcomes):
        ping(heartbeat, T0 + timedelta(minutes=minute), "success" if outcome == "s" else "fail")
    assert not Alert.objects.exists()

    ping(heartbeat, T0 + timedelta(minutes=10), PingKind.FAIL)  # s s f f: 2 of 4
    failed = alert(heartbeat, Problem.FAILED)
    assert failed.status == AlertStatus.FIRING
    assert "2 of the last 4 runs failed (50 %" in failed.summary

    ping(heartbeat, T0 + timedelta(minutes=11))  # s f f s: still half
    failed.refresh_from_db()
    assert failed.status == AlertStatus.FIRING
    ping(heartbeat, T0 + timedelta(minutes=12))  # f f s s
    ping(heartbeat, T0 + timedelta(minutes=13))  # f s s s: 25 %
    failed.refresh_from_db()
    assert failed.status == AlertStatus.RESOLVED


# -- run times and frequency ---
def test_a_run_past_its_maximum_time_alerts_and_a_good_run_resolves_it(heartbeat):
    heartbeat.max_runtime = 300
    heartbeat.save()
    ping(heartbeat, T0, PingKind.START)
    assert heartbeat.next_due_at == T0 + timedelta(seconds=300)

    assert evaluation.run_due(T0 + timedelta(seconds=299)) == 0
    assert evaluation.run_due(T0 + timedelta(seconds=300)) == 1
    too_long = alert(heartbeat, Problem.TOO_LONG)
    assert too_long.labels["alertname"] == "HeartbeatRunTooLong"
    assert "has not finished within its maximum run time of 5 min" in too_long.summary

    ping(heartbeat, T0 + timedelta(seconds=400))  # finished, but this run was too long
    too_long.refresh_from_db()
    assert too_long.status == AlertStatus.FIRING
    assert "ran for 6 min 40 s" in heartbeat.problems[Problem.TOO_LONG]

    ping(heartbeat, T0 + timedelta(hours=1), PingKind.START)
    ping(heartbeat, T0 + timedelta(hours=1, seconds=60))
    too_long.refresh_from_db()
    assert too_long.status == AlertStatus.RESOLVED


def test_the_maximum_run_time_is_separate_from_the_grace(heartbeat):
    heartbeat.max_runtime = 120  # the grace is 10 minutes
    heartbeat.save()
    ping(heartbeat, T0)
    ping(heartbeat, T0 + timedelta(minutes=30), PingKind.START)

    evaluation.run_due(T0 + timedelta(minutes=32))

    assert firing(heartbeat) == {"HeartbeatRunTooLong"}


def test_a_run_faster_than_its_minimum_alerts(heartbeat):
    heartbeat.min_runtime = 60
    heartbeat.save()
    ping(heartbeat, T0, PingKind.START)
    ping(heartbeat, T0 + timedelta(seconds=5))

    too_short = alert(heartbeat, Problem.TOO_SHORT)
    assert too_short.labels["alertname"] == "HeartbeatRunTooShort"
    assert too_short.summary == (
        "Backup finished in 5 s, faster than its minimum run time of 1 min."
    )

    ping(heartbeat, T0 + timedelta(hours=1), PingKind.START)
    ping(heartbeat, T0 + timedelta(hours=1, minutes=2))
    too_short.refresh_from_db()
    assert too_short.status == AlertStatus.RESOLVED


def test_succeeding_more_often_than_allowed_alerts(heartbeat):
    heartbeat.too_often = 1800
    heartbeat.save()
    ping(heartbeat, T0)
    ping(heartbeat, T0 + timedelta(minutes=10))

    too_often = alert(heartbeat, Problem.TOO_OFTEN)
    assert too_often.labels["alertname"] == "HeartbeatTooOften"
    assert "succeeded 10 min after its previous success" in too_often.summary

    ping(heartbeat, T0 + timedelta(minutes=45))
    too_often.refresh_from_db()
    assert too_often.status == AlertStatus.RESOLVED


# -- durations ---
def test_run_ids_pair_overlapping_runs_with_their_own_starts(heartbeat):
    first, second = uuid.uuid4(), uuid.uuid4()
    ping(heartbeat, T0, PingKind.START, rid=first)
    ping(heartbeat, T0 + timedelta(seconds=10), PingKind.START, rid=second)

    assert ping(heartbeat, T0 + timedelta(seconds=100), rid=first) == 100.0
    assert heartbeat.last_start_at == T0 + timedelta(seconds=10)  # the second is still open
    assert ping(heartbeat, T0 + timedelta(seconds=130), rid=second) == 120.0
    assert heartbeat.last_start_at is None


def test_without_run_ids_a_finish_pairs_with_the_last_start(heartbeat):
    ping(heartbeat, T0, PingKind.START)

    assert ping(heartbeat, T0 + timedelta(seconds=42)) == 42.0
    assert heartbeat.last_duration == 42.0
    assert ping(heartbeat, T0 + timedelta(seconds=50)) is None  # no start: no duration


def test_a_start_older_than_seven_days_gives_no_duration(heartbeat):
    ping(heartbeat, T0, PingKind.START)

    assert ping(heartbeat, T0 + timedelta(days=7, seconds=1)) is None


def test_a_log_ping_changes_nothing_but_the_last_ping(heartbeat):
    ping(heartbeat, T0)
    due = heartbeat.next_due_at

    ping(heartbeat, T0 + timedelta(minutes=5), PingKind.LOG)

    assert heartbeat.next_due_at == due
    assert heartbeat.last_ping_at == T0 + timedelta(minutes=5)
    assert heartbeat.last_success_at == T0


# -- claiming ---
def test_two_evaluators_never_raise_the_same_alert_twice(heartbeat):
    ping(heartbeat, T0)
    now = T0 + timedelta(minutes=71)
    seen_by_first = evaluation.due_ids(now)
    seen_by_second = evaluation.due_ids(now)  # both saw the row before either claimed it

    claims = [evaluation.claim(pk, due, now) for pk, due in seen_by_first + seen_by_second]
    for (pk, _), won in zip(seen_by_first + seen_by_second, claims, strict=True):
        if won:
            evaluation.evaluate(pk, now)

    assert claims == [True, False]
    assert evaluation.run_due(now) == 0
    assert Event.objects.filter(kind="alert.firing").count() == 1
    assert alert(heartbeat, Problem.MISSING).fired_count == 1


def test_a_claim_left_by_a_dead_evaluator_is_taken_again_after_the_lease(heartbeat):
    ping(heartbeat, T0)
    now = T0 + timedelta(minutes=71)
    [(pk, due)] = evaluation.due_ids(now)
    assert evaluation.claim(pk, due, now)  # ... and the evaluator dies here

    assert evaluation.run_due(now + timedelta(seconds=30)) == 0
    assert evaluation.run_due(now + evaluation.LEASE) == 1
    assert firing(heartbeat) == {"HeartbeatMissing"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluators_raise_one_alert(crew):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent writers need PostgreSQL (SQLite serialises)")
    service = Service.objects.create(team=crew.team, name="Nightly jobs")
    beats = [
        Heartbeat.objects.create(service=service, name=f"job {i}", period=60, grace=60)
        for i in range(20)
    ]
    for heartbeat in beats:
        ping(heartbeat, T0)
    now = T0 + timedelta(minutes=3)
    barrier = threading.Barrier(3)
    counts: list[int] = []

    def evaluator() -> None:
        try:
            barrier.wait()
            counts.append(evaluation.run_due(now))
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluator) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 20
    assert Event.objects.filter(kind="alert.firing").count() == 20
    assert Alert.objects.filter(fired_count=1).count() == 20


# -- snooze and pause ---
def test_a_snooze_defers_new_alerts_until_it_ends(heartbeat):
    ping(heartbeat, T0)
    services.snooze(heartbeat, 7200, now=T0)

    evaluation.run_due(T0 + timedelta(minutes=70))
    heartbeat.refresh_from_db()
    assert Problem.MISSING in heartbeat.problems
    assert not Alert.objects.exists()
    assert heartbeat.next_due_at == T0 + timedelta(hours=2)

    evaluation.run_due(T0 + timedelta(hours=2))
    assert firing(heartbeat) == {"HeartbeatMissing"}


def test_a_snoozed_problem_that_clears_is_never_raised(heartbeat):
    ping(heartbeat, T0)
    services.snooze(heartbeat, 7200, now=T0)
    evaluation.run_due(T0 + timedelta(minutes=70))

    ping(heartbeat, T0 + timedelta(minutes=80))
    evaluation.run_due(T0 + timedelta(hours=2))

    assert not Alert.objects.exists()


def test_pausing_resolves_open_alerts_and_expects_nothing(heartbeat):
    ping(heartbeat, T0, PingKind.FAIL)

    services.pause(heartbeat, now=T0 + timedelta(minutes=1))

    heartbeat.refresh_from_db()
    assert alert(heartbeat, Problem.FAILED).status == AlertStatus.RESOLVED
    assert (heartbeat.status, heartbeat.next_due_at) == (HeartbeatStatus.PAUSED, None)
    assert evaluation.run_due(T0 + timedelta(days=3)) == 0


def test_a_shorter_grace_takes_effect_when_saved(heartbeat):
    ping(heartbeat, T0)
    heartbeat.grace = 60
    heartbeat.save()

    services.settings_changed(heartbeat, now=T0 + timedelta(minutes=62))

    assert firing(heartbeat) == {"HeartbeatMissing"}
