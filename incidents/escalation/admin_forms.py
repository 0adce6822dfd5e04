"""Forms of the escalation policy admin, written for someone setting up paging the first time:
help text on every field, people picked from the team (not typed), priorities and time zones
from a list, and time windows as days + start + end instead of JSON."""

from __future__ import annotations

from datetime import time
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from incidents.models import PRIORITY_ORDER, EscalationPolicy, EscalationStep, HoursCondition
from incidents.oncall.models import _available_time_zones

WEEKDAYS = [
    (0, "Mon"),
    (1, "Tue"),
    (2, "Wed"),
    (3, "Thu"),
    (4, "Fri"),
    (5, "Sat"),
    (6, "Sun"),
]
# Windows the form edits; more (set through the API) are kept as they are.
FORM_WINDOWS = 2

POLICY_HELP = {
    "team": "The team whose incidents this policy pages; only its members can be paged.",
    "name": "A name to pick the policy by on a service, e.g. “Business hours, then on call”.",
    "description": "Optional: when to use it, who agreed to it.",
    "repeat_times": (
        "While nobody acknowledges, run all the steps again this many times after the last "
        "one (0: run them once)."
    ),
    "repeat_after_minutes": "Minutes between the last step and the first step of a repeat.",
    "ack_timeout_minutes": (
        "An acknowledged incident still open after this many minutes triggers again and "
        "escalates from the first step (0: never)."
    ),
}


class PolicyForm(forms.ModelForm):
    class Meta:
        model = EscalationPolicy
        fields = ("team", "name", "description", "repeat_times", "repeat_after_minutes")
        fields = (*fields, "ack_timeout_minutes")
        help_texts = POLICY_HELP


def _time(value: Any) -> time | None:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (TypeError, ValueError):
        return None


def _window_fields(n: int) -> dict[str, forms.Field]:
    label = "Time window" if n == 1 else f"Time window {n}"
    return {
        f"window{n}_days": forms.TypedMultipleChoiceField(
            label=f"{label}: days",
            choices=WEEKDAYS,
            coerce=int,
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text="The days the window starts on.",
        ),
        f"window{n}_start": forms.TimeField(
            label=f"{label}: from",
            required=False,
            widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            help_text="HH:MM, in the step's time zone.",
        ),
        f"window{n}_end": forms.TimeField(
            label=f"{label}: until",
            required=False,
            widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            help_text="HH:MM; earlier than “from” runs past midnight (22:00 to 06:00).",
        ),
    }


class StepForm(forms.ModelForm):
    """One step. ``user_queryset`` (set per request by the inline) is whom it may page."""

    user_queryset: QuerySet | None = None

    users = forms.ModelMultipleChoiceField(
        label="People",
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=(
            "Members of the team to page. They are paged in the order already saved, new ones "
            "after them by username; with round robin, one of them per run."
        ),
    )
    min_priority = forms.ChoiceField(
        label="Only for",
        required=False,
        choices=[("", "Any priority")]
        + [(p, f"{p} or more urgent" if p != "P1" else "P1 only") for p in PRIORITY_ORDER],
        help_text="Skip this step for less urgent incidents (P1 is the most urgent).",
    )
    time_zone = forms.ChoiceField(initial="UTC", help_text="The zone the time windows are read in.")
    window1_days, window1_start, window1_end = _window_fields(1).values()
    window2_days, window2_start, window2_end = _window_fields(2).values()

    class Meta:
        model = EscalationStep
        fields = (
            "delay_minutes",
            "schedule",
            "notify_team",
            "round_robin",
            "reassign",
            "hours_condition",
            "time_zone",
            "min_priority",
        )
        help_texts = {
            "delay_minutes": (
                "Minutes after the previous step (for the first step: after the incident "
                "opens). 0: at once."
            ),
            "schedule": "Also page whoever is on call in this schedule when the step runs.",
            "notify_team": "Also page every responder and manager of the team.",
            "hours_condition": (
                "Run the step at any time, or only inside / only outside the time windows below "
                "(e.g. outside business hours); a step that does not apply is skipped."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["users"].queryset = (
            self.user_queryset if self.user_queryset is not None else User.objects.none()
        ).order_by(User.USERNAME_FIELD)
        self.fields["time_zone"].choices = [(z, z) for z in sorted(_available_time_zones())]
        self.saved_user_ids = list(self.instance.user_ids or []) if self.instance.pk else []
        windows = list(self.instance.windows or []) if self.instance.pk else []
        self.extra_windows = windows[FORM_WINDOWS:]
        if self.instance.pk:
            self.initial["users"] = self.saved_user_ids
            for n, window in enumerate(windows[:FORM_WINDOWS], start=1):
                self.initial[f"window{n}_days"] = window.get("days", list(range(7)))
                self.initial[f"window{n}_start"] = _time(window.get("start"))
                self.initial[f"window{n}_end"] = _time(window.get("end"))
        if self.extra_windows:
            self.fields[
                "window2_end"
            ].help_text += (
                f" {len(self.extra_windows)} more window(s) set through the API are kept."
            )

    def clean_users(self) -> list[int]:
        chosen = {u.pk: u for u in self.cleaned_data["users"]}
        kept = [pk for pk in self.saved_user_ids if pk in chosen]
        added = sorted(
            (u for pk, u in chosen.items() if pk not in kept), key=lambda u: u.get_username()
        )
        return kept + [u.pk for u in added]

    def _window(self, n: int) -> dict[str, Any] | None:
        data = self.cleaned_data
        days = data.get(f"window{n}_days") or []
        start, end = data.get(f"window{n}_start"), data.get(f"window{n}_end")
        if not days and start is None and end is None:
            return None
        problems = False
        if start is None:
            self.add_error(f"window{n}_start", "Give the time the window starts.")
            problems = True
        if end is None:
            self.add_error(f"window{n}_end", "Give the time the window ends.")
            problems = True
        if not days:
            self.add_error(f"window{n}_days", "Tick the days the window applies to.")
            problems = True
        if start is not None and start == end:
            self.add_error(f"window{n}_end", "The window must end at another time than it starts.")
            problems = True
        if problems:
            return None
        return {
            "days": sorted(days),
            "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M"),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        windows = [w for n in range(1, FORM_WINDOWS + 1) if (w := self._window(n)) is not None]
        windows += self.extra_windows
        data["windows"] = windows
        condition = data.get("hours_condition") or HoursCondition.ALWAYS
        if condition != HoursCondition.ALWAYS and not windows and not self.errors:
            self.add_error(
                "hours_condition",
                "Give at least one time window below, or choose “At any time”.",
            )
        targets = data.get("users") or data.get("schedule") or data.get("notify_team")
        if not targets and not self.errors and not data.get("DELETE"):
            self.add_error(
                None,
                "This step pages nobody: tick people, pick a schedule or notify the team.",
            )
        return data
