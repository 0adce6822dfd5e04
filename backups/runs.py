"""Backup, verify, drill and restore runs: requested from anywhere, executed by django-q2.

``request_run`` is the one way to start a run (admin action, API, command, schedule): it refuses
while the plan's lease is held or a run waits, records the run as queued and queues its task
after commit. ``execute`` claims the run (queued → running, so a task delivered twice runs
once), takes the plan's lease, keeps it alive, does the work (``backups.work``) and records the
result; progress goes to the run's row about once a second. ``backups.schedule`` starts runs on
their schedules and fails runs whose worker died.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups import alerts
from backups.engine import targets
from backups.engine.records import WriteStats
from backups.leases import Lease, LeaseLost
from backups.models import (
    OWN_DATABASE_MESSAGE,
    BackupPlan,
    BackupRun,
    BackupTarget,
    RunKind,
    RunStatus,
    TargetKind,
)
from backups.work import WORK
from tocsin.events import record
from tocsin.permissions import is_admin
from tocsin.services import ServiceError

log = logging.getLogger(__name__)

TASK = "backups.runs.execute"
# A queued run whose task has not started after this long is queued again (a broker outage).
REQUEUE_AFTER = timedelta(minutes=5)
PROGRESS_EVERY = 1.0  # seconds between progress writes
# A run waits this long (seconds) for a prune of its storage to finish before giving up.
PRUNE_WAIT = 600.0


def _own_database(plan: BackupPlan, source: BackupRun | None) -> bool:
    if plan.target.kind == TargetKind.TOCSIN:
        return True
    return bool(source is not None and (source.manifest or {}).get("own_database"))


def _may_own_database(actor: Any) -> bool:
    return actor is None or is_admin(actor)


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
    verify reads every chunk rather than the plan's next slice. A restore of a backup of
    Tocsin's own database is an administrator's (ServiceError "forbidden" for anyone else;
    ``actor=None`` is the system itself: commands and tasks)."""
    if kind == RunKind.RESTORE and _own_database(plan, source) and not _may_own_database(actor):
        raise ServiceError(OWN_DATABASE_MESSAGE, "plan", "forbidden")
    now = timezone.now()
    with transaction.atomic():
        locked = BackupPlan.objects.select_for_update().get(pk=plan.pk)
        active = locked.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).first()
        # Only a run refuses a run: a lease held by a prune is waited for by ``execute``.
        if active is not None:
            what = active.get_kind_display().lower()
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
        finish(run, RunStatus.FAILED, error="refused: another run of this plan holds its lease")
        return RunStatus.FAILED
    try:
        claimed = BackupRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=timezone.now(), lease_token=lease.token
        )
        if not claimed:
            return "claimed elsewhere"
        run.refresh_from_db()
        record_run_event("backup.run_started", run)
        lease.keep_alive()
        try:
            WORK[run.kind](run, _Reporter(run, lease, on_progress))
        except Exception as exc:
            log.warning("backup run %s failed: %s", run.pk, exc, exc_info=not _expected(exc))
            finish(run, RunStatus.FAILED, error=_message(exc))
        else:
            status = RunStatus.FAILED if run.problems else RunStatus.SUCCEEDED
            finish(run, status, error="; ".join(run.problems[:3]))
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


def finish(run: BackupRun, status: str, *, error: str = "") -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        if status == RunStatus.SUCCEEDED and run.kind == RunKind.BACKUP:
            BackupPlan.objects.filter(pk=run.plan_id).update(last_success_at=run.finished_at)
            run.plan.last_success_at = run.finished_at
        record_run_event("backup.run_finished", run, status=status, error=error[:500])


def record_run_event(kind: str, run: BackupRun, **extra: Any) -> None:
    with transaction.atomic():
        record(
            kind,
            team=run.plan.service.team_id,
            subject=run.plan,
            actor=run.requested_by,
            actor_label="" if run.requested_by else "backups",
            payload={"run_id": run.pk, "plan_id": run.plan_id, "kind": run.kind, **extra},
        )
