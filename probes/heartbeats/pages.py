"""The heartbeats pages: every job of the user's teams with its state, last ping, schedule and
recent run times; a job's own page with its pings and the exact ``curl``/crontab lines to use.

Pages follow the UI's rule (``tocsin.permissions`` decides): a heartbeat of a team you cannot
see is a 404; pausing, resuming and snoozing need the responder role (403 otherwise), and the
buttons are only drawn for those who may use them. Configuration is the managers' and lives in
the admin and the API. Each page costs a fixed number of queries whatever the number of
heartbeats: the run times of a whole page come in one query (``run_history``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from probes.heartbeats import services, snippets
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, Ping, PingKind
from probes.heartbeats.schedule import humanize
from tocsin.permissions import Action, can, scope, teams_for
from tocsin.services import ServiceError

PAGE_SIZE = 50
LIST_RUNS = 20  # run-time bars per heartbeat on the list
DETAIL_RUNS = 60  # … on a heartbeat's page
RECENT_PINGS = 50
SNOOZE_CHOICES = [
    ("3600", "1 hour"),
    ("14400", "4 hours"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("0", "End the snooze"),
]
# The state a person reads, and the badge colour it gets (always with the word beside it).
BADGES = {
    HeartbeatStatus.UP: "badge-ok",
    HeartbeatStatus.LATE: "badge-warning",
    HeartbeatStatus.DOWN: "badge-firing",
    HeartbeatStatus.NEW: "badge-muted",
    HeartbeatStatus.PAUSED: "badge-muted",
}
STATUS_FILTERS = ["down", "late", "up", "new", "paused"]


# --- run-time history -----------------------------------------------------------------------------
@dataclass
class Run:
    """A finished run with a known duration (a start/finish pair), for the bars."""

    at: datetime
    seconds: float
    failed: bool
    exit_status: int | None
    height: int = 0  # % of the tallest bar

    @property
    def text(self) -> str:
        outcome = "failed" if self.failed else "succeeded"
        code = f" (exit status {self.exit_status})" if self.exit_status else ""
        return f"{self.at:%Y-%m-%d %H:%M} UTC: {outcome}{code} in {humanize(self.seconds)}"


def _finished(heartbeat_id: int, limit: int) -> QuerySet:
    """The ids of a heartbeat's last ``limit`` timed runs (a range of ``ping_heartbeat_recent``)."""
    return (
        Ping.objects.filter(heartbeat_id=heartbeat_id, duration__isnull=False)
        .order_by("-received_at", "-id")
        .values("id")[:limit]
    )


def _latest_ids(heartbeat_ids: list[int], limit: int) -> RawSQL:
    """``SELECT id … LIMIT n UNION ALL SELECT id … LIMIT n …``: each part one short range of
    the index. Each part sits in a derived table because SQLite refuses ORDER BY/LIMIT on the
    parts of a compound SELECT (so Django will not build it); both databases take this form."""
    parts, params = [], []
    for number, pk in enumerate(heartbeat_ids):
        sql, part_params = _finished(pk, limit).query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS run_{number}")
        params.extend(part_params)
    return RawSQL(" UNION ALL ".join(parts), params)


def run_history(heartbeat_ids: list[int], limit: int) -> dict[int, list[Run]]:
    """The last ``limit`` timed runs of each heartbeat, oldest first: one query whatever the
    number of heartbeats, reading only those rows (an OR of ``IN (… LIMIT n)`` instead made
    PostgreSQL scan the whole ping table)."""
    history: dict[int, list[Run]] = {pk: [] for pk in heartbeat_ids}
    if not heartbeat_ids:
        return history
    rows = (
        Ping.objects.filter(pk__in=_latest_ids(heartbeat_ids, limit))
        .order_by()
        .values_list("heartbeat_id", "received_at", "kind", "duration", "exit_status")
    )
    for heartbeat_id, at, kind, seconds, exit_status in rows:
        history[heartbeat_id].append(Run(at, seconds, kind == PingKind.FAIL, exit_status))
    for runs in history.values():
        runs.sort(key=lambda run: run.at)
        tallest = max((run.seconds for run in runs), default=0) or 1
        for run in runs:
            run.height = max(2, round(run.seconds * 100 / tallest))
    return history


