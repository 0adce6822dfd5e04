"""The probes pages: every check of the user's teams as a live status grid with 90-day uptime
bars; a check's own page with why it is in its state, its uptime, latency percentiles, recent
runs and per-location state; run now, pause/resume and "test this configuration".

Pages follow the UI's rule (``tocsin.permissions`` decides): a check of a team you cannot see
is a 404; running, pausing and resuming need the responder role and testing a configuration
the manager role (403 otherwise), and buttons are only drawn for those who may use them. Each
page costs a fixed number of queries whatever the number of checks: the uptime bars of a whole
page come from the day rollups in one query (``uptime_days``).

Live: the grid re-fetches itself (``checks_grid``) when an alert event arrives on the live
stream (a check going down or recovering raises or resolves its alert through the pipeline) and,
for the changes that raise no event (degraded, unknown), every 30 seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import (
    Case,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from probes.checks import rollups, services
from probes.checks.choices import ANY_LOCATION, CheckState, Period
from probes.checks.forms import CheckTestForm
from probes.checks.models import Check, Result, Rollup, Slot
from probes.heartbeats.schedule import humanize
from probes.kinds.journey import SECRET_RE
from tocsin.models import Event
from tocsin.permissions import Action, can, scope, teams_for
from tocsin.redaction import REDACTED, redact

PAGE_SIZE = 50
UPTIME_DAYS = 90
HOURLY_DAYS = 7  # the latency chart's hourly points
RECENT_RESULTS = 50
BADGES = {
    CheckState.UP: "badge-ok",
    CheckState.DEGRADED: "badge-warning",
    CheckState.DOWN: "badge-firing",
    CheckState.PAUSED: "badge-muted",
    CheckState.UNKNOWN: "badge-muted",
}
STATE_FILTERS = ["down", "degraded", "up", "unknown", "paused"]


# --- what a config may show -----------------------------------------------------------------------
def redact_url(text: str) -> str:
    """A URL or DSN without the password in it or secrets in its query."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return REDACTED
    if password:
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{user}:{REDACTED}@{host}")
        text = urlunsplit(parts)
    return redact(text)


