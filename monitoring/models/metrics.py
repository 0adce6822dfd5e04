"""Metric series, their samples and rollups, and the threshold rules that watch them.

Storage stays bounded: raw samples are kept for two days, 1-minute rollups for two weeks and
1-hour rollups for about a year (``monitoring.metrics.downsample_and_prune`` enforces it). A
series keeps its latest value denormalised, so lists and the admin never touch the sample tables.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from monitoring.matchers import MatcherError, format_matchers, from_stored, to_matchers
from monitoring.models.alerts import Severity
from monitoring.models.catalog import Service
from tocsin.models import Team

__all__ = [
    "Aggregation",
    "AlertRule",
    "AlertRuleState",
    "Comparison",
    "MetricKind",
    "MetricRollup",
    "MetricRollupCursor",
    "MetricSample",
    "MetricSeries",
    "Resolution",
    "series_key",
]


# Prometheus' rules for names, so metrics can move between Tocsin and Prometheus unchanged.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_NAME_LENGTH = 200
MAX_LABELS = 20
MAX_LABEL_VALUE_LENGTH = 200


def metric_name_error(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "a metric name is required"
    if len(name) > MAX_NAME_LENGTH:
        return f"at most {MAX_NAME_LENGTH} characters"
    if not METRIC_NAME.fullmatch(name):
        return "letters, digits, underscores and colons, not starting with a digit"
    return None


def label_errors(labels: Any) -> str | None:
    if labels is None:
        return None
    if not isinstance(labels, dict):
        return 'labels are an object of names to strings, e.g. {"host": "web-1"}'
    if len(labels) > MAX_LABELS:
        return f"at most {MAX_LABELS} labels"
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_NAME.fullmatch(key):
            return f'label name "{key}": letters, digits and underscores, not starting with a digit'
        if key.startswith("__"):
            return f'label name "{key}": names starting with "__" are reserved'
        if not isinstance(value, str):
            return f'label "{key}": the value must be a string'
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            return f'label "{key}": at most {MAX_LABEL_VALUE_LENGTH} characters'
    return None


class MetricKind(models.TextChoices):
    GAUGE = "gauge", "Gauge"
    COUNTER = "counter", "Counter"


def series_key(name: str, labels: dict[str, str]) -> str:
    """One series per metric name and label set, whatever order the labels came in."""
    canonical = json.dumps([name, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class MetricSeries(models.Model):
    """A metric name with one set of labels, owned by a team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="metric_series")
    name = models.CharField(max_length=200)
    labels = models.JSONField(default=dict, blank=True)
    # sha256 over the name and the sorted labels: the identity of the series within the team.
    key = models.CharField(max_length=64, editable=False)
    kind = models.CharField(max_length=10, choices=MetricKind.choices, default=MetricKind.GAUGE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Denormalised from the newest sample: lists, the admin and the API read these.
    last_value = models.FloatField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "metric series"
        constraints = [
            # The upsert in record_samples relies on it: concurrent first samples of a series
            # cannot create it twice.
            models.UniqueConstraint(fields=["team", "key"], name="metricseries_unique_team_key"),
        ]
        indexes = [
            # Rule evaluation and the series list: "this team's series named X".
            models.Index(fields=["team", "name"], name="metricseries_team_name"),
            # Pruning: "series that have not reported for longer than we keep anything".
            models.Index(fields=["last_at"], name="metricseries_last_at"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """Prometheus notation: ``name{a="1",b="2"}``."""
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


class MetricSample(models.Model):
    """One raw observation; rolled into 1-minute buckets after an hour, dropped after two days."""

    id = models.BigAutoField(primary_key=True)
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="samples")
    time = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        indexes = [
            # Rule windows, the samples API and "last value in window": a series' samples by time.
            models.Index(fields=["series", "time"], name="metricsample_series_time"),
            # Downsampling and pruning: "every sample older than T".
            models.Index(fields=["time"], name="metricsample_time"),
        ]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.time.isoformat()}={self.value}"


class Resolution(models.TextChoices):
    MINUTE = "1m", "1 minute"
    HOUR = "1h", "1 hour"

    @property
    def seconds(self) -> int:
        return {"1m": 60, "1h": 3600}[self.value]


class MetricRollup(models.Model):
    """A bucket of samples (or of finer rollups) of one series, summarised."""

    id = models.BigAutoField(primary_key=True)
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="rollups")
    resolution = models.CharField(max_length=2, choices=Resolution.choices)
    bucket_start = models.DateTimeField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    count = models.PositiveIntegerField()
    last = models.FloatField()

    class Meta:
        constraints = [
            # Also the index for the samples API: "this series at this resolution since T".
            models.UniqueConstraint(
                fields=["series", "resolution", "bucket_start"],
                name="metricrollup_unique_bucket",
            ),
        ]
        indexes = [
            # Downsampling and pruning: "every 1m rollup older than T".
            models.Index(fields=["resolution", "bucket_start"], name="metricrollup_res_bucket"),
        ]

    def __str__(self) -> str:
        return f"{self.series_id} {self.resolution}@{self.bucket_start.isoformat()}"

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else math.nan


