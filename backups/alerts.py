"""A plan's problems as alerts: the one place backups talk to the monitoring pipeline.

Each problem has its own fingerprint (``backup:<plan id>:<problem>``): a failed run, a last good
backup older than the plan allows, a failed verify, a failed restore drill. Each fires while the
problem holds and resolves when it is gone (the next good run, verify or drill), so a team sees
one alert per problem, not one per failed night.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from backups.models import BackupPlan, BackupRun, BackupStorage, RunKind, RunStatus
from backups.presentation import human_bytes
from monitoring.models.choices import Severity
from monitoring.pipeline import AlertInput, raise_alert, resolve_alert

log = logging.getLogger(__name__)

SOURCE = "backup"

TITLES = {
    "backup_failed": "Backup failed",
    "backup_stale": "Backup too old",
    "verify_failed": "Backup verification failed",
    "drill_failed": "Restore drill failed",
    "storage_low": "Backup storage running out",
}
# Storage alerts: less than this share free, or full within this many days at the last week's
# growth (what the backups stored per day).
MIN_FREE_SHARE = 0.05
MIN_DAYS_LEFT = 7
GROWTH_WINDOW = timedelta(days=7)


def fingerprint(plan: BackupPlan, problem: str) -> str:
    return f"backup:{plan.pk}:{problem}"


def problems(plan: BackupPlan, now: datetime) -> dict[str, str]:
    """What is wrong with the plan now: problem → what to tell people."""
    found: dict[str, str] = {}
    latest: dict[str, BackupRun | None] = {
        kind: plan.runs.filter(kind=kind, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED])
        .order_by("-created_at", "-id")
        .first()
        for kind in (RunKind.BACKUP, RunKind.VERIFY, RunKind.DRILL)
    }
    backup = latest[RunKind.BACKUP]
    if backup is not None and backup.status == RunStatus.FAILED:
        found["backup_failed"] = f"{plan}: the last backup failed: {backup.error}"[:500]
    limit = timedelta(hours=plan.max_age_hours)
    since = plan.last_success_at or plan.created_at
    if now - since > limit:
        when = plan.last_success_at.isoformat(timespec="minutes") if plan.last_success_at else None
        found["backup_stale"] = (
            f"{plan}: the last good backup is from {when}"
            if when
            else f"{plan}: no good backup yet"
        ) + f" (allowed: {plan.max_age_hours} h)"
    low = storage_running_out(plan.storage, now)
    if low:
        found["storage_low"] = f"{plan}: {low}"
    for kind, problem in ((RunKind.VERIFY, "verify_failed"), (RunKind.DRILL, "drill_failed")):
        run = latest[kind]
        if run is not None and run.status == RunStatus.FAILED:
            found[problem] = f"{plan}: {run.get_kind_display().lower()} failed: {run.error}"[:500]
    return found


def forecast(storage: BackupStorage, now: datetime) -> dict[str, float | None]:
    """Free space and how long it lasts at the last week's growth: ``free``, ``total`` (bytes;
    None where the storage cannot tell, as S3), ``per_day`` (bytes stored per day),
    ``days_left`` (None while nothing grows)."""
    free, total = storage.engine().usage()
    stored = BackupRun.objects.filter(
        plan__storage=storage,
        kind=RunKind.BACKUP,
        status=RunStatus.SUCCEEDED,
        finished_at__gte=now - GROWTH_WINDOW,
    ).aggregate(total=Sum("stored_bytes"))["total"]
    per_day = (stored or 0) / GROWTH_WINDOW.days
    days_left = free / per_day if free is not None and per_day > 0 else None
    return {"free": free, "total": total, "per_day": per_day, "days_left": days_left}


def storage_running_out(storage: BackupStorage, now: datetime) -> str:
    """Why the storage is running out, or "" when it is not (or cannot tell)."""
    try:
        figures = forecast(storage, now)
    except Exception as exc:  # an unreachable storage shows in the runs that use it
        log.warning("backup storage %s: no free-space figure (%s)", storage, exc)
        return ""
    free, total, days_left = figures["free"], figures["total"], figures["days_left"]
    if free is None or not total:
        return ""
    share = free / total
    if share >= MIN_FREE_SHARE and (days_left is None or days_left >= MIN_DAYS_LEFT):
        return ""
    said = f"storage “{storage}” has {human_bytes(free)} free ({100 * share:.1f} %)"
    if days_left is not None:
        said += f", full in about {days_left:.1f} days at {human_bytes(figures['per_day'])} a day"
    return said


def alert_input(plan: BackupPlan, problem: str, summary: str) -> AlertInput:
    link = f"{settings.TOCSIN_BASE_URL}/backups/plans/{plan.pk}/"
    return AlertInput(
        labels={
            "alertname": TITLES[problem],
            "backup_plan": plan.name,
            "service": plan.service.slug,
        },
        severity=Severity.WARNING if problem in ("backup_stale", "storage_low") else Severity.ERROR,
        summary=summary,
        details={"plan": plan.name, "target": str(plan.target), "storage": str(plan.storage)},
        links=[{"href": link, "text": "Backup plan"}],
        fingerprint=fingerprint(plan, problem),
    )


def sync(plan: BackupPlan, now: datetime | None = None) -> bool:
    """Raise what the pipeline has not been told, resolve what is gone; False when the pipeline
    refused (the periodic check tries again)."""
    now = now or timezone.now()
    plan = BackupPlan.objects.select_related("service", "target", "storage").get(pk=plan.pk)
    current = problems(plan, now)
    to_resolve = [p for p in plan.alerted if p not in current]
    try:
        with transaction.atomic():
            for problem in to_resolve:
                resolve_alert(plan.service, fingerprint(plan, problem), source=SOURCE)
            for problem, summary in current.items():
                raise_alert(plan.service, alert_input(plan, problem, summary), source=SOURCE)
            BackupPlan.objects.filter(pk=plan.pk).update(alerted=sorted(current))
    except Exception:
        log.exception("backup plan %s: alerts not synced; the periodic check retries", plan.pk)
        return False
    return True


def check_all(now: datetime | None = None) -> int:
    """The periodic check: staleness appears with time, not with a run."""
    now = now or timezone.now()
    synced = 0
    for plan in BackupPlan.objects.filter(enabled=True):
        synced += sync(plan, now)
    return synced
