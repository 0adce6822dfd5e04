"""The work of each kind of run: backup, verify, restore drill, restore.

``runs.execute`` calls ``WORK[run.kind](run, progress)`` with the plan's lease held; each
function records its figures on the run, and ``problems`` for what it found wrong (a run with
problems fails). Retention is applied after every good backup.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from backups.engine import targets
from backups.engine.records import WriteStats
from backups.engine.repository import Repository
from backups.engine.retention import Decision
from backups.engine.retention import apply as apply_retention
from backups.leases import Lease, LeaseLost
from backups.models import BackupPlan, BackupRun, RunKind, RunStatus, TargetKind
from tocsin import cron


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
    if plan.target.kind == TargetKind.TOCSIN:
        metadata["own_database"] = True
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
    if not run.problems:  # a backup that did not verify must not push a good one out
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
