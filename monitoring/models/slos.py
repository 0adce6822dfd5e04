"""Service level objectives: an SLI of a service, an objective over a window, and the figures
last computed for it (lists read those, never the history).

The math lives in ``monitoring.slos`` (``budget``: attainment, budget, burn rates; ``alerts``:
multi-window multi-burn-rate alerting); the SLI kinds in ``monitoring.slos.registry``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from monitoring.models.catalog import Service
from monitoring.slos import registry
from monitoring.slos.windows import SLICE_MINUTES, Budgeting, Window, time_zones
from tocsin.models import Team

__all__ = ["Budgeting", "SLODay", "ServiceLevelObjective", "Window"]


class ServiceLevelObjective(models.Model):
    """ "99.9 % of the checkout service's probe runs succeed, over a calendar month"."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="slos")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    sli_kind = models.CharField(
        "indicator",
        max_length=32,
        choices=registry.choices,
        help_text="What is measured: probe availability or latency, a metric ratio, or the "
        "time without an open P1/P2 incident.",
    )
    sli_config = models.JSONField(
        "indicator settings",
        default=dict,
        blank=True,
        help_text='The indicator\'s settings, e.g. {"threshold_ms": 500} for probe latency '
        "(see the SLO documentation for each indicator).",
    )
    objective = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        help_text="The share of good events (or time slices) to reach, in percent, e.g. 99.9.",
    )
    window = models.CharField(
        max_length=20,
        choices=Window.choices,
        default=Window.ROLLING_30D,
        help_text="Rolling windows always cover the last N days; calendar windows start over "
        "(with a full budget) each week, month or quarter in the SLO's time zone.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="Where calendar weeks, months and quarters start (an IANA name, e.g. "
        "Europe/Berlin).",
    )
    budgeting = models.CharField(
        max_length=12,
        choices=Budgeting.choices,
        default=Budgeting.OCCURRENCES,
        help_text="Occurrences: good events / all events. Time slices: the share of slices "
        "that were good (a slice is good when its good share reaches the slice target).",
    )
    timeslice_target = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Time slices only: the good share (percent) that makes a slice good; "
        "empty means 100.",
    )
    timeslice_minutes = models.PositiveSmallIntegerField(
        default=1,
        help_text="Time slices only: slice length in minutes "
        f"({', '.join(map(str, SLICE_MINUTES))}).",
    )
    alerting = models.BooleanField(
        default=True,
        help_text="Raise burn-rate alerts on the service: page on a fast burn (critical), "
        "ticket on a slow one (warning).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    # Denormalised by the evaluation task (``monitoring.slos.evaluation``): lists read these.
    computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    attainment = models.FloatField(null=True, blank=True, editable=False)
    budget_remaining = models.FloatField(null=True, blank=True, editable=False)
    burn_rate = models.FloatField(null=True, blank=True, editable=False)
    exhausted_at = models.DateTimeField(null=True, blank=True, editable=False)
    sparkline = models.JSONField(default=list, blank=True, editable=False)
    # The burn-rate window pairs whose alerts fire now ("1h/5m", …).
    alerted = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["service__name", "name"]
        verbose_name = "service level objective"
        constraints = [
            models.UniqueConstraint(fields=["service", "slug"], name="slo_unique_service_slug"),
        ]
        # No index beyond the constraint's: the evaluation task reads every SLO each minute
        # (a table of hundreds of rows), the lists go through their service.

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:100]
        super().save(*args, **kwargs)

    @property
    def team(self) -> Team:
        return self.service.team

    @property
    def team_id(self) -> int:
        return self.service.team_id

    # --- reading the config ------------------------------------------------------------------

    @property
    def indicator(self) -> registry.Indicator | None:
        return registry.get(self.sli_kind)

    def config(self, *, validate: bool = True) -> Any:
        """The indicator's typed config (``ConfigError`` when the stored one does not hold);
        ``validate=False`` skips what needs the database (do the checks exist?)."""
        indicator = self.indicator
        if indicator is None:
            raise registry.ConfigError({"sli_kind": f'unknown indicator "{self.sli_kind}"'})
        service = self.service if self.service_id and validate else None
        return indicator.parse(self.sli_config or {}, service)

    @property
    def target(self) -> float:
        """The objective as a share (0.999)."""
        return float(self.objective) / 100

    @property
    def slice_target(self) -> float:
        return float(self.timeslice_target if self.timeslice_target is not None else 100) / 100

    @property
    def error_budget(self) -> float:
        """The share of events (or slices) that may be bad."""
        return 1 - self.target

    # --- invariants ---------------------------------------------------------------------------

    def problems(self) -> dict[str, str]:
        """What is wrong with this SLO, by field: every writer (form, API, import) asks."""
        found: dict[str, str] = {}
        if not (self.name or "").strip():
            found["name"] = "a name is required"
        try:
            objective = Decimal(self.objective)
        except (TypeError, ValueError, ArithmeticError):
            objective = None
        if objective is None or not objective.is_finite() or not 0 < objective < 100:
            found["objective"] = "a percentage above 0 and below 100, e.g. 99.9"
        if self.window not in Window.values:
            found["window"] = f"one of: {', '.join(Window.values)}"
        if self.time_zone not in time_zones():
            found["time_zone"] = "an IANA time zone name, e.g. Europe/Berlin or UTC"
        if self.budgeting not in Budgeting.values:
            found["budgeting"] = f"one of: {', '.join(Budgeting.values)}"
        if self.timeslice_minutes not in SLICE_MINUTES:
            found["timeslice_minutes"] = f"one of: {', '.join(map(str, SLICE_MINUTES))} minutes"
        if self.timeslice_target is not None:
            try:
                target = Decimal(self.timeslice_target)
            except (TypeError, ValueError, ArithmeticError):
                target = None
            if target is None or not target.is_finite() or not 0 < target <= 100:
                found["timeslice_target"] = "a percentage above 0, at most 100"
        if self.indicator is None:
            found["sli_kind"] = f"one of: {', '.join(sorted(registry.kinds()))}"
        else:
            try:
                self.config()
            except registry.ConfigError as exc:
                for name, message in exc.fields.items():
                    found[f"sli_config.{name}" if name != "sli_kind" else name] = message
        return found

    def clean(self) -> None:
        problems = self.problems()
        if problems:
            errors: dict[str, list[str]] = {}
            for name, message in problems.items():
                field, _, key = name.partition(".")
                errors.setdefault(field, []).append(f"{key}: {message}" if key else message)
            raise ValidationError(errors)


class SLODay(models.Model):
    """An SLO's good and total of one finished UTC day, remembered: long windows read 90 rows,
    not 129,600 minutes, and time slices outlive the minute rollups they were counted from.
    Cleared when the SLO's indicator or budgeting changes."""

    id = models.BigAutoField(primary_key=True)
    slo = models.ForeignKey(ServiceLevelObjective, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    good = models.FloatField()
    total = models.FloatField()
    # The day's hours and minutes (good and total, packed by ``monitoring.slos.compute.Columns``),
    # kept once a window's edge read them: later evaluations read these, not the source.
    hours = models.BinaryField(default=b"", blank=True)
    minutes = models.BinaryField(default=b"", blank=True)

    class Meta:
        constraints = [
            # Also the index of "this SLO's days from D to E" (every computation).
            models.UniqueConstraint(fields=["slo", "day"], name="sloday_unique_slo_day"),
        ]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.day:%Y-%m-%d}"
