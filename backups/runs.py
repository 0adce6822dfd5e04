"""Backup, verify, drill and restore runs: requested from anywhere, executed by django-q2.

``request_run`` is the one way to start a run (admin action, API, command, schedule): it refuses
while the plan's lease is held or a run waits, records the run as queued and queues its task
after commit. ``execute`` claims the run (queued → running, so a task delivered twice runs
once), takes the plan's lease, keeps it alive, does the work and records the result; progress
goes to the run's row about once a second. ``reap`` fails runs whose worker died (their lease ran
out) and queues again runs whose task never arrived.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backups import alerts
from backups.engine import targets
from backups.engine.records import WriteStats
from backups.engine.repository import Repository
from backups.engine.retention import Decision
from backups.engine.retention import apply as apply_retention
from backups.leases import Lease, LeaseLost
from backups.models import (
    BackupPlan,
    BackupRun,
    BackupStorage,
    BackupTarget,
    RunKind,
    RunStatus,
    TargetKind,
)
from tocsin import cron
from tocsin.events import record
from tocsin.services import ServiceError

log = logging.getLogger(__name__)

TASK = "backups.runs.execute"
# A queued run whose task has not started after this long is queued again (a broker outage).
REQUEUE_AFTER = timedelta(minutes=5)
PROGRESS_EVERY = 1.0  # seconds between progress writes
# A run waits this long (seconds) for a prune of its storage to finish before giving up.
PRUNE_WAIT = 600.0


class PlanBusy(ServiceError):
    """The plan has a run in progress or waiting; one run per plan at a time (409 in the API)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="busy")


def request_run(
    plan: BackupPlan,
    kind: str = RunKind.BACKUP,
    *,
    actor: Any = None,
    scheduled: bool = False,
    source: BackupRun | None = None,
    restore_into: BackupTarget | None = None,
    read_all: bool = False,
) -> BackupRun:
    """Queue a run of ``plan``; PlanBusy while another is running or waiting. ``read_all``: a
    verify reads every chunk rather than the plan's next slice."""
    now = timezone.now()
    with transaction.atomic():
        locked = BackupPlan.objects.select_for_update().get(pk=plan.pk)
        active = locked.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).first()
        if locked.lease_held(now) or active is not None:
            what = active.get_kind_display().lower() if active else "run"
            raise PlanBusy(f"“{plan}” has a {what} in progress; one run per plan at a time.")
        run = BackupRun.objects.create(
            plan=locked,
            kind=kind,
            scheduled=scheduled,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            source=source,
            restore_into=restore_into,
            created_at=now,
            manifest={"read_all": True} if read_all else {},
        )
        transaction.on_commit(lambda: enqueue(run.pk), robust=True)
    return run


def enqueue(run_id: int) -> None:
    try:
        from django_q.tasks import async_task

        async_task(
            TASK, run_id, timeout=settings.TOCSIN_BACKUP_TIMEOUT, task_name=f"backup run {run_id}"
        )
    except Exception as exc:  # the run row is the truth: reap() queues it again
        log.warning("backup run %s not queued (%s); it will be queued again", run_id, exc)


def execute(run_id: int, on_progress: Callable[[BackupRun], None] | None = None) -> str:
    """Do one queued run; returns its final status (or why it did nothing). ``on_progress``
    (the command line's printer) is called with the run each time its progress is written."""
    run = BackupRun.objects.select_related("plan__service", "plan__target", "plan__storage").get(
        pk=run_id
    )
    if run.status != RunStatus.QUEUED:
        return f"already {run.status}"  # a task delivered twice
    lease = _wait_for_lease(run)
    if lease is None:
        _finish(run, RunStatus.FAILED, error="refused: another run of this plan holds its lease")
        return RunStatus.FAILED
    try:
        claimed = BackupRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=timezone.now(), lease_token=lease.token
        )
        if not claimed:
            return "claimed elsewhere"
        run.refresh_from_db()
        _event("backup.run_started", run)
        lease.keep_alive()
        try:
            WORK[run.kind](run, _Reporter(run, lease, on_progress))
        except Exception as exc:
            log.warning("backup run %s failed: %s", run.pk, exc, exc_info=not _expected(exc))
            _finish(run, RunStatus.FAILED, error=_message(exc))
        else:
            status = RunStatus.FAILED if run.problems else RunStatus.SUCCEEDED
            _finish(run, status, error="; ".join(run.problems[:3]))
    finally:
        lease.release()
    alerts.sync(run.plan)
    return run.status