class MetricRollupCursor(models.Model):
    """How far downsampling got: every input older than ``done_until`` is in a rollup.

    One row per resolution. Downsampling locks it, so two workers never roll the same range,
    and raw rows (or 1m rollups) are only pruned once they are behind the cursor.
    """

    resolution = models.CharField(max_length=2, choices=Resolution.choices, unique=True)
    done_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.resolution} rolled up until {self.done_until}"


class Aggregation(models.TextChoices):
    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    LAST = "last", "Last value"
    RATE = "rate", "Per-second rate (counters)"


class Comparison(models.TextChoices):
    GT = ">", "above (>)"
    GE = ">=", "at or above (>=)"
    LT = "<", "below (<)"
    LE = "<=", "at or below (<=)"
    EQ = "==", "equal to (==)"
    NE = "!=", "not equal to (!=)"


COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

# {{ value }}, {{ threshold }}, {{ labels.name }} (and the rule's own words): nothing else.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_LABEL_REF = re.compile(r"labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
SIMPLE_PLACEHOLDERS = frozenset({"value", "threshold", "rule", "metric"})


def format_number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def bad_placeholders(template: str) -> list[str]:
    """Placeholders a template uses that ``render_template`` would not know."""
    return [
        m.group(0)
        for m in PLACEHOLDER.finditer(template)
        if m.group(1) not in SIMPLE_PLACEHOLDERS and not _LABEL_REF.fullmatch(m.group(1))
    ]


