"""Threshold rules: evaluate metrics, keep per-series state, raise and resolve alerts.

``evaluate_rules`` runs every minute. For each enabled rule it aggregates the rule's window per
matching series, compares, and moves each series through inactive → pending → firing (once the
condition has held for ``for_seconds``) → resolved, raising and resolving through the one alert
pipeline with a fingerprint per (rule, series). Only transitions reach the pipeline, so a rule
that fires and recovers writes exactly one ``alert.firing`` and one ``alert.resolved`` event.

A series that stops reporting resolves its alert, as in Prometheus: no data is not a breach.
``rate`` is the per-second increase between the window's first and last samples, counting a
drop as a counter reset; unlike Prometheus it does not extrapolate to the window's edges.

Rule changes go through ``create_rule``/``update_rule``/``delete_rule`` (the API and the admin
call them), which validate, record an event, and resolve what a change orphans.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Avg, Max, Min, OuterRef, Subquery
from django.utils import timezone

from monitoring.matchers import from_stored, matches_all
from monitoring.models import (
    Aggregation,
    AlertRule,
    AlertRuleState,
    MetricSample,
    MetricSeries,
)
from monitoring.pipeline import AlertInput, fingerprint_labels, raise_alert, resolve_alert
from tocsin.events import record
from tocsin.models import Team
from tocsin.services import ServiceError

log = logging.getLogger(__name__)

SOURCE = "rule"
# A rule evaluated less than this long ago is skipped: a second worker running the same
# schedule tick (or a tick that ran late) must not evaluate it twice.
MIN_EVALUATION_GAP = timedelta(seconds=30)

RULE_FIELDS = (
    "name",
    "service",
    "metric",
    "matchers",
    "aggregation",
    "window_seconds",
    "comparison",
    "threshold",
    "for_seconds",
    "severity",
    "labels",
    "summary_template",
    "description_template",
    "enabled",
)
# Changing these re-targets a firing alert, so it is resolved and the series start over.
RETARGETING_FIELDS = frozenset({"service"})


@dataclass
class SeriesResult:
    """One series as a rule sees it at one evaluation."""

    labels: dict[str, str]
    value: float
    breaching: bool
    state: str  # inactive, pending, firing
    pending_since: datetime | None = None
    # What this evaluation did (or, when testing, would do): "", pending, fired, resolved.
    change: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "value": self.value,
            "breaching": self.breaching,
            "state": self.state,
            "pending_since": self.pending_since,
            "change": self.change,
        }


@dataclass
class Evaluation:
    rule: AlertRule
    at: datetime
    series: list[SeriesResult] = field(default_factory=list)
    # Series that were pending or firing and have no data in the window any more:
    # {"labels": …, "change": "resolved" or "cleared"}.
    vanished: list[dict[str, Any]] = field(default_factory=list)

    def count(self, change: str) -> int:
        return sum(1 for s in self.series if s.change == change) + sum(
            1 for v in self.vanished if v["change"] == change
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.pk,
            "expression": self.rule.expression,
            "evaluated_at": self.at,
            "series": [s.as_dict() for s in self.series],
            "vanished": self.vanished,
        }


# --- Measuring ----------------------------------------------------------------------------------


def matching_series(rule: AlertRule) -> list[tuple[int, dict[str, str]]]:
    """(series id, labels) of the rule's team's series that the rule watches."""
    matchers = from_stored(rule.matchers or [])
    candidates = MetricSeries.objects.filter(team_id=rule.team_id, name=rule.metric).values_list(
        "id", "labels"
    )
    return [(pk, labels) for pk, labels in candidates if matches_all(matchers, labels)]


def measure(rule: AlertRule, now: datetime) -> list[tuple[dict[str, str], float]]:
    """The rule's aggregation over (now - window, now] per matching series with data."""
    series = dict(matching_series(rule))
    if not series:
        return []
    start = now - timedelta(seconds=rule.window_seconds)
    window = MetricSample.objects.filter(time__gt=start, time__lte=now)
    values: dict[int, float] = {}
    if rule.aggregation in (Aggregation.AVG, Aggregation.MIN, Aggregation.MAX):
        func = {"avg": Avg, "min": Min, "max": Max}[rule.aggregation]
        rows = (
            window.filter(series_id__in=list(series))
            .order_by()
            .values("series_id")
            .annotate(v=func("value"))
            .values_list("series_id", "v")
        )
        values = dict(rows)
    elif rule.aggregation == Aggregation.LAST:
        newest = window.filter(series_id=OuterRef("pk")).order_by("-time", "-id").values("value")
        rows = (
            MetricSeries.objects.filter(pk__in=list(series))
            .annotate(v=Subquery(newest[:1]))
            .values_list("id", "v")
        )
        values = {pk: v for pk, v in rows if v is not None}
    else:
        rows = (
            window.filter(series_id__in=list(series))
            .order_by("series_id", "time", "id")
            .values_list("series_id", "time", "value")
        )
        values = _rates(rows)
    return [(series[pk], float(v)) for pk, v in sorted(values.items()) if v is not None]


