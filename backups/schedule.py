"""The schedule, the reaper and pruning: what starts runs without anyone asking, and cleans
up after them.

The due-work loop of ``manage.py worker`` calls ``run_due`` when ``next_due`` says (backups and
restore drills on their cron schedules); a periodic task runs ``run_all_due`` (the same, plus
``reap``: runs whose worker died are failed once their lease runs out, queued runs whose task
never started are queued again) and ``prune_all``.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from backups import alerts
from backups.leases import Lease
from backups.models import BackupPlan, BackupRun, BackupStorage, RunKind, RunStatus
from backups.runs import REQUEUE_AFTER, PlanBusy, enqueue, finish, record_run_event, request_run

log = logging.getLogger(__name__)


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
            lease.keep_alive()  # a prune of a large bucket outlasts one lease

        checked = [0.0]

        def still_alone() -> None:
            """Once a second: every lease still ours (LeaseLost: a run took a plan over)."""
            if time.monotonic() - checked[0] < 1.0:
                return
            checked[0] = time.monotonic()
            for lease in held:
                lease.renew()
                lease.check()

        return storage.repository().prune(dry_run=dry_run, still_alone=still_alone)
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
    finish(run, RunStatus.FAILED, error=run.error)
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
            record_run_event("backup.run_finished", run, status=run.status, error=run.error[:500])
            alerts.sync(plan)
            failed += 1
    stale = BackupRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=now - REQUEUE_AFTER)
    for run_id in stale.values_list("pk", flat=True):
        enqueue(run_id)
    return failed
