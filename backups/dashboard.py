"""Backups' dashboard tile: each plan of the user's teams with its last backup and its last
restore drill. Registered from ``BackupsConfig.ready``; a fixed number of queries whatever the
number of plans or runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse

from backups.models import BackupPlan, BackupRun, RunKind, RunStatus
from backups.pages import present
from tocsin.dashboard import Tile, in_teams, register, setup

TOP_PLANS = 12
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def _latest(kind_filter: Q) -> Subquery:
    runs_of_plan = BackupRun.objects.filter(kind_filter, plan=OuterRef("pk"))
    return Subquery(runs_of_plan.order_by("-created_at", "-id").values("pk")[:1])


def backups_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    plans = in_teams(BackupPlan.objects.all(), team_ids, "service__team")
    shown = list(
        plans.select_related("service")
        .annotate(
            backup_id=_latest(Q(kind=RunKind.BACKUP, status__in=FINISHED)),
            drill_id=_latest(Q(kind=RunKind.DRILL, status__in=FINISHED)),
        )
        .order_by("service__team__name", "name")[:TOP_PLANS]
    )
    if not shown:
        return setup(
            "No backup plans yet: back up a database or folder on a schedule, with restore drills.",
            reverse("admin:backups_backupplan_add"),
            "Add a backup plan",
        )
    runs = BackupRun.objects.defer("manifest", "problems", "error").in_bulk(
        [run_id for plan in shown for run_id in (plan.backup_id, plan.drill_id) if run_id]
    )
    for plan in shown:
        plan.last_backup = present(runs.get(plan.backup_id))
        plan.last_drill = present(runs.get(plan.drill_id))
    more = plans.count() - len(shown)  # always asked: the same queries whatever the data
    failed = sum(1 for p in shown if p.last_backup and p.last_backup.status == RunStatus.FAILED)
    return {"plans": shown, "more": more, "failed": failed}


def register_tiles() -> None:
    register(
        Tile(
            "backups",
            "Backups",
            80,
            "tocsin/_tile_backups.html",
            backups_context,
            live=("backup", "backup_plan", "alert"),
            refresh_seconds=300,
            link="backups",
        )
    )