def _wait_for_lease(run: BackupRun) -> Lease | None:
    """The plan's lease; None at once while another run of the plan runs. Held by no run (a
    prune of the storage), it is waited for, up to PRUNE_WAIT."""
    deadline = time.monotonic() + PRUNE_WAIT
    while True:
        lease = Lease.acquire(run.plan_id)
        if lease is not None:
            return lease
        other_running = run.plan.runs.filter(status=RunStatus.RUNNING).exclude(pk=run.pk)
        if other_running.exists() or time.monotonic() > deadline:
            return None
        time.sleep(1.0)


class _Reporter:
    """The engine's progress callback: a row update about once a second, and a stop when the
    lease is lost."""

    def __init__(
        self, run: BackupRun, lease: Lease, listener: Callable[[BackupRun], None] | None
    ) -> None:
        self.run = run
        self.lease = lease
        self.listener = listener
        self.last = 0.0

    def __call__(self, stats: WriteStats) -> None:
        self.lease.check()
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            BackupRun.objects.filter(pk=self.run.pk).update(progress_bytes=stats.bytes_read)
            self.run.progress_bytes = stats.bytes_read
            if self.listener is not None:
                self.listener(self.run)


def _expected(exc: Exception) -> bool:
    return isinstance(exc, targets.TargetError | LeaseLost)


def _message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:2000]


def _finish(run: BackupRun, status: str, *, error: str = "") -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        if status == RunStatus.SUCCEEDED and run.kind == RunKind.BACKUP:
            BackupPlan.objects.filter(pk=run.plan_id).update(last_success_at=run.finished_at)
            run.plan.last_success_at = run.finished_at
        _event("backup.run_finished", run, status=status, error=error[:500])


def _event(kind: str, run: BackupRun, **extra: Any) -> None:
    with transaction.atomic():
        record(
            kind,
            team=run.plan.service.team_id,
            subject=run.plan,
            actor=run.requested_by,
            actor_label="" if run.requested_by else "backups",
            payload={"run_id": run.pk, "plan_id": run.plan_id, "kind": run.kind, **extra},
        )


# ---- the work of each kind


def _backup(run: BackupRun, progress: Callable[[WriteStats], None]) -> None:
    plan = run.plan
    previous = plan.runs.filter(kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED).first()
    if previous and previous.size_bytes:
        BackupRun.objects.filter(pk=run.pk).update(expected_bytes=previous.size_bytes)
        run.expected_bytes = previous.size_bytes
    repository = plan.storage.repository()
    repository.rewrite_all = plan.mode == "full"
    started = time.monotonic()
    stats = WriteStats()
    streams, metadata = plan.target.engine().backup(repository, stats, progress)
    if not Lease(plan.pk, run.lease_token).renew():  # still ours? else a successor runs
        raise LeaseLost("another run took this plan's lease; this run's snapshot is not written")
    metadata["duration_seconds"] = round(time.monotonic() - started, 3)
    metadata["mode"] = plan.mode
    snapshot = repository.commit(
        streams, metadata=metadata, tags={"plan": str(plan.pk), "run": str(run.pk)}
    )
    run.snapshot_id = snapshot.id
    run.manifest = metadata
    run.size_bytes, run.progress_bytes = stats.bytes_read, stats.bytes_read
    run.new_bytes, run.stored_bytes = stats.new_bytes, stats.stored_bytes
    run.chunks, run.new_chunks = stats.chunks, stats.new_chunks
    run.save()
    # Checked at once: a slice of the chunks it names, read back (the rest on later runs).
    report = repository.verify([snapshot.id], subset=_next_slice(plan))
    run.problems = report.problems
    forget_expired(plan, repository, also=run)