def redacted_config(value: Any, key: str = "") -> Any:
    """A check's config as anyone in the team may read it: values under names that say
    "secret" (password, token, key, auth, cookie …, as a journey masks them) replaced, and
    passwords taken out of URLs and DSNs. ``restore_redacted`` undoes it on the way back in."""
    if key and SECRET_RE.search(key) and not key.endswith("_type") and isinstance(value, str):
        return REDACTED if value else value
    if isinstance(value, dict):
        return {k: redacted_config(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted_config(v) for v in value]
    if isinstance(value, str):
        return redact_url(value)
    return value


def restore_redacted(new: Any, old: Any, key: str = "") -> Any:
    """``new`` with every value that is still the redacted form of ``old``'s value at the same
    place put back: a client may send a config it read and changed a part of."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: restore_redacted(v, old.get(k), str(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        return [restore_redacted(v, old[i] if i < len(old) else None) for i, v in enumerate(new)]
    if (
        isinstance(new, str)
        and isinstance(old, str)
        and REDACTED in new
        and redacted_config(old, key) == new
    ):
        return old
    return new


def target_text(kind: str, config: dict[str, Any]) -> str:
    """What a check probes, in one line, without secrets."""
    if kind == "consistency":
        sides = [
            target_text(str(config.get(s, {}).get("kind", "")), config.get(s, {})) for s in "ab"
        ]
        return " vs ".join(sides)
    if kind == "journey":
        steps = config.get("steps") or []
        first = redact_url(str(steps[0].get("url", ""))) if steps else ""
        return f"{len(steps)} step{'s' if len(steps) != 1 else ''}: {first}"
    if kind == "dns":
        server = config.get("nameserver")
        return f"{config.get('name', '')} {config.get('record_type', 'A')}" + (
            f" @{server}" if server else ""
        )
    if kind == "sql" or config.get("dsn"):
        return redact_url(str(config.get("dsn", "")))
    if config.get("url"):
        return redact_url(str(config["url"]))
    host = str(config.get("host", ""))
    return f"{host}:{config['port']}" if config.get("port") else host


# --- uptime bars ------------------------------------------------------------------------------
@dataclass
class Day:
    """One day's bar: counts from the day rollup (None: no rollup that day)."""

    day: date
    up: int = 0
    degraded: int = 0
    down: int = 0
    unknown: int = 0
    seen: bool = False

    @property
    def known(self) -> int:
        return self.up + self.degraded + self.down

    @property
    def uptime(self) -> float | None:
        return (self.up + self.degraded) / self.known if self.known else None

    @property
    def tone(self) -> str:
        uptime = self.uptime
        if uptime is None:
            return "none"
        if uptime >= 0.999:
            return "ok"
        return "warn" if uptime >= 0.99 else "bad"

    @property
    def text(self) -> str:
        if not self.seen:
            return f"{self.day:%Y-%m-%d}: no runs"
        if self.uptime is None:
            return f"{self.day:%Y-%m-%d}: unknown (the prober did not run)"
        failed = f", {self.down} failed" if self.down else ""
        return f"{self.day:%Y-%m-%d}: {percent(self.uptime)} up of {self.known} runs{failed}"


@dataclass
class Uptime:
    days: list[Day] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        known = sum(d.known for d in self.days)
        return sum(d.up + d.degraded for d in self.days) / known if known else None

    @property
    def summary(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return f"No runs in the last {len(self.days)} days."
        bad = sum(1 for d in self.days if d.tone in ("warn", "bad"))
        return f"{len(self.days)}-day uptime {percent(ratio)}" + (
            f"; {bad} day{'s' if bad != 1 else ''} below 99.9 %." if bad else "."
        )

    @property
    def runs(self) -> list[tuple[str, int]]:
        """Days of the same tone in a row, as (tone, days): the grid draws each run as one
        bar of that width (a healthy check is one element, not ninety)."""
        runs: list[tuple[str, int]] = []
        for day in self.days:
            if runs and runs[-1][0] == day.tone:
                runs[-1] = (day.tone, runs[-1][1] + 1)
            else:
                runs.append((day.tone, 1))
        return runs

    @property
    def percent(self) -> str:
        return percent(self.ratio) if self.ratio is not None else "no data"


def percent(ratio: float) -> str:
    value = ratio * 100
    if value >= 100:
        return "100 %"
    return f"{min(value, 99.99):.2f} %" if value >= 99 else f"{value:.1f} %"


def _day_start(now: datetime, days: int) -> datetime:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1)


def _day_rows(check_ids: list[int], start: datetime) -> QuerySet:
    """Day rollups of the checks from ``start``: one range of the primary key per check."""
    ranges = Q(pk__in=[])
    for check_id in check_ids:
        ranges |= Rollup.days_of(check_id, start.date())
    return Rollup.objects.filter(ranges).values_list(
        "probe_id", "day", "up", "degraded", "down", "unknown"
    )


def _uptime(found: dict[date, Any], start: datetime, days: int) -> Uptime:
    dates = [(start + timedelta(days=n)).date() for n in range(days)]
    return Uptime([Day(d, *found[d], seen=True) if d in found else Day(d) for d in dates])


def uptime_days(check_ids: list[int], now: datetime, days: int = UPTIME_DAYS) -> dict[int, Uptime]:
    """The last ``days`` days (today included, UTC) of each check, oldest first: one query
    whatever the number of checks."""
    start = _day_start(now, days)
    found: dict[int, dict[date, Any]] = {pk: {} for pk in check_ids}
    for probe_id, day, *counts in _day_rows(check_ids, start):
        found[probe_id][day] = counts
    return {pk: _uptime(found[pk], start, days) for pk in check_ids}


# --- decorating checks --------------------------------------------------------------------------
def _decorate(check: Check, now: datetime, user: Any, uptime: Uptime) -> Check:
    state = check.display_state(now)
    check.shown_state = state
    check.state_label = CheckState(state).label.lower()
    check.badge = BADGES[CheckState(state)]
    check.stale = state == CheckState.UNKNOWN and check.state not in (
        CheckState.UNKNOWN,
        CheckState.PAUSED,
    )
    check.target = target_text(check.kind, check.config or {})
    check.kind_label = check.get_kind_display()
    check.uptime = uptime
    check.may_respond = can(user, Action.RESPOND, check.service)
    check.may_manage = can(user, Action.MANAGE, check.service)
    check.last_latency_text = latency_text(getattr(check, "last_latency", None))
    check.last_run_since = (
        humanize((now - check.last_run_at).total_seconds()) if check.last_run_at else ""
    )
    return check


def latency_text(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _visible(user: Any) -> QuerySet[Check]:
    return scope(Check.objects.select_related("service__team"), user, Action.VIEW, "service__team")


def with_last_latency(checks: QuerySet[Check]) -> QuerySet[Check]:
    """Each check's last run's latency, in the same query (a short backward range of the
    results' unique index per check: check, slot)."""
    last = Result.objects.filter(probe=OuterRef("pk")).order_by("-slot_at")
    return checks.annotate(last_latency=Subquery(last.values("latency_ms")[:1]))


def _check_or_404(request: HttpRequest, pk: int, action: Action = Action.VIEW) -> Check:
    check = Check.objects.select_related("service__team").filter(pk=pk).first()
    if check is None or not can(request.user, Action.VIEW, check.service):
        raise Http404("no such check")
    if not can(request.user, action, check.service):
        raise PermissionDenied(f"your role in {check.service.team} does not allow this")
    return check


# --- the grid ---------------------------------------------------------------------------------
def _grid_context(request: HttpRequest) -> dict[str, Any]:
    user, now = request.user, timezone.now()
    teams = list(teams_for(user, Action.VIEW).order_by("name"))
    checks = _visible(user)
    team = None
    if request.GET.get("team"):
        team = next((t for t in teams if t.slug == request.GET["team"]), None)
        if team is None:
            raise Http404("no such team")
        checks = checks.filter(service__team=team)
    state = request.GET.get("state", "")
    if state:
        if state not in STATE_FILTERS:
            raise Http404("no such state")
        checks = checks.filter(state=state)
    # What needs someone first: down, degraded, unknown; then by team, service and name.
    checks = checks.annotate(
        urgency=Case(
            When(state=CheckState.DOWN, then=Value(0)),
            When(state=CheckState.DEGRADED, then=Value(1)),
            When(state=CheckState.UNKNOWN, then=Value(2)),
            When(state=CheckState.UP, then=Value(3)),
            default=Value(4),
            output_field=IntegerField(),
        )
    ).order_by("urgency", "service__team__name", "service__name", "name", "id")
    page = Paginator(with_last_latency(checks), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    uptimes = uptime_days([c.pk for c in rows], now)
    for check in rows:
        _decorate(check, now, user, uptimes[check.pk])
    query = urlencode(
        [(k, v) for k, v in (("team", team.slug if team else ""), ("state", state)) if v]
    )
    return {
        "checks": rows,
        "page": page,
        "teams": teams,
        "team": team,
        "state": state,
        "states": STATE_FILTERS,
        "query": query,
        "page_url": reverse("probes") + (f"?{query}" if query else ""),
        "uptime_days": UPTIME_DAYS,
    }


@login_required
def check_list(request: HttpRequest) -> HttpResponse:
    context = _grid_context(request)
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    return render(request, "probes/checks.html", context)


@login_required
def check_grid(request: HttpRequest) -> HttpResponse:
    """The grid alone, re-fetched by the probes page when states may have changed."""
    return render(request, "probes/_check_grid.html", _grid_context(request))


# --- a check's page ---------------------------------------------------------------------------
DAY_COLUMNS = ("day", "up", "degraded", "down", "unknown", "p50", "p95", "p99")


def latency_series(check: Check, now: datetime) -> dict[str, Any]:
    """p50/p95/p99 per hour over the last ``HOURLY_DAYS`` days, for the chart (the daily
    series comes from the rows the uptime bars read)."""
    hours = rollups.points(check.pk, Period.HOUR, now - timedelta(days=HOURLY_DAYS), now)
    return _series((at, point.p50, point.p95, point.p99) for at, point in hours)


def _series(rows: Any) -> dict[str, Any]:
    series: dict[str, list[Any]] = {"t": [], "p50": [], "p95": [], "p99": []}
    for at, p50, p95, p99 in rows:
        series["t"].append(int(at.timestamp()))
        series["p50"].append(p50)
        series["p95"].append(p95)
        series["p99"].append(p99)
    return series


def _locations(check: Check, slots: list[Slot]) -> list[dict[str, Any]]:
    shown = []
    for slot in slots:
        state = CheckState(slot.state) if not check.paused else CheckState.PAUSED
        shown.append(
            {
                "name": "any location" if slot.location == ANY_LOCATION else slot.location,
                "state": state.label.lower(),
                "badge": BADGES[state],
                "last_run_at": slot.last_run_at,
                "failures": slot.consecutive_failures,
            }
        )
    return shown


def _check_context(request: HttpRequest, check: Check) -> dict[str, Any]:
    user, now = request.user, timezone.now()
    slots = list(check.slots.order_by("location"))
    results = list(check.results.order_by("-slot_at", "-id")[:RECENT_RESULTS])
    for result in results:
        result.latency_text = latency_text(result.latency_ms)
        result.badge = BADGES.get(CheckState(result.status), "badge-muted")
    start = _day_start(now, UPTIME_DAYS)
    days = list(_day_rows([check.pk], start).values_list(*DAY_COLUMNS).order_by("day"))
    _decorate(check, now, user, _uptime({row[0]: row[1:5] for row in days}, start, UPTIME_DAYS))
    chart = {
        "hourly": latency_series(check, now),
        "daily": _series((rollups.day_start(row[0]), *row[5:]) for row in days),
    }
    return {
        "check": check,
        "locations": _locations(check, slots) if len(slots) > 1 else [],
        "results": results,
        "chart": chart,
        "hourly_days": HOURLY_DAYS,
        "uptime_days": UPTIME_DAYS,
        "admin_url": reverse("admin:probes_check_change", args=[check.pk])
        if check.may_manage
        else "",
    }


@login_required
def check_detail(request: HttpRequest, pk: int) -> HttpResponse:
    check = _check_or_404(request, pk)
    context = _check_context(request, check)
    if check.may_manage:
        context["test_form"] = CheckTestForm.for_check(check)
    return render(request, "probes/check.html", context)


# --- actions ----------------------------------------------------------------------------------
def _after_action(request: HttpRequest, check: Check, done: str) -> HttpResponse:
    """htmx swaps the grid's row in place; a plain form post goes back where it came from."""
    check = Check.objects.select_related("service__team").get(pk=check.pk)
    if request.headers.get("HX-Request") and request.POST.get("row"):
        now = timezone.now()
        _decorate(check, now, request.user, uptime_days([check.pk], now)[check.pk])
        return render(
            request,
            "probes/_check_row.html",
            {"check": check, "done": done, "next": request.POST.get("next", "")},
        )
    messages.success(request, done)
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("check", pk=check.pk)


def _pause(check: Check, actor: Any) -> str:
    services.pause(check, actor=actor)
    return f"{check.name} is paused."


def _resume(check: Check, actor: Any) -> str:
    services.resume(check, actor=actor)
    return f"{check.name} is resumed: it runs within moments."


def _run(check: Check, actor: Any) -> str:
    result = services.run_now(check)
    done = f"{check.name} ran: {result.get_status_display().lower()}"
    if result.latency_ms is not None:
        done += f" in {latency_text(result.latency_ms)}"
    return done + (f" ({result.error})." if result.error else ".")


RESPONSES = {"pause": _pause, "resume": _resume, "run": _run}


@login_required
@require_POST
def check_respond(request: HttpRequest, pk: int, operation: str) -> HttpResponse:
    """Pause, resume or run now (responders): the same services the admin and the API call."""
    check = _check_or_404(request, pk, Action.RESPOND)
    return _after_action(request, check, RESPONSES[operation](check, request.user))


@login_required
@require_POST
def check_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the configuration in the form once, unsaved, and show what it found."""
    check = _check_or_404(request, pk, Action.MANAGE)
    form = CheckTestForm(request.POST)
    outcome = form.run() if form.is_valid() else None
    context = {"check": check, "test_form": form, "outcome": outcome}
    if outcome is not None:
        outcome.latency_text = latency_text(outcome.latency_ms)
        outcome.badge = BADGES.get(CheckState(outcome.status), "badge-muted")
    if request.headers.get("HX-Request"):
        return render(request, "probes/_check_test.html", context, status=200 if outcome else 400)
    page = _check_context(request, check)
    page.update(context)
    return render(request, "probes/check.html", page, status=200 if outcome else 400)