def history_summary(runs: list[Run]) -> str:
    """What the bars show, in words (their accessible name)."""
    if not runs:
        return "No timed runs yet: send /start before the job and a finish after it."
    seconds = sorted(run.seconds for run in runs)
    failed = sum(run.failed for run in runs)
    return (
        f"Last {len(runs)} timed runs: shortest {humanize(seconds[0])}, median "
        f"{humanize(seconds[len(seconds) // 2])}, longest {humanize(seconds[-1])}"
        + (f"; {failed} failed." if failed else ".")
    )


# --- decorating rows ----------------------------------------------------------------------------
def _decorate(heartbeat: Heartbeat, now: datetime, user: Any, runs: list[Run]) -> Heartbeat:
    state = heartbeat.get_status(now)
    heartbeat.state = state
    heartbeat.state_label = HeartbeatStatus(state).label.lower()
    heartbeat.badge = BADGES[state]
    heartbeat.snoozed = heartbeat.is_snoozed(now)
    heartbeat.runs = runs
    heartbeat.runs_summary = history_summary(runs)
    heartbeat.may_respond = can(user, Action.RESPOND, heartbeat.service)
    heartbeat.may_manage = can(user, Action.MANAGE, heartbeat.service)
    heartbeat.curl = snippets.curl_line(heartbeat)
    heartbeat.crontab = snippets.crontab_line(heartbeat)
    heartbeat.grace_text = humanize(heartbeat.grace)
    heartbeat.last_ping_since = (
        humanize(max(0.0, (now - heartbeat.last_ping_at).total_seconds()))
        if heartbeat.last_ping_at
        else ""
    )
    heartbeat.last_duration_text = (
        humanize(heartbeat.last_duration) if heartbeat.last_duration is not None else ""
    )
    return heartbeat


def _visible(user: Any) -> QuerySet[Heartbeat]:
    return scope(
        Heartbeat.objects.select_related("service__team"), user, Action.VIEW, "service__team"
    )


def _heartbeat_or_404(request: HttpRequest, pk: int, action: Action = Action.VIEW) -> Heartbeat:
    heartbeat = (
        Heartbeat.objects.select_related("service__team", "service__heartbeat_ping_key")
        .filter(pk=pk)
        .first()
    )
    if heartbeat is None or not can(request.user, Action.VIEW, heartbeat.service):
        raise Http404("no such heartbeat")
    if not can(request.user, action, heartbeat.service):
        raise PermissionDenied(f"your role in {heartbeat.service.team} does not allow this")
    return heartbeat


def _by_status(queryset: QuerySet[Heartbeat], status: str, now: datetime) -> QuerySet:
    late = Q(status=HeartbeatStatus.UP, expected_at__lte=now)
    if status == "late":
        return queryset.filter(late)
    if status == "up":
        return queryset.filter(status=HeartbeatStatus.UP).exclude(late)
    return queryset.filter(status=status)