def _next_slice(plan: BackupPlan) -> tuple[int, int] | None:
    if plan.verify_slices <= 1:
        return None
    rotation = plan.verify_rotation
    BackupPlan.objects.filter(pk=plan.pk).update(verify_rotation=rotation + 1)
    return rotation % plan.verify_slices, plan.verify_slices


def retention_decisions(plan: BackupPlan, also: BackupRun | None = None) -> list[Decision]:
    """What the plan's policy does to its good, kept backups (and ``also``, the run that just
    stored its snapshot): newest first, each kept or not, with restic's reasons. Empty when the
    policy is empty (everything is kept)."""
    policy = plan.policy()
    if policy.is_empty():
        return []
    candidates = list(
        plan.runs.filter(
            kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED, forgotten_at__isnull=True
        ).exclude(snapshot_id="")
    )
    if also is not None:
        candidates.append(also)
    zone = cron.zone(plan.timezone)
    return apply_retention(policy, candidates, time_of=lambda run: taken_at(run).astimezone(zone))


def taken_at(run: BackupRun) -> datetime:
    return run.finished_at or run.started_at or run.created_at


def forget_expired(
    plan: BackupPlan, repository: Repository, also: BackupRun | None = None
) -> list[BackupRun]:
    """Apply the plan's retention; forget the snapshots it drops."""
    dropped = [d.snapshot for d in retention_decisions(plan, also) if not d.keep]
    now = timezone.now()
    for old in dropped:
        repository.forget(old.snapshot_id)
        BackupRun.objects.filter(pk=old.pk).update(forgotten_at=now)
    return dropped


def _verify(run: BackupRun, progress: Callable[[WriteStats], None]) -> None:
    plan = run.plan
    repository = plan.storage.repository()
    snapshot_ids = list(
        plan.runs.filter(kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED, forgotten_at=None)
        .exclude(snapshot_id="")
        .values_list("snapshot_id", flat=True)
    )
    stats = WriteStats()

    def report(verify_report: Any) -> None:
        stats.bytes_read = verify_report.bytes_checked
        progress(stats)

    subset = None if run.manifest.get("read_all") else _next_slice(plan)
    result = repository.verify(snapshot_ids, subset=subset, progress=report)
    run.manifest = {
        "read_all": subset is None,
        "snapshots": result.snapshots,
        "chunks_checked": result.chunks_checked,
        "chunks_skipped": result.chunks_skipped,
        "bytes_checked": result.bytes_checked,
    }
    run.size_bytes = result.bytes_checked
    run.problems = result.problems
    run.save()


def _latest_backup(plan: BackupPlan) -> BackupRun:
    latest = (
        plan.runs.filter(kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED, forgotten_at=None)
        .exclude(snapshot_id="")
        .first()
    )
    if latest is None:
        raise targets.TargetError("the plan has no good backup to restore yet")
    return latest


def _report_reads(
    run: BackupRun, repository: Repository, size: int, progress: Callable[[WriteStats], None]
) -> None:
    """A restore's progress: bytes read back from the repository, of the snapshot's size."""
    BackupRun.objects.filter(pk=run.pk).update(expected_bytes=size)
    run.expected_bytes = size
    stats = WriteStats()

    def read(n: int) -> None:
        stats.bytes_read += n
        progress(stats)

    repository.on_read = read


