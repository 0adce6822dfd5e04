"""Escalation policies and their steps.

A policy is a list of steps, each paging its targets ``delay_minutes`` after the previous one.
An incident copies the policy into a snapshot when it triggers (``EscalationPolicy.snapshot``),
so later edits never change an escalation already under way.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tocsin.models import Team

__all__ = [
    "PRIORITY_ORDER",
    "EscalationPolicy",
    "EscalationStep",
    "HoursCondition",
    "step_applies",
    "validate_windows",
]

# Most urgent first: "P3 or more urgent" is every priority up to and including P3 here.
PRIORITY_ORDER = ["P1", "P2", "P3", "P4", "P5"]


class HoursCondition(models.TextChoices):
    ALWAYS = "always", "At any time"
    INSIDE = "inside", "Only inside the time windows"
    OUTSIDE = "outside", "Only outside the time windows (out of hours)"


class EscalationPolicy(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="escalation_policies")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # After the last step: run the whole list again this many times while nobody acknowledges.
    repeat_times = models.PositiveSmallIntegerField(default=0)
    # Wait between the last step of a round and the first step of the next one.
    repeat_after_minutes = models.PositiveIntegerField(default=10)
    # An acknowledged incident not resolved within this many minutes triggers again (0 = never).
    ack_timeout_minutes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="escalation_policy_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict[str, Any]:
        """What an incident keeps of the policy it started with (plain JSON)."""
        return {
            "policy_id": self.pk,
            "name": self.name,
            "repeat_times": self.repeat_times,
            "repeat_after_minutes": self.repeat_after_minutes,
            "ack_timeout_minutes": self.ack_timeout_minutes,
            "steps": [step.snapshot() for step in self.steps.order_by("position", "id")],
        }


class EscalationStep(models.Model):
    """Who to page, when, and under which condition.

    Targets: ``user_ids`` (in order; round robin walks this list), a schedule (whoever is on
    call when the step runs) and/or the whole team (its responders and managers).
    Condition: the step runs only for incidents of ``min_priority`` or more urgent (P1 is the
    most urgent; blank = any), and only inside or outside the ``windows`` read in ``time_zone``.
    A step whose condition does not hold is skipped. ``windows`` is a list of
    ``{"days": [0-6, Monday=0], "start": "HH:MM", "end": "HH:MM"}``; an end before the start
    runs past midnight (the days name the day the window starts).
    """

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    delay_minutes = models.PositiveIntegerField(default=0)
    user_ids = models.JSONField(default=list, blank=True)
    schedule = models.ForeignKey(
        "incidents.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notify_team = models.BooleanField(default=False)
    round_robin = models.BooleanField(
        default=False, help_text="Page one target per run, the next one each time."
    )
    reassign = models.BooleanField(
        default=False, help_text="Assign the incident to the first target paged."
    )
    hours_condition = models.CharField(
        max_length=8, choices=HoursCondition.choices, default=HoursCondition.ALWAYS
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    windows = models.JSONField(default=list, blank=True)
    min_priority = models.CharField(max_length=2, blank=True, default="")

    class Meta:
        ordering = ["policy", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "position"], name="escalation_step_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: step {self.position + 1}"

    @property
    def team(self) -> Team:
        return self.policy.team

    @property
    def team_id(self) -> int:
        return self.policy.team_id

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = f"unknown time zone {self.time_zone!r}"
        try:
            validate_windows(self.windows)
        except ValidationError as exc:
            errors["windows"] = exc.messages[0]
        if self.min_priority and self.min_priority not in PRIORITY_ORDER:
            errors["min_priority"] = f"one of {', '.join(PRIORITY_ORDER)} or blank"
        if not isinstance(self.user_ids, list) or not all(
            isinstance(u, int) for u in self.user_ids
        ):
            errors["user_ids"] = "a list of user ids"
        if errors:
            raise ValidationError(errors)

    def snapshot(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "delay_minutes": self.delay_minutes,
            "user_ids": list(self.user_ids or []),
            "schedule_id": self.schedule_id,
            "notify_team": self.notify_team,
            "round_robin": self.round_robin,
            "reassign": self.reassign,
            "hours_condition": self.hours_condition,
            "time_zone": self.time_zone,
            "windows": list(self.windows or []),
            "min_priority": self.min_priority,
        }


def _parse_hhmm(value: Any) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        raise ValidationError(f"{value!r} is not a time of day (HH:MM)") from None


def validate_windows(windows: Any) -> None:
    if not isinstance(windows, list):
        raise ValidationError("a list of {days, start, end} windows")
    for window in windows:
        if not isinstance(window, dict) or set(window) - {"days", "start", "end"}:
            raise ValidationError("each window is {days, start, end}")
        days = window.get("days", list(range(7)))
        if not isinstance(days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            raise ValidationError("days are numbers 0 (Monday) to 6 (Sunday)")
        _parse_hhmm(window.get("start"))
        _parse_hhmm(window.get("end"))


def _in_windows(windows: list[dict[str, Any]], local: datetime) -> bool:
    now_t = local.time().replace(second=0, microsecond=0)
    weekday = local.weekday()
    for window in windows:
        days = window.get("days", list(range(7)))
        start, end = _parse_hhmm(window["start"]), _parse_hhmm(window["end"])
        if start <= end:
            if weekday in days and start <= now_t < end:
                return True
        else:  # past midnight: the evening part today, or the morning part of a day after one
            if weekday in days and now_t >= start:
                return True
            if (weekday - 1) % 7 in days and now_t < end:
                return True
    return False


def step_applies(step: dict[str, Any], priority: str, at: datetime) -> tuple[bool, str]:
    """Does a (snapshotted) step run for an incident of ``priority`` at ``at``? And why not."""
    min_priority = step.get("min_priority") or ""
    if min_priority and PRIORITY_ORDER.index(priority) > PRIORITY_ORDER.index(min_priority):
        return False, f"only for {min_priority} or more urgent"
    condition = step.get("hours_condition") or HoursCondition.ALWAYS
    if condition == HoursCondition.ALWAYS or not step.get("windows"):
        return True, ""
    local = at.astimezone(ZoneInfo(step.get("time_zone") or "UTC"))
    inside = _in_windows(step["windows"], local)
    if condition == HoursCondition.INSIDE and not inside:
        return False, "only inside its time windows"
    if condition == HoursCondition.OUTSIDE and inside:
        return False, "only outside its time windows"
    return True, ""
