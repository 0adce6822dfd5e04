"""Forms of the silence and maintenance window pages. They read and check input only; the
services in ``monitoring.suppression`` decide (their refusals land next to the field they name).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.utils import timezone

from monitoring.matchers import EQUAL, Matcher, MatcherError, format_matchers, parse_matchers
from monitoring.models import MaintenanceWindow, Service
from monitoring.suppression import parse_duration, time_zone_names
from monitoring.suppression.maintenance import MAX_RECURRING_DURATION, check_window_moment
from monitoring.suppression.silences import MAX_SILENCE_DURATION, SILENCE_TOO_LONG
from tocsin.models import Team
from tocsin.services import ServiceError

MATCHERS_HELP = 'Comma-separated, e.g. alertname="HighLatency", env=~"prod.*", severity!="info".'
WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


class DurationField(forms.Field):
    """``30m``, ``2h``, ``1h30m``, ``1d`` (amtool's way of writing durations) → a timedelta,
    at most ``max_value`` (``too_long`` says so)."""

    widget = forms.TextInput(attrs={"maxlength": 20, "size": 10})

    def __init__(self, *, max_value: timedelta, too_long: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_value = max_value
        self.too_long = too_long

    def to_python(self, value: Any) -> timedelta | None:
        text = str(value or "").strip()
        if not text:
            return None
        if len(text) > 20:
            raise forms.ValidationError("at most 20 characters, e.g. 1h30m")
        try:
            duration = parse_duration(text)
        except (ValueError, OverflowError) as exc:  # 99999999999999999d: past timedelta's range
            raise forms.ValidationError(str(exc)) from None
        if duration > self.max_value:
            raise forms.ValidationError(self.too_long)
        return duration


def duration_text(duration: timedelta | None) -> str:
    if not duration:
        return ""
    minutes = int(duration.total_seconds()) // 60
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)


def matchers_for_labels(labels: dict[str, Any]) -> str:
    """An alert's labels as matcher text (``{`` and ``}`` left off), to pre-fill a silence."""
    matchers = [Matcher(name, EQUAL, str(value)) for name, value in sorted(labels.items())]
    return format_matchers(matchers)[1:-1] if matchers else ""


class SilenceForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    service = forms.ModelChoiceField(
        queryset=Service.objects.none(),
        required=False,
        empty_label="Every service of the team",
        help_text="Only this service's alerts; empty: any of the team's alerts that match.",
    )
    matchers = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
        help_text=MATCHERS_HELP,
    )
    duration = DurationField(
        initial="2h",
        max_value=MAX_SILENCE_DURATION,
        too_long=SILENCE_TOO_LONG,
        help_text="How long: 30m, 2h, 1h30m, 1d (at most 365d).",
    )
    starts_in = DurationField(
        required=False,
        max_value=MAX_SILENCE_DURATION,
        too_long="a silence starts at most 365 days ahead",
        label="Starts in",
        help_text="Empty: now. Or later, e.g. 1h, at most 365d (the silence is pending until "
        "then).",
    )
    comment = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why: a ticket, a deploy, who to ask.",
    )

    def __init__(self, *args: Any, teams: Any, services: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Choices: the teams where the user may silence and their services; the view checks the
        # posted team first (404 for a team the user cannot see, 403 for a role too low).
        self.fields["team"].queryset = teams
        self.fields["service"].queryset = services

    def clean_matchers(self) -> list[dict[str, str]]:
        try:
            matchers = parse_matchers(self.cleaned_data["matchers"])
        except MatcherError as exc:
            raise forms.ValidationError(str(exc)) from None
        if not matchers:
            raise forms.ValidationError('give at least one matcher, e.g. alertname="X"')
        return [m.as_dict() for m in matchers]

    def clean_duration(self) -> timedelta:
        duration = self.cleaned_data.get("duration")
        if duration is None or duration <= timedelta(0):
            raise forms.ValidationError("a positive duration, e.g. 2h")
        return duration

    def service_arguments(self, now: datetime) -> dict[str, Any]:
        """The ``create_silence`` arguments this form stands for."""
        data = self.cleaned_data
        starts_at = now + data["starts_in"] if data.get("starts_in") else now
        return {
            "team": data["team"],
            "service": data.get("service"),
            "matchers": data["matchers"],
            "starts_at": starts_at,
            "duration": data["duration"],
            "comment": data.get("comment") or "",
        }


class MaintenanceWindowForm(forms.Form):
    KIND_CHOICES = [("once", "Once"), ("weekly", "Every week")]

    service = forms.ModelChoiceField(queryset=Service.objects.none(), empty_label=None)
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(
        choices=KIND_CHOICES, initial="once", widget=forms.RadioSelect, label="Repeats"
    )
    time_zone = forms.ChoiceField(
        choices=(),
        initial="UTC",
        help_text="Times below are in this zone; a weekly window keeps its local start time "
        "across daylight-saving changes.",
    )
    starts_at = forms.DateTimeField(
        required=False,
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        label="Starts at",
    )
    ends_at = forms.DateTimeField(
        required=False,
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        label="Ends at",
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    start_time = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    duration = DurationField(
        required=False,
        max_value=MAX_RECURRING_DURATION,
        too_long="at most 7 days (it repeats every week)",
        help_text="How long each lasts: 2h, 1h30m (at most 7d).",
    )

    def __init__(
        self,
        *args: Any,
        services: Any = None,
        window: MaintenanceWindow | None = None,
        **kwargs: Any,
    ) -> None:
        if window is not None:
            kwargs.setdefault("initial", self.initial_for(window))
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in time_zone_names()]
        if window is not None:
            del self.fields["service"]  # a window stays with its service (as in the API/admin)
        else:
            self.fields["service"].queryset = services

    @staticmethod
    def initial_for(window: MaintenanceWindow) -> dict[str, Any]:
        zone = ZoneInfo(window.time_zone or "UTC")

        def local(moment: datetime | None) -> str:
            return moment.astimezone(zone).strftime(LOCAL_INPUT) if moment else ""

        return {
            "title": window.title,
            "description": window.description,
            "kind": "weekly" if window.is_recurring else "once",
            "time_zone": window.time_zone or "UTC",
            "starts_at": local(window.starts_at),
            "ends_at": local(window.ends_at),
            "weekdays": window.weekdays,
            "start_time": window.start_time,
            "duration": duration_text(window.duration),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            data.get("kind") == "weekly"
            and not data.get("weekdays")
            and "weekdays" not in self.errors
        ):
            self.add_error("weekdays", "pick the days a weekly window starts on")
        try:
            zone = ZoneInfo(data.get("time_zone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return data  # the choice field said so already
        for name in ("starts_at", "ends_at"):
            # The browser sends wall-clock time; it is the window's zone's, not the server's.
            if data.get(name) is not None:
                try:
                    wall = timezone.localtime(data[name]).replace(tzinfo=None)
                    data[name] = wall.replace(tzinfo=zone)
                    if data.get("kind") != "weekly":  # a weekly window ignores these fields
                        check_window_moment(data[name], name)
                except (OverflowError, ServiceError) as error:
                    # Near the years 1 and 9999 the zone may push the moment out of range.
                    message = getattr(error, "message", "out of range")
                    self.add_error(name, message)
        return data

    def window_fields(self) -> dict[str, Any]:
        """The window's fields for ``create/update_maintenance_window``: only those of its kind,
        so switching a window between once and weekly clears the other kind's."""
        data = self.cleaned_data
        fields: dict[str, Any] = {
            "description": data.get("description") or "",
            "time_zone": data.get("time_zone") or "UTC",
        }
        if data.get("kind") == "weekly":
            fields.update(
                starts_at=None,
                ends_at=None,
                weekdays=data.get("weekdays") or [],
                start_time=data.get("start_time"),
                duration=data.get("duration"),
            )
        else:
            fields.update(
                starts_at=data.get("starts_at"),
                ends_at=data.get("ends_at"),
                weekdays=[],
                start_time=None,
                duration=None,
            )
        return fields
