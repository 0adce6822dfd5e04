"""On-call schedules: rotations, layers, overrides, shift swaps.

Times are stored in UTC; rotations are computed in the schedule's own time zone (see
``incidents.oncall.services``), so a 09:00 handoff stays at 09:00 local time across DST changes.
"""

from __future__ import annotations

import zoneinfo
from datetime import time
from functools import cached_property

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tocsin.models import Team

__all__ = [
    "Rotation",
    "Schedule",
    "ScheduleLayer",
    "ScheduleLayerMember",
    "ScheduleOverride",
    "ShiftSwapRequest",
    "SwapStatus",
    "validate_time_zone",
]


def validate_time_zone(value: str) -> None:
    if value not in _available_time_zones():
        raise ValidationError(f'unknown time zone "{value}"; use an IANA name like Europe/Berlin')


def _available_time_zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = zoneinfo.available_timezones()
    return _ZONES


_ZONES: set[str] | None = None


class Schedule(models.Model):
    """Who is on call for a team, when: layers of rotations, plus overrides on top."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="schedule_unique_team_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Rotation(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    CUSTOM = "custom", "Custom length"


class ScheduleLayer(models.Model):
    """One rotation. Where layers overlap, the one with the higher ``priority`` wins.

    Daily and weekly rotations hand off at ``handoff_time`` (weekly: on ``handoff_weekday``,
    Monday = 0) in the schedule's time zone; custom rotations hand off every
    ``shift_length_hours`` real hours counted from ``starts_at``. The first participant takes
    the shift that contains ``starts_at``. With ``restrict_start``/``restrict_end`` set the
    layer only covers that local time-of-day range each day (wrapping past midnight when the
    end is earlier than the start), leaving the rest to lower layers.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=100)
    priority = models.IntegerField(default=0, help_text="Higher layers win where they overlap.")
    rotation = models.CharField(max_length=16, choices=Rotation.choices, default=Rotation.WEEKLY)
    shift_length_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Custom rotations only: hours per shift."
    )
    handoff_time = models.TimeField(default=time(9, 0))
    handoff_weekday = models.PositiveSmallIntegerField(
        default=0, help_text="Weekly rotations: 0 = Monday … 6 = Sunday."
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    restrict_start = models.TimeField(null=True, blank=True)
    restrict_end = models.TimeField(null=True, blank=True)
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ScheduleLayerMember", related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["schedule", "-priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(handoff_weekday__lte=6), name="layer_weekday_range"
            ),
            models.CheckConstraint(
                condition=~models.Q(rotation="custom") | models.Q(shift_length_hours__gte=1),
                name="layer_custom_has_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} / {self.name}"

    @property
    def team(self) -> Team:
        return self.schedule.team

    @property
    def team_id(self) -> int:
        return self.schedule.team_id

    def ordered_users(self) -> list:
        """Participants in rotation order (uses prefetched members when present)."""
        members = sorted(self.members.all(), key=lambda m: m.position)
        return [m.user for m in members]


class ScheduleLayerMember(models.Model):
    """A participant's place in a layer's rotation (the same user may appear twice)."""

    layer = models.ForeignKey(ScheduleLayer, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["layer", "position"]
        constraints = [
            models.UniqueConstraint(fields=["layer", "position"], name="layer_member_position"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.user}"

    @property
    def team_id(self) -> int:
        return self.layer.schedule.team_id


class ScheduleOverride(models.Model):
    """Someone takes over the schedule for a while, above every layer."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="override_end_after_start"
            ),
        ]
        indexes = [
            # shifts(): "overrides of this schedule overlapping [start, end)".
            models.Index(fields=["schedule", "end"], name="override_schedule_end"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.schedule} from {self.start:%Y-%m-%d %H:%M}Z"

    @property
    def team_id(self) -> int:
        return self.schedule.team_id


class SwapStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    CANCELLED = "cancelled", "Cancelled"


class ShiftSwapRequest(models.Model):
    """A responder asks someone to take (part of) their shift; accepting writes an override."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="swap_requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    proposed_taker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=SwapStatus.choices, default=SwapStatus.OPEN)
    taker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    override = models.OneToOneField(
        ScheduleOverride, null=True, blank=True, on_delete=models.SET_NULL, related_name="swap"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="swap_end_after_start"
            ),
        ]
        indexes = [
            # Schedule page: "open swap requests of this schedule".
            models.Index(
                fields=["schedule", "start"],
                condition=models.Q(status="open"),
                name="swap_open_by_schedule",
            ),
        ]

    def __str__(self) -> str:
        return f"swap #{self.pk} on {self.schedule} ({self.status})"

    @property
    def team_id(self) -> int:
        return self.schedule.team_id
