"""Runs on the database: one per plan at a time through a lease, results recorded, retention
applied, alerts raised and resolved, the schedule, and a worker that dies mid-run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backups import alerts, runs, schedule
from backups.engine.targets import SQLiteTarget
from backups.leases import Lease
from backups.models import BackupPlan, BackupRun, RunKind, RunStatus
from monitoring.models import Alert, AlertStatus
from tests.live import ROOT, process_env
from tests.services import require_service
from tocsin.models import Event

pytestmark = pytest.mark.django_db


def backup_now(plan: BackupPlan, kind: str = RunKind.BACKUP, **extra) -> BackupRun:
    run = runs.request_run(plan, kind, **extra)
    runs.execute(run.pk)
    run.refresh_from_db()
    return run


def test_a_backup_run_records_its_snapshot_figures_and_manifest(plan: BackupPlan, tmp_path):
    run = backup_now(plan)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.snapshot_id and run.size_bytes == run.progress_bytes > 3_000_000
    assert run.new_bytes == run.size_bytes and run.stored_bytes > 0
    assert run.manifest["tables"] == {"items": 4000}
    assert run.manifest["tool_versions"]["sqlite"]
    assert run.started_at <= run.finished_at and run.percent == 100.0
    restored = SQLiteTarget(tmp_path / "restored.db")
    restored.restore(plan.storage.repository(), plan.storage.repository().snapshot(run.snapshot_id))
    assert restored.inventory() == {"items": 4000}
    kinds = list(Event.objects.filter(subject_id=str(plan.pk)).values_list("kind", flat=True))
    assert "backup.run_started" in kinds and "backup.run_finished" in kinds
    plan.refresh_from_db()
    assert plan.last_success_at == run.finished_at
    assert plan.lease_token == "" and plan.lease_expires_at is None  # released


def test_the_second_run_of_an_unchanged_source_stores_nothing_new(plan: BackupPlan):
    backup_now(plan)
    second = backup_now(plan)
    assert second.status == RunStatus.SUCCEEDED
    assert second.new_bytes == 0 and second.dedup_ratio == 1.0


def test_a_second_run_is_refused_while_one_waits_or_runs(plan: BackupPlan):
    first = runs.request_run(plan)
    with pytest.raises(runs.PlanBusy, match="one run per plan"):
        runs.request_run(plan)
    lease = Lease.acquire(plan.pk)  # as the worker running ``first`` holds it
    assert lease is not None and Lease.acquire(plan.pk) is None
    BackupRun.objects.filter(pk=first.pk).update(status=RunStatus.RUNNING)
    with pytest.raises(runs.PlanBusy):
        runs.request_run(plan)
    # A run that gets to a worker anyway (queued by hand) is refused, not run beside it.
    stray = BackupRun.objects.create(plan=plan)
    assert runs.execute(stray.pk) == RunStatus.FAILED
    stray.refresh_from_db()
    assert "refused" in stray.error


def test_a_task_delivered_twice_runs_once(plan: BackupPlan):
    run = runs.request_run(plan)
    assert runs.execute(run.pk) == RunStatus.SUCCEEDED
    assert runs.execute(run.pk) == "already succeeded"
    assert BackupRun.objects.filter(plan=plan).count() == 1


def test_a_failed_run_alerts_and_the_next_good_one_resolves_it(plan: BackupPlan, sqlite_source):
    moved = sqlite_source.with_suffix(".away")
    sqlite_source.rename(moved)
    failed = backup_now(plan)
    assert failed.status == RunStatus.FAILED and "does not exist" in failed.error
    alert = Alert.objects.get(fingerprint=alerts.fingerprint(plan, "backup_failed"))
    assert alert.status == AlertStatus.FIRING and alert.service == plan.service
    assert "does not exist" in alert.summary
    moved.rename(sqlite_source)
    assert backup_now(plan).status == RunStatus.SUCCEEDED
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_a_plan_without_a_recent_good_backup_alerts(plan: BackupPlan):
    backup_now(plan)
    later = timezone.now() + timedelta(hours=plan.max_age_hours + 1)
    alerts.check_all(later)
    alert = Alert.objects.get(fingerprint=alerts.fingerprint(plan, "backup_stale"))
    assert alert.status == AlertStatus.FIRING and "last good backup is from" in alert.summary
    alerts.check_all(timezone.now())
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_retention_forgets_the_runs_the_policy_drops(plan: BackupPlan):
    BackupPlan.objects.filter(pk=plan.pk).update(
        keep_last=2, keep_daily=0, keep_weekly=0, keep_monthly=0
    )
    plan.refresh_from_db()
    made = [backup_now(plan) for _ in range(4)]
    assert all(run.status == RunStatus.SUCCEEDED for run in made)
    kept = set(plan.runs.filter(forgotten_at=None).values_list("pk", flat=True))
    assert kept == {made[2].pk, made[3].pk}
    repository = plan.storage.repository()
    assert set(repository.snapshot_ids()) == {made[2].snapshot_id, made[3].snapshot_id}


def test_verify_reads_a_slice_per_run_and_fails_on_a_corrupt_chunk(plan: BackupPlan):
    BackupPlan.objects.filter(pk=plan.pk).update(verify_slices=1)  # everything, every time
    backup = backup_now(plan)
    verify = backup_now(plan, RunKind.VERIFY)
    assert verify.status == RunStatus.SUCCEEDED and verify.manifest["chunks_checked"] > 0
    storage = plan.storage.engine()
    key, _size = next(iter(storage.list("chunks/")))
    data = bytearray(storage.get(key))
    data[len(data) // 2] ^= 0xFF
    storage.put(key, bytes(data))
    broken = backup_now(plan, RunKind.VERIFY)
    assert broken.status == RunStatus.FAILED and key in broken.error
    assert Alert.objects.get(fingerprint=alerts.fingerprint(plan, "verify_failed")).status == (
        AlertStatus.FIRING
    )
    assert backup.snapshot_id  # the backup itself stays recorded as it was


def test_a_restore_drill_restores_into_scratch_compares_and_times_it(plan: BackupPlan):
    backup = backup_now(plan)
    drill = backup_now(plan, RunKind.DRILL)
    assert drill.status == RunStatus.SUCCEEDED, drill.error
    assert drill.source == backup and drill.rto_seconds is not None and drill.problems == []


def test_the_schedule_queues_due_plans_and_gives_new_ones_their_first_time(plan: BackupPlan):
    assert plan.next_run_at is None
    assert schedule.run_due() == 0  # first seen: given its next time, not run at once
    plan.refresh_from_db()
    assert plan.next_run_at > timezone.now()
    BackupPlan.objects.filter(pk=plan.pk).update(next_run_at=timezone.now() - timedelta(seconds=1))
    assert schedule.run_due() == 1
    queued = plan.runs.get()
    assert queued.scheduled and queued.status == RunStatus.QUEUED
    plan.refresh_from_db()
    assert plan.next_run_at > timezone.now()
    # Due again while that run still waits: recorded as skipped, and alerted.
    BackupPlan.objects.filter(pk=plan.pk).update(next_run_at=timezone.now() - timedelta(seconds=1))
    assert schedule.run_due() == 0
    skipped = plan.runs.filter(status=RunStatus.FAILED).get()
    assert skipped.error.startswith("skipped:")


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_lease_expires_and_its_run_is_failed(plan: BackupPlan, settings):
    """A real process runs the backup and is SIGKILLed mid-run: the plan stays busy until the
    lease runs out, then the run is failed and a new one goes through."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    from backups.engine.targets import PostgreSQLTarget
    from backups.models import BackupTarget, TargetKind

    admin = PostgreSQLTarget("postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"tocsin_backup_kill_{plan.pk}_{int(time.time())}"
    source = admin.create_scratch(name)
    try:
        with source.connect(autocommit=True) as connection:
            connection.execute("CREATE TABLE items AS SELECT generate_series(1, 1000) AS n")
        plan.target = BackupTarget.objects.create(
            team=plan.service.team,
            name="pg",
            kind=TargetKind.POSTGRESQL,
            secrets={"dsn": source.dsn},
        )
        plan.save()
        run = BackupRun.objects.create(plan=plan)  # queued, as the schedule leaves it
        # The test holds a lock the backup must wait for, so it is surely mid-run when killed.
        blocker = psycopg.connect(source.dsn)
        blocker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        worker = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                f"from backups import runs; runs.execute({run.pk})",
            ],
            cwd=ROOT,
            env=process_env(TOCSIN_BACKUP_LEASE_SECONDS="5"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while BackupRun.objects.get(pk=run.pk).status != RunStatus.RUNNING:
            assert time.monotonic() < deadline and worker.poll() is None, "never started"
            time.sleep(0.1)
        with pytest.raises(runs.PlanBusy):
            runs.request_run(plan)
        import os

        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        blocker.close()
        assert schedule.reap() == 0  # the lease has not run out yet: the run may still be alive
        time.sleep(5.5)
        assert schedule.reap() == 1
        run.refresh_from_db()
        assert run.status == RunStatus.FAILED and "lease expired" in run.error
        assert run.snapshot_id == "" and plan.storage.repository().snapshot_ids() == []
        settings.TOCSIN_BACKUP_LEASE_SECONDS = 5
        again = backup_now(plan)
        assert again.status == RunStatus.SUCCEEDED, again.error
        assert again.manifest["tables"] == {"public.items": 1000}
    finally:
        source.drop()


def test_prune_removes_the_chunks_of_forgotten_backups_and_waits_for_busy_storage(
    plan: BackupPlan, sqlite_source
):
    BackupPlan.objects.filter(pk=plan.pk).update(
        keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0
    )
    plan.refresh_from_db()
    first = backup_now(plan)
    with sqlite3.connect(sqlite_source) as connection:
        connection.execute("UPDATE items SET blob = randomblob(1000)")  # every chunk changes
    connection.close()
    second = backup_now(plan)
    assert BackupRun.objects.get(pk=first.pk).forgotten_at is not None
    storage = plan.storage
    before = len(list(storage.engine().list("chunks/")))
    waiting = BackupRun.objects.create(plan=plan)  # a run waits: nothing is pruned beside it
    assert schedule.prune_storage(storage) is None
    waiting.delete()
    removed, removed_bytes = schedule.prune_storage(storage)
    assert removed > 0 and removed_bytes > 0
    assert len(list(storage.engine().list("chunks/"))) == before - removed
    repository = storage.repository()
    assert repository.verify([second.snapshot_id], subset=None).ok
    plan.refresh_from_db()
    assert plan.lease_token == ""  # the prune's leases are released


def test_a_storage_filling_faster_than_a_week_alerts(plan: BackupPlan):
    backup_now(plan)
    free, _total = plan.storage.engine().usage()
    # The last week's backups stored a third of the free space a day: full in about 3 days.
    now = timezone.now()
    for day in range(7):
        BackupRun.objects.create(
            plan=plan,
            status=RunStatus.SUCCEEDED,
            created_at=now - timedelta(days=day),
            started_at=now - timedelta(days=day),
            finished_at=now - timedelta(days=day),
            stored_bytes=free // 3,
        )
    alerts.check_all(now)
    alert = Alert.objects.get(fingerprint=alerts.fingerprint(plan, "storage_low"))
    assert alert.status == AlertStatus.FIRING and "full in about 3." in alert.summary
    figures = alerts.forecast(plan.storage, now)
    assert 2.5 < figures["days_left"] < 3.5


def test_the_drill_schedule_queues_drills_and_a_busy_plan_puts_them_off(plan: BackupPlan):
    schedule.run_due()  # first seen: next backup and next drill given
    plan.refresh_from_db()
    assert plan.next_drill_at > timezone.now()
    past = timezone.now() - timedelta(seconds=1)
    BackupPlan.objects.filter(pk=plan.pk).update(next_drill_at=past)
    assert schedule.run_due() == 1
    drill = plan.runs.get()
    assert drill.kind == RunKind.DRILL and drill.scheduled
    BackupPlan.objects.filter(pk=plan.pk).update(next_drill_at=past)
    assert schedule.run_due() == 0  # the drill still waits: the next one is put off, not failed
    plan.refresh_from_db()
    assert timedelta(minutes=14) < plan.next_drill_at - timezone.now() <= timedelta(minutes=15)
    assert not plan.runs.filter(status=RunStatus.FAILED).exists()
    BackupPlan.objects.filter(pk=plan.pk).update(drill_schedule="", next_drill_at=past)
    drill.delete()
    assert schedule.run_due() == 0  # no drill schedule: none


def test_a_drill_finds_rows_that_differ_from_the_backup_point(plan: BackupPlan):
    """A backup whose manifest says other first rows than the data holds (as a dump that lost
    rows would): the drill fails and says which table."""
    backup = backup_now(plan)
    repository = plan.storage.repository()
    snapshot = repository.snapshot(backup.snapshot_id)
    altered = {**snapshot.metadata, "samples": {"items": "0" * 64}}
    repository.commit(snapshot.streams, metadata=altered, snapshot_id=snapshot.id)
    drill = backup_now(plan, RunKind.DRILL)
    assert drill.status == RunStatus.FAILED
    assert "sample rows of items" in drill.error
    assert Alert.objects.get(fingerprint=alerts.fingerprint(plan, "drill_failed")).status == (
        AlertStatus.FIRING
    )


def test_a_full_run_stores_every_chunk_again_and_repairs_a_damaged_one(plan: BackupPlan):
    first = backup_now(plan)
    storage = plan.storage.engine()
    key, _size = next(iter(storage.list("chunks/")))
    storage.put(key, b"TCS1\x01damaged")
    incremental = backup_now(plan)
    assert incremental.new_chunks == 0  # an incremental run trusts what is there
    BackupPlan.objects.filter(pk=plan.pk).update(mode="full", verify_slices=1)
    plan.refresh_from_db()
    full = backup_now(plan)
    assert full.status == RunStatus.SUCCEEDED, full.error
    assert full.new_chunks == full.chunks and full.manifest["mode"] == "full"
    repository = plan.storage.repository()
    assert repository.verify([first.snapshot_id], subset=None).ok  # the damage is repaired


def test_a_backup_that_does_not_verify_forgets_nothing(plan: BackupPlan, monkeypatch):
    BackupPlan.objects.filter(pk=plan.pk).update(
        keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0
    )
    plan.refresh_from_db()
    good = backup_now(plan)
    from backups.engine.records import VerifyReport
    from backups.engine.repository import Repository

    monkeypatch.setattr(
        Repository, "verify", lambda self, *a, **k: VerifyReport(problems=["chunks/x: broken"])
    )
    bad = backup_now(plan)
    assert bad.status == RunStatus.FAILED and "broken" in bad.error
    good.refresh_from_db()
    assert good.forgotten_at is None  # the good backup stays


def test_a_prune_that_loses_a_lease_stops_deleting(plan: BackupPlan, sqlite_source):
    BackupPlan.objects.filter(pk=plan.pk).update(
        keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0
    )
    plan.refresh_from_db()
    backup_now(plan)
    with sqlite3.connect(sqlite_source) as connection:
        connection.execute("UPDATE items SET blob = randomblob(1000)")
    connection.close()
    backup_now(plan)
    storage = plan.storage.engine()
    before = len(list(storage.list("chunks/")))
    original = plan.storage.repository().__class__.prune

    def prune_while_a_run_takes_over(self, **kwargs):
        # Another run takes the plan (as if this prune's lease had run out) before deleting.
        BackupPlan.objects.filter(pk=plan.pk).update(lease_token="someone-else")
        return original(self, **kwargs)

    from backups.engine.repository import Repository
    from backups.leases import LeaseLost

    Repository.prune = prune_while_a_run_takes_over
    try:
        with pytest.raises(LeaseLost):
            schedule.prune_storage(plan.storage)
    finally:
        Repository.prune = original
    assert len(list(storage.list("chunks/"))) == before  # nothing deleted


def test_a_prune_holding_the_lease_does_not_refuse_a_run(plan: BackupPlan):
    lease = Lease.acquire(plan.pk)  # as a prune holds it
    run = runs.request_run(plan)  # queued, not refused: execute waits for the lease
    assert run.status == RunStatus.QUEUED
    lease.release()
    assert runs.execute(run.pk) == RunStatus.SUCCEEDED
