"""The backups pages: every plan of the user's teams with its last result, the run in progress
(bytes, percent, rate, refreshed while it runs) and the next run; a plan's page with its facts,
charts of size, stored bytes, duration, throughput and deduplication over time, restore drills
and the run history.

``tocsin.permissions`` decides: a plan of a team you cannot see is a 404; starting a backup,
verify or drill needs the manager role (403 otherwise), and the buttons are drawn only for
those who may press them. The list costs a fixed number of queries whatever the number of plans.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from backups import runs
from backups.models import BackupPlan, BackupRun, RunKind, RunStatus
from backups.presentation import human_bytes, human_duration, human_rate
from tocsin.permissions import Action, can, scope

HISTORY = 50
MB = 1_000_000
CHART_RUNS = 200
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
BADGES = {
    RunStatus.SUCCEEDED: "badge-ok",
    RunStatus.FAILED: "badge-firing",
    RunStatus.RUNNING: "badge-acknowledged",
    RunStatus.QUEUED: "badge-muted",
}
STARTABLE = {"backup": RunKind.BACKUP, "verify": RunKind.VERIFY, "drill": RunKind.DRILL}


def visible_plans(user: Any) -> Any:
    plans = BackupPlan.objects.select_related("service__team", "target", "storage")
    return scope(plans, user, Action.VIEW, "service__team")


def _latest(kind_filter: Q) -> Subquery:
    runs_of_plan = BackupRun.objects.filter(kind_filter, plan=OuterRef("pk"))
    return Subquery(runs_of_plan.order_by("-created_at", "-id").values("pk")[:1])


def with_runs(plans: list[BackupPlan]) -> list[BackupPlan]:
    """Each plan's last finished backup and its run in progress, in one query."""
    ids = [run_id for plan in plans for run_id in (plan.last_id, plan.active_id) if run_id]
    found = BackupRun.objects.in_bulk(ids)
    for plan in plans:
        plan.last_run = present(found.get(plan.last_id))
        plan.active_run = present(found.get(plan.active_id))
    return plans


def present(run: BackupRun | None) -> BackupRun | None:
    """The run with what its row shows, worded for people."""
    if run is None:
        return None
    run.badge = BADGES.get(run.status, "badge-muted")
    run.took = human_duration(run.duration)
    run.size_text = human_bytes(run.size_bytes if run.size_bytes is not None else None)
    run.new_text = human_bytes(run.new_bytes)
    run.stored_text = human_bytes(run.stored_bytes)
    run.progress_text = human_bytes(run.progress_bytes)
    run.rate_text = human_rate(run.rate)
    run.percent_shown = None if run.percent is None else round(run.percent)
    return run


def annotated(plans: Any) -> list[BackupPlan]:
    finished = Q(kind=RunKind.BACKUP, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED])
    return with_runs(
        list(
            plans.annotate(
                last_id=_latest(finished), active_id=_latest(Q(status__in=ACTIVE))
            ).order_by("service__team__name", "name")
        )
    )


@login_required
def backups(request: HttpRequest) -> HttpResponse:
    plans = annotated(visible_plans(request.user))
    for plan in plans:
        plan.may_manage = can(request.user, Action.MANAGE, plan)
    context = {
        "plans": plans,
        "any_active": any(plan.active_run for plan in plans),
        "current": "backups",
    }
    template = "backups/_plans.html" if request.headers.get("HX-Request") else "backups/list.html"
    return render(request, template, context)


def _plan_for(request: HttpRequest, pk: int) -> BackupPlan:
    plan = visible_plans(request.user).filter(pk=pk).first()
    if plan is None:
        raise Http404("No such backup plan.")
    return plan


@login_required
def plan(request: HttpRequest, pk: int) -> HttpResponse:
    found = annotated(visible_plans(request.user).filter(pk=pk))
    if not found:
        raise Http404("No such backup plan.")
    plan = found[0]
    history = [present(run) for run in plan.runs.order_by("-created_at", "-id")[:HISTORY]]
    context = {
        "plan": plan,
        "history": history,
        "drills": [run for run in history if run.kind == RunKind.DRILL][:10],
        "chart": chart_data(plan),
        "may_manage": can(request.user, Action.MANAGE, plan),
        "admin_url": reverse("admin:backups_backupplan_change", args=[plan.pk])
        if can(request.user, Action.MANAGE, plan)
        else "",
        "current": "backups",
    }
    return render(request, "backups/plan.html", context)


@login_required
def progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan's run in progress (or its last result), for the page to poll while it runs."""
    plan = annotated(visible_plans(request.user).filter(pk=pk))
    if not plan:
        raise Http404("No such backup plan.")
    return render(request, "backups/_progress.html", {"plan": plan[0]})


def chart_data(plan: BackupPlan) -> dict[str, list]:
    """The good backups over time: uPlot's columns (epoch seconds first; sizes in MB, rates
    in MB/s, so the axes stay short enough for a phone)."""
    rows = list(
        plan.runs.filter(kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED)
        .exclude(started_at=None)
        .order_by("-created_at")
        .values("finished_at", "started_at", "size_bytes", "new_bytes", "stored_bytes")[:CHART_RUNS]
    )[::-1]
    data: dict[str, list] = {
        "t": [],
        "size": [],
        "stored": [],
        "new": [],
        "seconds": [],
        "rate": [],
        "dedup": [],
    }
    for row in rows:
        seconds = max((row["finished_at"] - row["started_at"]).total_seconds(), 0.001)
        size = row["size_bytes"] or 0
        data["t"].append(int(row["finished_at"].timestamp()))
        data["size"].append(round(size / MB, 3))
        data["stored"].append(round((row["stored_bytes"] or 0) / MB, 3))
        data["new"].append(round((row["new_bytes"] or 0) / MB, 3))
        data["seconds"].append(round(seconds, 3))
        data["rate"].append(round(size / seconds / MB, 2))
        data["dedup"].append(round(100 * (1 - (row["new_bytes"] or 0) / size), 1) if size else 0)
    return data


@login_required
@require_POST
def start(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    plan = _plan_for(request, pk)
    if kind not in STARTABLE:
        raise Http404("No such action.")
    if not can(request.user, Action.MANAGE, plan):
        raise PermissionDenied("Starting runs needs the manager role in the plan's team.")
    try:
        runs.request_run(plan, STARTABLE[kind], actor=request.user)
    except runs.PlanBusy as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{RunKind(STARTABLE[kind]).label} of “{plan}” queued.")
    back = request.POST.get("next", "")
    if back not in (reverse("backups"), reverse("backup_plan", args=[plan.pk])):
        back = reverse("backup_plan", args=[plan.pk])
    return redirect(back)
