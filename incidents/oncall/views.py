"""On-call schedule pages and calendar feeds: thin views over ``incidents.oncall.services``.

Pages follow the UI's rule: a schedule of a team you cannot see is a 404, an action your role
does not allow is a 403. The iCal feeds need no login (calendar apps cannot log in): their URL
carries a token signed with the site's secret for one user (and one schedule), and the feed is
served only while that user may still view the schedule, so leaving a team ends access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from incidents.models import Schedule, ScheduleOverride, ShiftSwapRequest, SwapStatus
from incidents.oncall import ical, rotations, swaps
from incidents.oncall import services as oncall
from tocsin.forms import add_service_error
from tocsin.permissions import Action, can, members_who_may, scope
from tocsin.services import ServiceError

DEFAULT_WEEKS = 2
MAX_WEEKS = 4
PALETTE_SIZE = 8


# --- helpers ------------------------------------------------------------------------------------


def _schedule_or_404(request: HttpRequest, pk: int, action: Action = Action.VIEW) -> Schedule:
    schedule = (
        rotations.schedules_with_layers(Schedule.objects.select_related("team"))
        .filter(pk=pk)
        .first()
    )
    if schedule is None or not can(request.user, Action.VIEW, schedule):
        raise Http404("no such schedule")
    if not can(request.user, action, schedule):
        raise PermissionDenied(f"your role in {schedule.team} does not allow this")
    return schedule


def colour_of(user: Any) -> int:
    """A stable palette slot per user, so someone keeps their colour across pages."""
    return user.pk % PALETTE_SIZE


# --- forms --------------------------------------------------------------------------------------

_WHEN = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class OverrideForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Who")
    start = forms.DateTimeField(widget=_WHEN)
    end = forms.DateTimeField(widget=_WHEN)
    reason = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, schedule: Schedule, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = members_who_may(Action.RESPOND, schedule.team_id)
        if not can(actor, Action.MANAGE, schedule):
            users = users.filter(pk=actor.pk)
        self.fields["user"].queryset = users
        self.fields["user"].label_from_instance = lambda u: u.get_username()
        self.fields["start"].help_text = f"In {schedule.time_zone}."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "The end must be after the start.")
        return data


class SwapForm(forms.Form):
    start = forms.DateTimeField(widget=_WHEN)
    end = forms.DateTimeField(widget=_WHEN)
    proposed_taker = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, label="Ask"
    )
    note = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, schedule: Schedule, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["proposed_taker"].queryset = members_who_may(
            Action.RESPOND, schedule.team_id
        ).exclude(pk=actor.pk)
        self.fields["proposed_taker"].label_from_instance = lambda u: u.get_username()
        self.fields["proposed_taker"].empty_label = "Anyone in the team"
        self.fields["start"].help_text = f"In {schedule.time_zone}; a window you are on call for."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "The end must be after the start.")
        return data


# --- pages --------------------------------------------------------------------------------------


@login_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    schedules = list(
        rotations.with_window_overrides(
            rotations.schedules_with_layers(
                scope(Schedule.objects.select_related("team"), request.user, Action.VIEW)
            ),
            now,
            now + timedelta(seconds=1),
        ).order_by("team__name", "name")
    )
    for schedule in schedules:
        schedule.on_call = [(u, colour_of(u)) for u in rotations.on_call_users(schedule, now)]
    return render(request, "incidents/schedules/list.html", {"schedules": schedules, "now": now})


@dataclass
class Bar:
    user: Any
    start: datetime
    end: datetime
    source: str
    left: float
    width: float
    colour: int
    span: str = ""  # "all day", "08:00 to 17:00" (with an en dash), "17:00 to 24:00"


@dataclass
class Day:
    date: date
    bars: list[Bar]
    is_today: bool


def _span(lo: datetime, hi: datetime, day_start: datetime, day_end: datetime, zone: Any) -> str:
    """A shift's part of one day as people say it: a whole day is "all day" (not "00:00 to
    00:00") and a shift that runs past midnight ends at 24:00 on this day."""
    if lo == day_start and hi == day_end:
        return "all day"
    end = "24:00" if hi == day_end else f"{hi.astimezone(zone):%H:%M}"
    return f"{lo.astimezone(zone):%H:%M}\N{EN DASH}{end}"


def _calendar(
    schedule: Schedule, found: list[rotations.Shift], first: date, days: int
) -> list[Day]:
    zone = schedule.zone
    today = timezone.now().astimezone(zone).date()
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        # In UTC: subtracting two datetimes of the same zone ignores a DST change between them.
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
        day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        day_end = day_end.astimezone(UTC)
        length = (day_end - day_start).total_seconds()  # 23 or 25 hours on DST days
        bars = []
        for shift in found:
            lo, hi = max(shift.start, day_start), min(shift.end, day_end)
            if lo >= hi:
                continue
            bars.append(
                Bar(
                    user=shift.user,
                    start=lo.astimezone(zone),
                    end=hi.astimezone(zone),
                    source=shift.source,
                    left=round((lo - day_start).total_seconds() / length * 100, 3),
                    width=round((hi - lo).total_seconds() / length * 100, 3),
                    colour=colour_of(shift.user),
                    span=_span(lo, hi, day_start, day_end, zone),
                )
            )
        out.append(Day(date=day, bars=bars, is_today=day == today))
    return out