# --- pages --------------------------------------------------------------------------------------
@login_required
def heartbeat_list(request: HttpRequest) -> HttpResponse:
    user, now = request.user, timezone.now()
    teams = list(teams_for(user, Action.VIEW).order_by("name"))
    heartbeats = _visible(user)
    team = None
    if request.GET.get("team"):
        team = next((t for t in teams if t.slug == request.GET["team"]), None)
        if team is None:
            raise Http404("no such team")
        heartbeats = heartbeats.filter(service__team=team)
    status = request.GET.get("status", "")
    if status:
        if status not in STATUS_FILTERS:
            raise Http404("no such status")
        heartbeats = _by_status(heartbeats, status, now)
    # What needs someone first: down, then late, then the rest by team, service and name.
    heartbeats = heartbeats.annotate(
        urgency=Case(
            When(status=HeartbeatStatus.DOWN, then=Value(0)),
            When(status=HeartbeatStatus.UP, expected_at__lte=now, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
    ).order_by("urgency", "service__team__name", "service__name", "name", "id")
    page = Paginator(heartbeats, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    history = run_history([h.pk for h in rows], LIST_RUNS)
    for heartbeat in rows:
        _decorate(heartbeat, now, user, history[heartbeat.pk])
    query = urlencode(
        [(k, v) for k, v in (("team", team.slug if team else ""), ("status", status)) if v]
    )
    return render(
        request,
        "probes/heartbeats.html",
        {
            "heartbeats": rows,
            "page": page,
            "teams": teams,
            "team": team,
            "status": status,
            "statuses": STATUS_FILTERS,
            "query": query,
            "snooze_choices": SNOOZE_CHOICES,
            "page_url": request.get_full_path(),
        },
    )


@login_required
def heartbeat_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user, now = request.user, timezone.now()
    heartbeat = _heartbeat_or_404(request, pk)
    pings = list(heartbeat.pings.order_by("-received_at", "-id")[:RECENT_PINGS])
    for ping in pings:
        ping.duration_text = humanize(ping.duration) if ping.duration is not None else ""
    runs = run_history([heartbeat.pk], DETAIL_RUNS)[heartbeat.pk]
    _decorate(heartbeat, now, user, runs)
    key = getattr(heartbeat.service, "heartbeat_ping_key", None)
    return render(
        request,
        "probes/heartbeat.html",
        {
            "heartbeat": heartbeat,
            "pings": pings,
            "ping_url": snippets.ping_url(heartbeat),
            "slug_url": snippets.slug_url(heartbeat, key.key) if key else "",
            "snooze_choices": SNOOZE_CHOICES,
            "admin_url": reverse("admin:probes_heartbeat_change", args=[heartbeat.pk])
            if heartbeat.may_manage
            else "",
        },
    )


# --- actions (responders) -----------------------------------------------------------------------
class SnoozeForm(forms.Form):
    seconds = forms.TypedChoiceField(choices=SNOOZE_CHOICES, coerce=int)


def _after_action(request: HttpRequest, heartbeat: Heartbeat, done: str) -> HttpResponse:
    """htmx swaps the list's row in place; a plain form post goes back where it came from."""
    if request.headers.get("HX-Request") and request.POST.get("row"):
        runs = run_history([heartbeat.pk], LIST_RUNS)[heartbeat.pk]
        heartbeat = _decorate(heartbeat, timezone.now(), request.user, runs)
        return render(
            request,
            "probes/_heartbeat_row.html",
            {
                "heartbeat": heartbeat,
                "snooze_choices": SNOOZE_CHOICES,
                "done": done,
                "next": request.POST.get("next", ""),
            },
        )
    messages.success(request, done)
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("heartbeat", pk=heartbeat.pk)


def _reload(heartbeat: Heartbeat) -> Heartbeat:
    return Heartbeat.objects.select_related("service__team").get(pk=heartbeat.pk)


@login_required
@require_POST
def heartbeat_pause(request: HttpRequest, pk: int) -> HttpResponse:
    heartbeat = _heartbeat_or_404(request, pk, Action.RESPOND)
    services.pause(heartbeat, actor=request.user)
    return _after_action(request, _reload(heartbeat), f"{heartbeat.name} is paused.")


@login_required
@require_POST
def heartbeat_resume(request: HttpRequest, pk: int) -> HttpResponse:
    heartbeat = _heartbeat_or_404(request, pk, Action.RESPOND)
    services.resume(heartbeat, actor=request.user)
    return _after_action(
        request, _reload(heartbeat), f"{heartbeat.name} is resumed: its next ping starts it."
    )


@login_required
@require_POST
def heartbeat_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    heartbeat = _heartbeat_or_404(request, pk, Action.RESPOND)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Choose how long to snooze for.", status=400)
    seconds = form.cleaned_data["seconds"]
    try:
        services.snooze(heartbeat, seconds, actor=request.user)
    except ServiceError as exc:
        return HttpResponse(exc.message, status=400)
    done = (
        f"{heartbeat.name}: no new alerts for {humanize(seconds)}."
        if seconds
        else f"{heartbeat.name}: snooze ended."
    )
    return _after_action(request, _reload(heartbeat), done)
