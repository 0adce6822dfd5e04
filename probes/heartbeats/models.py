"""Heartbeats: jobs that must check in (cron jobs, backups, queues), Healthchecks-compatible.

A ``Heartbeat`` keeps its configuration and, denormalised, everything the hot paths need: a ping
is one locked read, one UPDATE of this row and one INSERT of a ``Ping``; the evaluation loop
finds what is due through one partial index on ``next_due_at``. The state transitions are the
methods below (``apply_start``, ``apply_finish``, ``evaluate``, ``pause``); services lock the row,
call them and save.

Problems and alerts. Each reason a heartbeat is unhealthy is a *problem* with its own alert
(``alertname`` HeartbeatMissing, HeartbeatFailed, HeartbeatRunTooLong, HeartbeatRunTooShort,
HeartbeatTooOften). ``problems`` maps each current problem to the sentence that explains it;
``alerted`` lists the problems raised through the monitoring pipeline. A service compares the
two after every change and raises or resolves the difference, so the row is the truth and a
failed or deferred (snoozed) raise is simply done later by the evaluation loop.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.text import slugify
from django.utils.timezone import now as utc_now

from probes.heartbeats import schedule
from probes.heartbeats.choices import (
    MAX_DURATION,
    MAX_PERIOD,
    OUTCOME_MEMORY,
    SLUG_PATTERN,
    HeartbeatStatus,
    PingKind,
    Problem,
)
from probes.heartbeats.pings import Ping, PingKey

__all__ = [
    "CONFIG_FIELDS",
    "MAX_DURATION",
    "STATE_FIELDS",
    "Heartbeat",
    "HeartbeatStatus",
    "Ping",
    "PingKey",
    "PingKind",
    "Problem",
]


class Heartbeat(models.Model):
    service = models.ForeignKey(
        "monitoring.Service", on_delete=models.CASCADE, related_name="heartbeats"
    )
    name = models.CharField(max_length=100)
    slug = models.CharField(
        max_length=100,
        blank=True,  # derived from the name when left empty
        validators=[RegexValidator(f"^{SLUG_PATTERN}$", "Use a-z, 0-9, hyphens and underscores.")],
        help_text="For ping URLs by the service's ping key: /ping/<key>/<slug>.",
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    description = models.TextField(blank=True)

    # -- schedule ---------------------------------------------------------------------------------
    period = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=86400,
        validators=[MinValueValidator(10), MaxValueValidator(MAX_PERIOD)],
        help_text="Seconds between runs, when no cron expression is given.",
    )
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text="Five fields, as in a crontab (e.g. “30 2 * * *”); replaces the period.",
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="The zone the cron expression is read in."
    )
    grace = models.PositiveIntegerField(
        default=3600,
        validators=[MaxValueValidator(MAX_PERIOD)],
        help_text="Seconds after the expected time before the job counts as missing.",
    )
    min_runtime = models.PositiveIntegerField(
        null=True,
        blank=True,
        # Run times are measured up to MAX_DURATION: a longer minimum could never be judged.
        validators=[MaxValueValidator(int(MAX_DURATION.total_seconds()))],
        help_text="Seconds: a run that finishes faster raises an alert.",
    )
    max_runtime = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PERIOD)],
        help_text="Seconds: a run still going this long after its start raises an alert.",
    )
    too_often = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PERIOD)],
        help_text="Seconds: two successes closer together than this raise an alert.",
    )
    # -- failure tolerance: N in a row, or X % of the last W runs -------------------------------
    failures_before_alert = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(OUTCOME_MEMORY)],
        help_text="Alert after this many failures in a row (1: every failure).",
    )
    failure_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Instead: alert when at least this % of the last runs (the window) failed.",
    )
    failure_window = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(2), MaxValueValidator(OUTCOME_MEMORY)],
        help_text="How many recent runs the percentage looks at.",
    )
    manual_resume = models.BooleanField(
        default=False, help_text="While paused, ignore pings instead of resuming on the next one."
    )
    snoozed_until = models.DateTimeField(
        null=True, blank=True, help_text="No new alerts until then (pings are still recorded)."
    )
    created_at = models.DateTimeField(default=utc_now, editable=False)

    # -- denormalised state (the hot paths read and write only this row) -----------------------
    status = models.CharField(
        max_length=10, choices=HeartbeatStatus.choices, default=HeartbeatStatus.NEW
    )
    last_ping_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The open run (a start not yet matched by a finish): its start and run id.
    last_start_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_start_rid = models.UUIDField(null=True, blank=True, editable=False)
    last_duration = models.FloatField(null=True, blank=True, editable=False)
    last_exit_status = models.SmallIntegerField(null=True, blank=True, editable=False)
    # When the next finished run is expected (grace not included).
    expected_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the evaluation loop must look at this row next: expected_at + grace, the open run's
    # start + max_runtime, or the end of a snooze that deferred an alert; None: nothing pending.
    next_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    # The last finished runs, oldest first: "s" success, "f" failure (for failure_percent).
    recent_outcomes = models.CharField(max_length=OUTCOME_MEMORY, blank=True, editable=False)
    problems = models.JSONField(default=dict, blank=True, editable=False)  # {problem: why}
    alerted = models.JSONField(default=list, blank=True, editable=False)  # problems raised

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "slug"], name="heartbeat_unique_slug"),
            models.CheckConstraint(
                condition=~Q(cron="") | Q(period__gt=0), name="heartbeat_has_schedule"
            ),
        ]
        indexes = [
            # probes.heartbeats.evaluation: next_due() (the earliest next_due_at) and
            # due_ids() (next_due_at <= now, oldest first). Partial: new and paused heartbeats,
            # and those with nothing pending, are not in it.
            models.Index(
                fields=["next_due_at"],
                condition=Q(next_due_at__isnull=False),
                name="heartbeat_next_due",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:100] or self.uuid.hex[:12]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not self.slug:  # derived here too, so a clash is a form error, not a crash
            self.slug = slugify(self.name)[:100]
        errors: dict[str, str] = {}
        if self.cron:
            try:
                schedule.validate_cron(self.cron)
            except ValidationError as exc:
                errors["cron"] = exc.messages[0]
        elif not self.period:
            errors["period"] = "Give a period or a cron expression."
        try:
            schedule.validate_timezone(self.timezone)
        except ValidationError as exc:
            errors["timezone"] = exc.messages[0]
        if self.min_runtime and self.max_runtime and self.min_runtime >= self.max_runtime:
            errors["min_runtime"] = "The minimum run time must be below the maximum."
        if errors:
            raise ValidationError(errors)

    @property
    def team_id(self) -> int:
        return self.service.team_id

    @property
    def team(self) -> Any:
        return self.service.team

    # -- reading the state ------------------------------------------------------------------------
    def get_status(self, now: datetime | None = None) -> str:
        """The status to show: the stored one, or "late" while within the grace."""
        now = now or utc_now()
        if self.status == HeartbeatStatus.UP and self.expected_at and now >= self.expected_at:
            return HeartbeatStatus.LATE
        return self.status

    @property
    def is_running(self) -> bool:
        return self.last_start_at is not None

    def schedule_text(self) -> str:
        if self.cron:
            return f"cron “{self.cron}” ({self.timezone})"
        return f"every {schedule.humanize(self.period or 0)}"

    def deadline(self) -> datetime | None:
        """When the job counts as missing: the expected time plus the grace."""
        if self.expected_at is None:
            return None
        return self.expected_at + timedelta(seconds=self.grace)

    def is_snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > now

    # -- transitions ------------------------------------------------------------------------------
    def resume_for_ping(self) -> bool:
        """A ping to a paused heartbeat resumes it, unless it waits for a manual resume;
        False means "ignore this ping"."""
        if self.status != HeartbeatStatus.PAUSED:
            return True
        if self.manual_resume:
            return False
        self.status = HeartbeatStatus.NEW
        return True

    def apply_start(self, now: datetime, rid: uuid.UUID | None) -> None:
        self.last_start_at, self.last_start_rid = now, rid

    def started_at_for(self, rid: uuid.UUID | None) -> datetime | None:
        """The open run's start when this finish belongs to it (same run id, or no run id);
        None: look the start up among the pings (another run of overlapping ones)."""
        if self.last_start_at is None:
            return None
        if rid is None or rid == self.last_start_rid:
            return self.last_start_at
        return None

    def apply_finish(
        self,
        now: datetime,
        *,
        success: bool,
        rid: uuid.UUID | None,
        started_at: datetime | None,
        exit_status: int | None,
    ) -> float | None:
        """A run finished (success, /fail or an exit status); returns its duration in seconds."""
        duration = None
        if started_at is not None and timedelta(0) <= now - started_at <= MAX_DURATION:
            duration = (now - started_at).total_seconds()
        if started_at is not None and started_at == self.last_start_at:
            self.last_start_at = self.last_start_rid = None  # the open run is over
        self.last_duration = duration
        self.last_exit_status = exit_status
        self.expected_at = schedule.next_expected(
            period=self.period, cron=self.cron, tz_name=self.timezone, after=now
        )
        self._clear(Problem.MISSING)
        self.recent_outcomes = (self.recent_outcomes + ("s" if success else "f"))[-OUTCOME_MEMORY:]
        if success:
            self._judge_success(now, duration)
            self.last_success_at = now
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
        self._judge_failures(exit_status)
        return duration

    def _judge_success(self, now: datetime, duration: float | None) -> None:
        name = self.name
        if duration is not None and self.min_runtime and duration < self.min_runtime:
            self._set(
                Problem.TOO_SHORT,
                f"{name} finished in {schedule.humanize(duration)}, faster than its minimum "
                f"run time of {schedule.humanize(self.min_runtime)}.",
            )
        else:
            self._clear(Problem.TOO_SHORT)
        if duration is not None and self.max_runtime and duration > self.max_runtime:
            self._set(
                Problem.TOO_LONG,
                f"{name} ran for {schedule.humanize(duration)}, longer than its maximum run "
                f"time of {schedule.humanize(self.max_runtime)}.",
            )
        else:
            self._clear(Problem.TOO_LONG)
        since = (now - self.last_success_at).total_seconds() if self.last_success_at else None
        if since is not None and self.too_often and since < self.too_often:
            self._set(
                Problem.TOO_OFTEN,
                f"{name} succeeded {schedule.humanize(since)} after its previous success; "
                f"it should run at most once every {schedule.humanize(self.too_often)}.",
            )
        else:
            self._clear(Problem.TOO_OFTEN)

    def failure_share(self) -> tuple[int, int]:
        """(failed, runs) over the failure window."""
        window = self.recent_outcomes[-self.failure_window :]
        return window.count("f"), len(window)

    def _judge_failures(self, exit_status: int | None) -> None:
        name = self.name
        if self.failure_percent:
            failed, runs = self.failure_share()
            if runs and failed * 100 >= self.failure_percent * runs:
                self._set(
                    Problem.FAILED,
                    f"{name}: {failed} of the last {runs} runs failed "
                    f"({failed * 100 // runs} %, alert at {self.failure_percent} %).",
                )
            else:
                self._clear(Problem.FAILED)
            return
        if self.consecutive_failures >= self.failures_before_alert:
            how = f" with exit status {exit_status}" if exit_status else ""
            row = self.consecutive_failures
            self._set(
                Problem.FAILED,
                f"{name} failed{how}" + (f" ({row} failures in a row)." if row > 1 else "."),
            )
        elif self.consecutive_failures == 0:
            self._clear(Problem.FAILED)

    def evaluate(self, now: datetime) -> None:
        """What time alone reveals: a missed deadline, a run going on too long, a snooze over."""
        if self.status == HeartbeatStatus.PAUSED:
            return
        deadline = self.deadline()
        if deadline is not None and now >= deadline and Problem.MISSING not in self.problems:
            since = (
                f"the last ping at {self._local(self.last_ping_at)}"
                if self.last_ping_at
                else "it was created"
            )
            self._set(
                Problem.MISSING,
                f"{self.name} did not check in: expected by {self._local(self.expected_at)} "
                f"({self.schedule_text()}, grace {schedule.humanize(self.grace)}); "
                f"nothing since {since}.",
            )
        if (
            self.last_start_at is not None
            and self.max_runtime
            and now >= self.last_start_at + timedelta(seconds=self.max_runtime)
            and Problem.TOO_LONG not in self.problems
        ):
            self._set(
                Problem.TOO_LONG,
                f"{self.name} started at {self._local(self.last_start_at)} and has not "
                f"finished within its maximum run time of {schedule.humanize(self.max_runtime)}.",
            )
        if self.snoozed_until is not None and self.snoozed_until <= now:
            self.snoozed_until = None

    def pause(self) -> None:
        """Paused: nothing is expected and every problem is dropped (their alerts resolve)."""
        self.status = HeartbeatStatus.PAUSED
        self.problems = {}
        self.expected_at = self.last_start_at = self.last_start_rid = None
        self.consecutive_failures = 0

    def refresh_state(self, now: datetime) -> None:
        """Derive ``status`` and ``next_due_at`` from the rest; call after every transition."""
        if self.status != HeartbeatStatus.PAUSED:
            if self.problems:
                self.status = HeartbeatStatus.DOWN
            elif self.expected_at is None and self.last_success_at is None:
                self.status = HeartbeatStatus.NEW
            else:
                self.status = HeartbeatStatus.UP
        self.next_due_at = self._next_due(now)

    def unsynced(self, now: datetime) -> tuple[list[str], list[str]]:
        """(problems to raise now, problems to resolve): what the pipeline has not been told."""
        to_raise = [p for p in self.problems if p not in self.alerted]
        if self.is_snoozed(now):
            to_raise = []
        to_resolve = [p for p in self.alerted if p not in self.problems]
        return to_raise, to_resolve

    def _next_due(self, now: datetime) -> datetime | None:
        if self.status == HeartbeatStatus.PAUSED:
            return None
        due: list[datetime] = []
        deadline = self.deadline()
        if deadline is not None and Problem.MISSING not in self.problems:
            due.append(deadline)
        if (
            self.last_start_at is not None
            and self.max_runtime
            and Problem.TOO_LONG not in self.problems
        ):
            due.append(self.last_start_at + timedelta(seconds=self.max_runtime))
        to_raise, to_resolve = self.unsynced(now)
        if to_resolve or to_raise:
            due.append(now)  # the pipeline refused a moment ago: the loop tries again
        elif self.snoozed_until is not None and any(p not in self.alerted for p in self.problems):
            due.append(self.snoozed_until)  # deferred alerts are raised when the snooze ends
        return min(due) if due else None

    def _set(self, problem: str, why: str) -> None:
        self.problems = {**self.problems, problem: why}

    def _clear(self, problem: str) -> None:
        if problem in self.problems:
            self.problems = {k: v for k, v in self.problems.items() if k != problem}

    def _local(self, moment: datetime | None) -> str:
        if moment is None:
            return "never"
        local = moment.astimezone(schedule.zone(self.timezone))
        return local.strftime("%Y-%m-%d %H:%M %Z")


# What people configure (admin, API): shown back by the API and recorded in the event log.
CONFIG_FIELDS = (
    "name",
    "slug",
    "description",
    "period",
    "cron",
    "timezone",
    "grace",
    "min_runtime",
    "max_runtime",
    "too_often",
    "failures_before_alert",
    "failure_percent",
    "failure_window",
    "manual_resume",
)

# The columns a ping or an evaluation writes: saved with update_fields, one UPDATE.
STATE_FIELDS = (
    "status",
    "last_ping_at",
    "last_success_at",
    "last_start_at",
    "last_start_rid",
    "last_duration",
    "last_exit_status",
    "expected_at",
    "next_due_at",
    "consecutive_failures",
    "recent_outcomes",
    "problems",
    "alerted",
    "snoozed_until",
)