def _drill(run: BackupRun, progress: Callable[[WriteStats], None]) -> None:
    """Restore the latest good backup into a scratch database or folder, compare it with the
    manifest, time it, clean up."""
    plan = run.plan
    source = run.source or _latest_backup(plan)
    repository = plan.storage.repository()
    snapshot = repository.snapshot(source.snapshot_id)
    _report_reads(run, repository, snapshot.size, progress)
    target = plan.target.engine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tocsin-drill-") as folder:
        scratch, cleanup = _scratch_for(target, Path(folder), run)
        try:
            scratch.restore(repository, snapshot)
            run.rto_seconds = round(time.monotonic() - started, 3)
            run.problems = _drill_findings(scratch, snapshot)
        finally:
            cleanup()
    run.source = source
    run.snapshot_id = source.snapshot_id
    run.size_bytes = snapshot.size
    run.manifest = {"restored_from": source.pk, "tables": snapshot.metadata.get("tables", {})}
    run.save()


def _drill_findings(scratch: Any, snapshot: Any) -> list[str]:
    """What differs between the restored scratch and the backup's manifest: tables and their
    row counts; for databases also each table's columns and a checksum of its first rows."""
    if isinstance(scratch, targets.DirectoryTarget):
        return targets.compare(targets.DirectoryTarget.inventory_of(snapshot), scratch.inventory())
    manifest = snapshot.metadata
    problems = targets.compare(manifest.get("tables", {}), scratch.inventory())
    if "columns" in manifest:
        found = scratch.fingerprint()
        problems += [
            f"columns of {p}" for p in targets.compare(manifest["columns"], found["columns"])
        ]
        problems += [
            f"sample rows of {p}" for p in targets.compare(manifest["samples"], found["samples"])
        ]
    return problems


def _scratch_for(target: Any, folder: Path, run: BackupRun) -> tuple[Any, Callable[[], None]]:
    if isinstance(target, targets.SQLiteTarget):
        return targets.SQLiteTarget(folder / "drill.sqlite3"), lambda: None
    if isinstance(target, targets.DirectoryTarget):
        return targets.DirectoryTarget(folder / "drill"), lambda: None
    name = f"tocsin_drill_{run.pk}_{uuid.uuid4().hex[:6]}"
    scratch = target.create_scratch(name)
    return scratch, scratch.drop


def _restore(run: BackupRun, progress: Callable[[WriteStats], None]) -> None:
    plan = run.plan
    source = run.source or _latest_backup(plan)
    repository = plan.storage.repository()
    snapshot = repository.snapshot(source.snapshot_id)
    destination = run.restore_into or plan.target
    if destination.kind == TargetKind.TOCSIN:
        raise targets.TargetError(
            "Tocsin's own database is restored with Tocsin stopped: `manage.py restore` "
            "(docs/backups.md), not from a running worker"
        )
    _report_reads(run, repository, snapshot.size, progress)
    started = time.monotonic()
    destination.engine().restore(repository, snapshot)
    run.rto_seconds = round(time.monotonic() - started, 3)
    run.source = source
    run.snapshot_id = source.snapshot_id
    run.size_bytes = snapshot.size
    run.save()


WORK: dict[str, Callable[[BackupRun, Callable[[WriteStats], None]], None]] = {
    RunKind.BACKUP: _backup,
    RunKind.VERIFY: _verify,
    RunKind.DRILL: _drill,
    RunKind.RESTORE: _restore,
}


# ---- pruning: chunks no snapshot names


def prune_storage(storage: BackupStorage, *, dry_run: bool = False) -> tuple[int, int] | None:
    """Delete the chunks of ``storage`` that no snapshot names (those of forgotten snapshots and
    of runs that died); returns (chunks, bytes), or None when a plan storing there is busy.

    A run stores chunks before the snapshot naming them, so pruning beside a run could take
    its new chunks: it holds the lease of every plan on the storage, or does nothing.
    """
    busy = BackupRun.objects.filter(
        plan__storage=storage, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    )
    if busy.exists():
        return None
    held: list[Lease] = []
    try:
        for plan_id in storage.plans.values_list("pk", flat=True):
            lease = Lease.acquire(plan_id)
            if lease is None:
                return None
            held.append(lease)
        return storage.repository().prune(dry_run=dry_run)
    finally:
        for lease in held:
            lease.release()


