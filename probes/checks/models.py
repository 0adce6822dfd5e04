"""Checks: configuration and aggregated state; their slots, results and rollups.

A ``Check`` is what people configure. Its schedule lives in ``Slot`` rows, one per location
it must be probed from (one ``*`` slot, any worker, when it names none): the scheduler claims
due slots with one conditional UPDATE (``probes.checks.scheduler``), and each slot keeps its own
state machine (``probes.checks.state``), so a check probed from three places counts failures
per place and is down when ``down_when_failing`` of its slots are down. The check's ``state``
is derived from its slots after every run; ``alerted`` says whether the pipeline has been told
it is down, and ``alerts.sync`` raises or resolves the difference.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now as utc_now

from probes import kinds
from probes.checks.choices import (
    ANY_LOCATION,
    MAX_TIMEOUT,
    MIN_INTERVAL,
    OUTCOME_MEMORY,
    CheckState,
    ResultStatus,
)
from probes.checks.results import RecentMinute, Result, Rollup
from probes.checks.state import SlotStateMachine
from probes.conditions import Condition, ConditionError, parse
from probes.kinds.base import InvalidConfig

__all__ = ["Check", "CheckState", "RecentMinute", "Result", "ResultStatus", "Rollup", "Slot"]


def parse_conditions(texts: Any, field: str) -> list[Condition]:
    """Parse every condition; a ValidationError names the condition and the character."""
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValidationError({field: "Give a list of conditions (strings)."})
    parsed = []
    for number, text in enumerate(texts, start=1):
        try:
            parsed.append(parse(text))
        except ConditionError as exc:
            raise ValidationError(
                {field: f"Condition {number}: {exc.message} at position {exc.position}: {text}"}
            ) from None
    return parsed


class Check(models.Model):
    service = models.ForeignKey(
        "monitoring.Service", on_delete=models.CASCADE, related_name="checks"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=kinds.choices())
    config = models.JSONField(default=dict, blank=True, help_text="The kind's settings.")
    conditions = models.JSONField(
        default=list, blank=True, help_text="What “up” means; empty: the kind's default."
    )
    degraded_conditions = models.JSONField(
        default=list, blank=True, help_text="Softer conditions whose failure means “degraded”."
    )
    interval = models.PositiveIntegerField(default=60, validators=[MinValueValidator(MIN_INTERVAL)])
    timeout = models.FloatField(
        default=10.0, validators=[MinValueValidator(0.1), MaxValueValidator(MAX_TIMEOUT)]
    )
    failure_threshold = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(OUTCOME_MEMORY)],
        help_text="Failures in a row before the check is down.",
    )
    recovery_threshold = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(OUTCOME_MEMORY)],
        help_text="Successes in a row before a down check is up again.",
    )
    window_failures = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(OUTCOME_MEMORY)],
        help_text="Instead of failures in a row: down when this many of the last runs failed…",
    )
    window_size = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(OUTCOME_MEMORY)],
        help_text="…out of this many (“X of the last Y”).",
    )
    quick_retry = models.BooleanField(
        default=False, help_text="Run once more at once after a failure before counting it."
    )
    reminder_interval = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds: remind (update the alert) while down."
    )
    parents = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="children",
        help_text="While a parent is down, this check's down alerts are held back.",
    )
    locations = models.JSONField(
        default=list, blank=True, help_text="Probe from each of these locations (empty: any)."
    )
    down_when_failing = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Down when this many locations are down.",
    )
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=utc_now, editable=False)

    # -- denormalised state (pages read it; the scheduler writes it after a run) ----------------
    state = models.CharField(
        max_length=10, choices=CheckState.choices, default=CheckState.UNKNOWN, editable=False
    )
    state_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    last_explanation = models.TextField(blank=True, editable=False)
    last_excerpt = models.TextField(blank=True, editable=False)
    alerted = models.BooleanField(default=False, editable=False)  # the pipeline knows it's down
    last_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminders_sent = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(interval__gte=MIN_INTERVAL), name="check_interval_floor"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def team_id(self) -> int:
        return self.service.team_id

    # -- validation -------------------------------------------------------------------------------
    def clean(self) -> None:
        errors: dict[str, Any] = {}
        try:
            module = kinds.get(self.kind)
        except LookupError as exc:
            raise ValidationError({"kind": str(exc)}) from None
        try:
            self.config = module.validate(self.config or {})
        except InvalidConfig as exc:
            errors["config"] = [f"{name}: {message}" for name, message in exc.fields.items()]
        for field in ("conditions", "degraded_conditions"):
            try:
                parse_conditions(getattr(self, field), field)
            except ValidationError as exc:
                errors.update(exc.message_dict)
        if bool(self.window_failures) != bool(self.window_size):
            errors["window_size"] = "Give both numbers of “X of the last Y”, or neither."
        elif self.window_failures and self.window_size and self.window_failures > self.window_size:
            errors["window_failures"] = "X cannot be more than Y."
        if not isinstance(self.locations, list) or not all(
            isinstance(name, str) and name and name != ANY_LOCATION and len(name) <= 40
            for name in self.locations
        ):
            errors["locations"] = "Give a list of location names (up to 40 characters each)."
        elif self.down_when_failing > max(1, len(self.locations)):
            errors["down_when_failing"] = "Cannot exceed the number of locations."
        if self.timeout and self.interval and self.timeout > self.interval:
            errors["timeout"] = "The timeout must not exceed the interval."
        if errors:
            raise ValidationError(errors)

    # -- what a run is judged by ------------------------------------------------------------------
    @cached_property
    def parsed_conditions(self) -> list[Condition]:
        texts = self.conditions or kinds.conditions_for(self.kind, self.config)
        return parse_conditions(texts, "conditions")

    @cached_property
    def parsed_degraded_conditions(self) -> list[Condition]:
        texts = self.degraded_conditions or kinds.degraded_conditions_for(self.kind, self.config)
        return parse_conditions(texts, "degraded_conditions")

    def location_names(self) -> list[str]:
        return list(self.locations) or [ANY_LOCATION]

    def needed_down(self) -> int:
        """How many of its slots must be down for the check to be down."""
        return max(1, min(self.down_when_failing, len(self.location_names())))

    # -- state ------------------------------------------------------------------------------------
    def aggregate(self, slots: list[Slot], now: datetime) -> bool:
        """Derive ``state`` from the slots' states; True when it changed."""
        if self.paused:
            state = CheckState.PAUSED
        else:
            states = [slot.state for slot in slots]
            if states.count(CheckState.DOWN) >= self.needed_down():
                state = CheckState.DOWN
            elif CheckState.DOWN in states or CheckState.DEGRADED in states:
                state = CheckState.DEGRADED  # some place fails, not enough to be down
            elif CheckState.UP in states:
                state = CheckState.UP
            else:
                state = CheckState.UNKNOWN
        changed = state != self.state
        if changed:
            self.state, self.state_changed_at = state, now
        return changed

    def display_state(self, now: datetime | None = None) -> str:
        """The state to show: "unknown" when no run happened for three intervals (the prober
        is down or behind), whatever the last verdict was."""
        now = now or utc_now()
        if self.state in (CheckState.PAUSED, CheckState.UNKNOWN) or self.last_run_at is None:
            return self.state
        if now - self.last_run_at > timedelta(seconds=3 * self.interval + 60):
            return CheckState.UNKNOWN
        return self.state