def render_template(template: str, context: dict[str, Any], labels: dict[str, str]) -> str:
    """A tiny formatter: placeholders are looked up, never evaluated. Unknown ones stay as typed
    (saving refuses them; this only matters for rows written some other way)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        label = _LABEL_REF.fullmatch(name)
        if label:
            return str(labels.get(label.group(1), ""))
        if name in context:
            value = context[name]
            return format_number(value) if isinstance(value, float) else str(value)
        return match.group(0)

    return PLACEHOLDER.sub(replace, template)


class AlertRule(models.Model):
    """A threshold on a metric: ``aggregation(metric{matchers}[window]) comparison threshold``
    held for ``for_seconds`` raises an alert on ``service``, one per matching series."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="alert_rules")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    metric = models.CharField(max_length=200)
    # Which series of the metric: monitoring.matchers in their stored form,
    # [{"name": "host", "op": "=", "value": "web-1"}]; empty means every series of the metric.
    matchers = models.JSONField(default=list, blank=True)
    aggregation = models.CharField(
        max_length=10, choices=Aggregation.choices, default=Aggregation.AVG
    )
    window_seconds = models.PositiveIntegerField(default=300)
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField()
    # How long the condition must hold before the alert fires (0: at the first evaluation).
    for_seconds = models.PositiveIntegerField(default=0)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    # Added to the alert's labels (after the series' own).
    labels = models.JSONField(default=dict, blank=True)
    summary_template = models.CharField(max_length=500, blank=True)
    description_template = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="alertrule_unique_team_name"),
        ]
        indexes = [
            # The evaluation loop: "every enabled rule".
            models.Index(fields=["id"], condition=models.Q(enabled=True), name="alertrule_enabled"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def expression(self) -> str:
        """What the rule checks, in one line: ``avg(cpu{host="a"}[5m]) > 90 for 2m``."""
        sel = self.metric
        if self.matchers:
            sel += format_matchers(from_stored(self.matchers)).replace(", ", ",")
        text = (
            f"{self.aggregation}({sel}[{_duration(self.window_seconds)}]) "
            f"{self.comparison} {format_number(float(self.threshold))}"
        )
        if self.for_seconds:
            text += f" for {_duration(self.for_seconds)}"
        return text

    # Rule windows read raw samples, which are kept for two days.
    MIN_WINDOW, MAX_WINDOW = 60, 86400
    MAX_FOR = 7 * 86400

    def problems(self) -> dict[str, str]:
        """What is wrong with this rule, by field: the invariants every writer must keep."""
        found: dict[str, str | None] = {
            "name": None if (self.name or "").strip() else "a name is required",
            "metric": metric_name_error(self.metric),
            "labels": label_errors(self.labels),
        }
        try:
            self.matchers = [m.as_dict() for m in to_matchers(self.matchers or [])]
        except MatcherError as exc:
            found["matchers"] = str(exc)
        if not self.MIN_WINDOW <= (self.window_seconds or 0) <= self.MAX_WINDOW:
            found["window_seconds"] = (
                f"from {self.MIN_WINDOW} to {self.MAX_WINDOW} seconds (one minute to one day)"
            )
        if not 0 <= (self.for_seconds or 0) <= self.MAX_FOR:
            found["for_seconds"] = f"from 0 to {self.MAX_FOR} seconds (one week)"
        if self.threshold is None or not math.isfinite(float(self.threshold)):
            found["threshold"] = "a finite number is required"
        if self.aggregation not in Aggregation.values:
            found["aggregation"] = f"one of: {', '.join(Aggregation.values)}"
        if self.comparison not in Comparison.values:
            found["comparison"] = f"one of: {', '.join(Comparison.values)}"
        if self.severity not in Severity.values:
            found["severity"] = f"one of: {', '.join(Severity.values)}"
        if self.service_id and self.team_id and self.service.team_id != self.team_id:
            found["service"] = "the service belongs to another team"
        for name in ("summary_template", "description_template"):
            bad = bad_placeholders(getattr(self, name) or "")
            if bad:
                found[name] = (
                    f"unknown placeholder {bad[0]}; use {{{{ value }}}}, {{{{ threshold }}}}, "
                    "{{ rule }}, {{ metric }} or {{ labels.<name> }}"
                )
        return {name: message for name, message in found.items() if message}

    def clean(self) -> None:
        problems = self.problems()
        if problems:
            raise ValidationError(problems)

    def breaches(self, value: float) -> bool:
        return COMPARATORS[self.comparison](value, self.threshold)

    def fingerprint(self, series_labels: dict[str, str]) -> str:
        """Stable per (rule, series): re-fires of the same series update one alert."""
        from monitoring.pipeline import fingerprint_labels

        return f"rule:{self.pk}:{fingerprint_labels(series_labels)}"

    def alert_labels(self, series_labels: dict[str, str]) -> dict[str, str]:
        return {**series_labels, **(self.labels or {}), "alertname": self.name}

    def render(self, value: float, series_labels: dict[str, str]) -> tuple[str, str]:
        """(summary, description) for an alert on one series."""
        context = {
            "value": float(value),
            "threshold": float(self.threshold),
            "rule": self.name,
            "metric": self.metric,
        }
        labels = self.alert_labels(series_labels)
        if self.summary_template:
            summary = render_template(self.summary_template, context, labels)
        else:
            summary = (
                f"{self.name}: {self.aggregation} {self.metric} is "
                f"{format_number(float(value))} ({self.comparison} "
                f"{format_number(float(self.threshold))})"
            )
        description = render_template(self.description_template, context, labels)
        return summary[:500], description


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class AlertRuleState(models.Model):
    """Where one series stands for one rule: pending since when, firing or not.

    Durable, so a restarted worker neither forgets a ``for`` timer nor re-raises what fired.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    # fingerprint_labels(series labels): one row per series the rule matched.
    key = models.CharField(max_length=64)
    labels = models.JSONField(default=dict, blank=True)
    pending_since = models.DateTimeField(null=True, blank=True)
    firing = models.BooleanField(default=False)
    fired_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rule", "key"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], name="alertrulestate_unique_rule_key"),
        ]
        indexes = [
            # /metrics and the rules list: "how many rule states are firing".
            models.Index(
                fields=["rule"], condition=models.Q(firing=True), name="alertrulestate_firing"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.key}"

    @property
    def state(self) -> str:
        if self.firing:
            return "firing"
        return "pending" if self.pending_since else "inactive"