def _render_detail(
    request: HttpRequest,
    schedule: Schedule,
    *,
    status: int = 200,
    override_form: OverrideForm | None = None,
    swap_form: SwapForm | None = None,
) -> HttpResponse:
    user = request.user
    zone = schedule.zone
    try:
        weeks = min(MAX_WEEKS, max(1, int(request.GET.get("weeks", DEFAULT_WEEKS))))
    except ValueError:
        weeks = DEFAULT_WEEKS
    now = timezone.now()
    first = now.astimezone(zone).date()
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(first + timedelta(days=7 * weeks), datetime.min.time(), tzinfo=zone)
    schedule = rotations.with_window_overrides(
        rotations.schedules_with_layers(Schedule.objects.select_related("team")),
        start,
        end,
    ).get(pk=schedule.pk)
    found = rotations.shifts(schedule, start, end)
    can_respond = can(user, Action.RESPOND, schedule)
    people: dict[int, Any] = {}
    for shift in found:
        people.setdefault(shift.user.pk, shift.user)
    legend = [(u, colour_of(u)) for u in sorted(people.values(), key=lambda u: u.username)]
    overrides = (
        ScheduleOverride.objects.filter(schedule=schedule, end__gt=now)
        .select_related("user", "created_by")
        .order_by("start", "id")[:50]
    )
    swaps = (
        ShiftSwapRequest.objects.filter(schedule=schedule, status=SwapStatus.OPEN)
        .select_related("requester", "proposed_taker")
        .order_by("start", "id")[:50]
    )
    can_manage = can(user, Action.MANAGE, schedule)
    with timezone.override(zone):
        if can_respond:
            override_form = override_form or OverrideForm(
                schedule=schedule, actor=user, initial={"user": user.pk}
            )
            swap_form = swap_form or SwapForm(schedule=schedule, actor=user)
        context = {
            "schedule": schedule,
            "days": _calendar(schedule, found, first, 7 * weeks),
            "weeks": weeks,
            "week_choices": range(1, MAX_WEEKS + 1),
            "shifts": found,
            "on_call": [(u, colour_of(u)) for u in rotations.on_call_users(schedule, now)],
            "legend": legend,
            "overrides": [
                (o, can_manage or user.pk in (o.user_id, o.created_by_id)) for o in overrides
            ],
            "swaps": swaps,
            "can_respond": can_respond,
            "can_manage": can_manage,
            "override_form": override_form if can_respond else None,
            "swap_form": swap_form if can_respond else None,
            "schedule_feed": request.build_absolute_uri(
                reverse(
                    "schedule_ical",
                    args=[schedule.pk, ical.schedule_feed_token(schedule, user)],
                )
            ),
            "user_feed": request.build_absolute_uri(
                reverse("user_ical", args=[ical.user_feed_token(user)])
            ),
        }
        return render(request, "incidents/schedules/detail.html", context, status=status)


@login_required
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _schedule_or_404(request, pk))


@login_required
@require_POST
def override_add(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule_or_404(request, pk, Action.RESPOND)
    with timezone.override(schedule.zone):  # form times are in the schedule's zone
        form = OverrideForm(request.POST, schedule=schedule, actor=request.user)
        valid = form.is_valid()
    if valid:
        data = form.cleaned_data
        try:
            oncall.create_override(
                schedule,
                data["user"],
                data["start"],
                data["end"],
                actor=request.user,
                reason=data["reason"],
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"{data['user'].get_username()} is on call as overridden.")
            return redirect("schedule", pk=schedule.pk)
    return _render_detail(request, schedule, status=400, override_form=form)


@login_required
@require_POST
def override_delete(request: HttpRequest, pk: int, override_id: int) -> HttpResponse:
    schedule = _schedule_or_404(request, pk, Action.RESPOND)
    override = ScheduleOverride.objects.filter(schedule=schedule, pk=override_id).first()
    if override is None:
        raise Http404("no such override")
    override.schedule = schedule
    oncall.delete_override(override, actor=request.user)  # PermissionDenied → 403
    messages.success(request, "Override removed.")
    return redirect("schedule", pk=schedule.pk)


@login_required
@require_POST
def swap_add(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule_or_404(request, pk, Action.RESPOND)
    with timezone.override(schedule.zone):
        form = SwapForm(request.POST, schedule=schedule, actor=request.user)
        valid = form.is_valid()
    if valid:
        data = form.cleaned_data
        try:
            swaps.request_swap(
                schedule,
                request.user,
                data["start"],
                data["end"],
                proposed_taker=data["proposed_taker"],
                note=data["note"],
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "Swap requested.")
            return redirect("schedule", pk=schedule.pk)
    return _render_detail(request, schedule, status=400, swap_form=form)


def _swap_or_404(request: HttpRequest, pk: int, swap_id: int) -> ShiftSwapRequest:
    schedule = _schedule_or_404(request, pk, Action.RESPOND)
    swap = (
        ShiftSwapRequest.objects.filter(schedule=schedule, pk=swap_id)
        .select_related("requester", "proposed_taker")
        .first()
    )
    if swap is None:
        raise Http404("no such swap request")
    swap.schedule = schedule
    return swap


def _decide(request: HttpRequest, pk: int, swap_id: int, call: Any, done: str) -> HttpResponse:
    swap = _swap_or_404(request, pk, swap_id)
    try:
        call(swap, request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("schedule", pk=pk)


@login_required
@require_POST
def swap_accept(request: HttpRequest, pk: int, swap_id: int) -> HttpResponse:
    return _decide(request, pk, swap_id, swaps.accept_swap, "You took the shift.")


@login_required
@require_POST
def swap_decline(request: HttpRequest, pk: int, swap_id: int) -> HttpResponse:
    return _decide(request, pk, swap_id, swaps.decline_swap, "Swap declined.")


@login_required
@require_POST
def swap_cancel(request: HttpRequest, pk: int, swap_id: int) -> HttpResponse:
    return _decide(request, pk, swap_id, swaps.cancel_swap, "Swap request withdrawn.")