def _rates(rows: Iterable[tuple[int, datetime, float]]) -> dict[int, float]:
    """Per-second increase per series; a drop means the counter restarted from zero."""
    spans: dict[int, list[Any]] = {}  # series → [first time, last time, last value, increase]
    for pk, when, value in rows:
        span = spans.get(pk)
        if span is None:
            spans[pk] = [when, when, value, 0.0]
            continue
        span[3] += value - span[2] if value >= span[2] else value
        span[1], span[2] = when, value
    out = {}
    for pk, (first, last, _value, increase) in spans.items():
        seconds = (last - first).total_seconds()
        if seconds > 0:
            out[pk] = increase / seconds
    return out


# --- Evaluating ---------------------------------------------------------------------------------


def _alert_input(
    rule: AlertRule, labels: dict[str, str], value: float, now: datetime
) -> AlertInput:
    summary, description = rule.render(value, labels)
    annotations = {"summary": summary}
    if description:
        annotations["description"] = description
    return AlertInput(
        labels=rule.alert_labels(labels),
        severity=rule.severity,
        summary=summary,
        description=description,
        annotations=annotations,
        details={
            "rule_id": rule.pk,
            "rule": rule.name,
            "expression": rule.expression,
            "value": value,
            "threshold": rule.threshold,
        },
        fingerprint=rule.fingerprint(labels),
        starts_at=now,
    )


def _step(
    rule: AlertRule, state: AlertRuleState, value: float, now: datetime, *, dry_run: bool
) -> SeriesResult:
    """Move one series' state for one evaluation; raise/resolve unless ``dry_run``."""
    breaching = rule.breaches(value)
    change = ""
    if breaching and not state.firing:
        if state.pending_since is None:
            state.pending_since = now
            change = "pending"
        if now - state.pending_since >= timedelta(seconds=rule.for_seconds):
            if not dry_run:
                raise_alert(
                    rule.service, _alert_input(rule, state.labels, value, now), source=SOURCE
                )
            state.firing, state.fired_at, change = True, now, "fired"
    elif not breaching:
        if state.firing:
            if not dry_run:
                resolve_alert(rule.service, rule.fingerprint(state.labels), source=SOURCE)
            change = "resolved"
        state.firing, state.fired_at, state.pending_since = False, None, None
    state.last_value, state.last_evaluated_at = value, now
    return SeriesResult(
        labels=state.labels,
        value=value,
        breaching=breaching,
        state=state.state,
        pending_since=state.pending_since,
        change=change,
    )


def _run(rule: AlertRule, now: datetime, *, dry_run: bool) -> Evaluation:
    evaluation = Evaluation(rule, now)
    measured = measure(rule, now)
    states = {s.key: s for s in rule.states.all()} if rule.pk else {}
    new: list[AlertRuleState] = []
    seen: set[str] = set()
    for labels, value in measured:
        key = fingerprint_labels(labels)
        seen.add(key)
        state = states.get(key)
        if state is None:
            state = AlertRuleState(rule=rule, key=key, labels=labels)
            new.append(state)
        evaluation.series.append(_step(rule, state, value, now, dry_run=dry_run))
    gone = [state for key, state in states.items() if key not in seen]
    for state in gone:
        if state.firing or state.pending_since:
            change = "resolved" if state.firing else "cleared"
            evaluation.vanished.append({"labels": state.labels, "change": change})
        if state.firing and not dry_run:
            resolve_alert(rule.service, rule.fingerprint(state.labels), source=SOURCE)
    if dry_run:
        return evaluation
    AlertRuleState.objects.bulk_create(new)
    AlertRuleState.objects.bulk_update(
        [s for key, s in states.items() if key in seen],
        ["pending_since", "firing", "fired_at", "last_value", "last_evaluated_at"],
    )
    if gone:
        AlertRuleState.objects.filter(pk__in=[s.pk for s in gone]).delete()
    rule.last_evaluated_at = now
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
    return evaluation


def _claim(pk: int, now: datetime) -> AlertRule | None:
    """Lock an enabled rule for this evaluation (inside a transaction), or None when another
    worker holds it or evaluated it moments ago. On SQLite the IMMEDIATE transaction already
    serialises writers; the freshness check then turns the second one away."""
    rule = (
        AlertRule.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("service")
        .filter(pk=pk, enabled=True)
        .first()
    )
    if rule is None:
        return None
    if rule.last_evaluated_at and now - rule.last_evaluated_at < MIN_EVALUATION_GAP:
        return None
    return rule


def evaluate_rule(rule: AlertRule | int, now: datetime | None = None) -> Evaluation | None:
    """Evaluate one rule for real (state, alerts); None when it is disabled or just evaluated."""
    now = now or timezone.now()
    pk = rule if isinstance(rule, int) else rule.pk
    with transaction.atomic():
        claimed = _claim(pk, now)
        return _run(claimed, now, dry_run=False) if claimed else None