class Slot(SlotStateMachine, models.Model):
    """A check's schedule and state at one location: the row the scheduler claims.

    ``next_run_at`` is when it is due (None: paused). A claim moves it a lease ahead and keeps
    the slot being run in ``slot_at``: a worker killed mid-run leaves the row due again when the
    lease runs out, with the same ``slot_at``, so the slot is run by the next worker and not
    lost; a result is stored only by the claim's owner, once per slot (a unique constraint).
    """

    # Not "check": that name is Django's Model.check() (the system checks).
    # No index of its own: the unique (probe, location) index leads with the check.
    probe = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="slots", db_index=False)
    location = models.CharField(max_length=40, default=ANY_LOCATION)
    next_run_at = models.DateTimeField(null=True, blank=True)
    slot_at = models.DateTimeField(null=True, blank=True)  # the slot claimed (being run)
    claimed_by = models.CharField(max_length=100, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=10, choices=ResultStatus.choices, blank=True)
    state = models.CharField(max_length=10, choices=CheckState.choices, default=CheckState.UNKNOWN)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    # The last runs since the last change of state, oldest first: "s" passed, "f" failed.
    recent = models.CharField(max_length=OUTCOME_MEMORY, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["probe", "location"], name="slot_one_per_location"),
        ]
        indexes = [
            # scheduler.claim and scheduler.next_due: due slots, oldest first. Partial: paused
            # checks' slots (next_run_at NULL) are not in it.
            models.Index(
                fields=["next_run_at"],
                condition=Q(next_run_at__isnull=False),
                name="slot_next_run",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.probe_id}@{self.location}"


# The columns a run writes to its slot and check: saved with update_fields.
SLOT_FIELDS = (
    "next_run_at",
    "slot_at",
    "claimed_by",
    "last_run_at",
    "last_status",
    "state",
    "consecutive_failures",
    "consecutive_successes",
    "recent",
)
CHECK_STATE_FIELDS = (
    "state",
    "state_changed_at",
    "last_run_at",
    "last_error",
    "last_explanation",
    "last_excerpt",
    "alerted",
    "last_alerted_at",
    "reminders_sent",
)