def prune_all() -> int:
    """The periodic task: prune every storage that is idle; returns the chunks removed."""
    removed = 0
    for storage in BackupStorage.objects.all():
        try:
            result = prune_storage(storage)
        except Exception:
            log.exception("pruning backup storage %s failed; the next round tries again", storage)
            continue
        removed += result[0] if result else 0
    return removed


# ---- the schedule and the reaper


# What the schedule starts: the field holding a plan's next time, how to compute the one after,
# and the kind of run. A new plan (or a new drill schedule) gets its first time without running.
SCHEDULES = (
    ("next_run_at", BackupPlan.next_run_after, RunKind.BACKUP),
    ("next_drill_at", BackupPlan.next_drill_after, RunKind.DRILL),
)
# A drill due while the plan's backup runs is tried again this much later, not skipped.
DRILL_RETRY = timedelta(minutes=15)


def _scheduled(field: str) -> Any:
    plans = BackupPlan.objects.filter(enabled=True)
    return plans.exclude(drill_schedule="") if field == "next_drill_at" else plans


def run_due(now: Any = None) -> int:
    """Queue the backups and drills whose time has come; returns how many runs it queued."""
    now = now or timezone.now()
    queued = 0
    for field, following_of, kind in SCHEDULES:
        due = _scheduled(field).filter(
            Q(**{f"{field}__lte": now}) | Q(**{f"{field}__isnull": True})
        )
        for plan in due.select_related("service").order_by(field)[:50]:
            was = getattr(plan, field)
            claimed = BackupPlan.objects.filter(pk=plan.pk, **{field: was}).update(
                **{field: following_of(plan, now)}
            )
            if not claimed or was is None:
                continue  # another loop took it, or it was just given its first time
            try:
                request_run(plan, kind, scheduled=True)
                queued += 1
            except PlanBusy as exc:
                if kind == RunKind.DRILL:
                    BackupPlan.objects.filter(pk=plan.pk).update(next_drill_at=now + DRILL_RETRY)
                else:
                    _skipped(plan, str(exc))
    return queued


def _skipped(plan: BackupPlan, why: str) -> None:
    now = timezone.now()
    run = BackupRun.objects.create(
        plan=plan,
        scheduled=True,
        status=RunStatus.FAILED,
        created_at=now,
        started_at=now,
        error=f"skipped: {why}",
    )
    _finish(run, RunStatus.FAILED, error=run.error)
    alerts.sync(plan)


def next_due() -> Any:
    """The earliest time a scheduled backup or drill is due (now for a plan not seen yet)."""
    times = []
    for field, _following, _kind in SCHEDULES:
        plans = _scheduled(field)
        if plans.filter(**{f"{field}__isnull": True}).exists():
            return timezone.now()
        first = plans.order_by(field).values_list(field, flat=True).first()
        if first is not None:
            times.append(first)
    return min(times, default=None)


def run_all_due(now: Any = None) -> int:
    queued = run_due(now)
    reap(now)
    return queued


def reap(now: Any = None) -> int:
    """Fail runs whose worker died (their lease ran out or passed to another run); queue again
    runs whose task never started. Returns how many it failed."""
    now = now or timezone.now()
    failed = 0
    for run in BackupRun.objects.filter(status=RunStatus.RUNNING).select_related("plan"):
        plan = run.plan
        alive = plan.lease_token == run.lease_token and plan.lease_held(now)
        if alive:
            continue
        gone = BackupRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED,
            finished_at=now,
            error="the worker running it stopped (its lease expired); nothing it wrote counts",
        )
        if gone:
            run.refresh_from_db()
            _event("backup.run_finished", run, status=run.status, error=run.error[:500])
            alerts.sync(plan)
            failed += 1
    stale = BackupRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=now - REQUEUE_AFTER)
    for run_id in stale.values_list("pk", flat=True):
        enqueue(run_id)
    return failed