def evaluate_rules(now: datetime | None = None) -> dict[str, int]:
    """The periodic task (every minute): evaluate every enabled rule, retire disabled ones.

    Each rule is claimed and evaluated in its own transaction, so a failing rule is logged and
    skipped without holding back the others, and several workers share the work safely.
    """
    now = now or timezone.now()
    counts = {"evaluated": 0, "skipped": 0, "failed": 0, "fired": 0, "resolved": 0, "retired": 0}
    for pk in AlertRule.objects.filter(enabled=True).order_by("pk").values_list("pk", flat=True):
        try:
            evaluation = evaluate_rule(pk, now)
        except Exception:
            log.exception("alert rule %s failed to evaluate", pk)
            counts["failed"] += 1
            continue
        if evaluation is None:
            counts["skipped"] += 1
            continue
        counts["evaluated"] += 1
        counts["fired"] += evaluation.count("fired")
        counts["resolved"] += evaluation.count("resolved")
    disabled = (
        AlertRule.objects.filter(enabled=False, states__isnull=False)
        .distinct()
        .values_list("pk", flat=True)
    )
    for pk in list(disabled):
        with transaction.atomic():
            rule = (
                AlertRule.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("service")
                .filter(pk=pk, enabled=False)
                .first()
            )
            if rule is not None:
                counts["retired"] += retire(rule)
    return counts


def preview_rule(rule: AlertRule, now: datetime | None = None) -> Evaluation:
    """What the rule sees right now and what an evaluation would do, changing nothing.

    Works on unsaved rules too (the API's "try this rule" and the admin's "test now")."""
    return _run(rule, now or timezone.now(), dry_run=True)


def retire(rule: AlertRule) -> int:
    """Resolve the rule's firing alerts and forget its states; returns how many it resolved.

    Call inside a transaction (the rule is being disabled, deleted or moved to a service)."""
    resolved = 0
    for state in rule.states.filter(firing=True):
        resolve_alert(rule.service, rule.fingerprint(state.labels), source=SOURCE)
        resolved += 1
    rule.states.all().delete()
    return resolved


# --- Changing rules -----------------------------------------------------------------------------

_NAME_TAKEN = "this team already has a rule with this name"


def _validate(rule: AlertRule) -> None:
    problems = rule.problems()
    if problems:
        name, message = next(iter(problems.items()))
        raise ServiceError(message, name)


def _snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        "rule_id": rule.pk,
        "name": rule.name,
        "expression": rule.expression,
        "service_id": rule.service_id,
        "severity": rule.severity,
        "enabled": rule.enabled,
    }


def create_rule(team: Team, *, actor: Any = None, **fields: Any) -> AlertRule:
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ServiceError(f"unknown field {sorted(unknown)[0]}", sorted(unknown)[0])
    rule = AlertRule(team=team, **fields)
    _validate(rule)
    try:
        with transaction.atomic():
            rule.save()
            record(
                "alert_rule.created",
                team=team,
                subject=rule,
                actor=actor,
                payload=_snapshot(rule),
            )
    except IntegrityError:
        raise ServiceError(_NAME_TAKEN, "name", "duplicate") from None
    return rule


def update_rule(rule: AlertRule, *, actor: Any = None, **changes: Any) -> AlertRule:
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ServiceError(f"unknown field {sorted(unknown)[0]}", sorted(unknown)[0])
    before = {name: getattr(rule, name) for name in changes}
    for name, value in changes.items():
        setattr(rule, name, value)
    try:
        _validate(rule)
    except ServiceError:
        for name, value in before.items():
            setattr(rule, name, value)
        raise
    changed = [name for name in changes if getattr(rule, name) != before[name]]
    if not changed:
        return rule
    rule.updated_at = timezone.now()
    try:
        with transaction.atomic():
            locked = AlertRule.objects.select_for_update().get(pk=rule.pk)
            if RETARGETING_FIELDS & set(changed) or (not rule.enabled and locked.enabled):
                retire(locked)
            rule.save()
            record(
                "alert_rule.updated",
                team=rule.team_id,
                subject=rule,
                actor=actor,
                payload={
                    **_snapshot(rule),
                    "changes": {
                        name: [_plain(before[name]), _plain(getattr(rule, name))]
                        for name in changed
                    },
                },
            )
    except IntegrityError:
        for name, value in before.items():
            setattr(rule, name, value)
        raise ServiceError(_NAME_TAKEN, "name", "duplicate") from None
    return rule


def _plain(value: Any) -> Any:
    return value.pk if hasattr(value, "pk") else value


def delete_rule(rule: AlertRule, *, actor: Any = None) -> None:
    """Delete a rule after resolving what it has firing (nothing else would ever resolve it)."""
    with transaction.atomic():
        locked = (
            AlertRule.objects.select_for_update(of=("self",))
            .select_related("service")
            .get(pk=rule.pk)
        )
        retire(locked)
        record(
            "alert_rule.deleted",
            team=rule.team_id,
            subject=rule,
            actor=actor,
            payload=_snapshot(rule),
        )
        locked.delete()
