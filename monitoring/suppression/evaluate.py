"""Whether a firing alert is muted now, and re-checking a team's firing alerts when that changes.

The pipeline asks ``find_suppression(alert, now)`` whenever an alert (re)fires; the periodic
task ``reevaluate_suppressions`` (every minute) re-checks firing alerts when silences or windows
start and end and inhibiting alerts come and go. The change itself is ``Alert.change_suppression``
(a conditional write and its ``alert.suppressed``/``alert.unsuppressed`` event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from monitoring.models import (
    Alert,
    AlertStatus,
    InhibitionRule,
    MaintenanceWindow,
    Silence,
    Suppression,
)
from tocsin.db import bulk


@dataclass(frozen=True)
class Found:
    kind: str  # a monitoring.models.Suppression value
    object_id: int
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.object_id, "label": self.label}


@dataclass
class _TeamContext:
    """What one team's suppression decisions read, loaded lazily, once per call or pass.

    ``sources`` may be handed in (re-evaluation passes the firing alerts it already holds, and
    updates their ``suppression`` in memory as it goes, so later decisions of the same pass see
    earlier ones: two alerts that would inhibit each other settle with one muted, not both).
    """

    team_id: int
    now: datetime
    sources: list[Alert] | None = None
    # Alerts of a batch decided before the one being decided, not stored yet: they inhibit as
    # stored ones do, so a batch settles as if its alerts had arrived one by one.
    pending: list[Alert] = field(default_factory=list)
    _silences: list[Silence] | None = None
    _rules: list[InhibitionRule] | None = None
    _windows: dict[int, list[MaintenanceWindow]] = field(default_factory=dict)
    _all_windows_loaded: bool = False

    def windows(self, service_id: int) -> list[MaintenanceWindow]:
        if service_id not in self._windows and not self._all_windows_loaded:
            self._windows[service_id] = list(
                MaintenanceWindow.objects.filter(service_id=service_id).current_candidates(self.now)
            )
        return self._windows.get(service_id, [])

    def preload_windows(self) -> None:
        """All candidate windows of the team's services in one query (for re-evaluation)."""
        rows = MaintenanceWindow.objects.filter(service__team_id=self.team_id)
        for window in rows.current_candidates(self.now):
            self._windows.setdefault(window.service_id, []).append(window)
        self._all_windows_loaded = True

    def silences(self) -> list[Silence]:
        if self._silences is None:
            rows = Silence.objects.filter(team_id=self.team_id).active(self.now).order_by("id")
            self._silences = list(rows)
        return self._silences

    def rules(self) -> list[InhibitionRule]:
        if self._rules is None:
            rows = InhibitionRule.objects.filter(team_id=self.team_id, enabled=True).order_by("id")
            self._rules = list(rows)
        return self._rules

    def source_alerts(self) -> list[Alert]:
        if self.sources is None:
            self.sources = list(
                Alert.objects.filter(team_id=self.team_id, status=AlertStatus.FIRING)
                .exclude(suppression=Suppression.INHIBITED)
                .only("id", "team_id", "service_id", "fingerprint", "labels", "suppression")
                .order_by("id")
            )
        return self.sources + self.pending if self.pending else self.sources


def find_suppression(
    alert: Any, now: datetime, context: _TeamContext | None = None
) -> Found | None:
    """What suppresses ``alert`` at ``now``, or None. Maintenance first, then silences, then
    inhibition (the order Alertmanager reports them in a UI is not significant).

    Costs at most four queries for one alert (windows, silences, rules, inhibiting alerts), the
    last only when a rule targets the alert; a shared ``context`` makes them once per team.
    """
    ctx = context or _TeamContext(alert.team_id, now)
    for window in ctx.windows(alert.service_id):
        if window.occurrence_at(now) is not None:
            return Found(Suppression.MAINTENANCE, window.pk, window.title)
    for silence in ctx.silences():
        if silence.matches(alert):
            return Found(Suppression.SILENCED, silence.pk, silence.label)
    rules = [rule for rule in ctx.rules() if rule.matches(alert)]
    if rules:
        for source in ctx.source_alerts():
            if source.suppression == Suppression.INHIBITED:
                continue  # muted alerts do not mute others (no chains, no mutual muting)
            for rule in rules:
                if rule.inhibits(source, alert):
                    return Found(Suppression.INHIBITED, rule.pk, rule.name)
    return None


class BatchSuppressor:
    """What mutes each alert of one batch of a team's new or re-firing alerts, deciding them in
    order: silences, rules, windows and source alerts are read once for the whole batch (at
    most four queries, however many alerts), and each decided alert counts as a source for the
    ones after it. Calling it returns (``Suppression`` value, ``{"kind", "id", "label"}``)."""

    def __init__(self, team_id: int, now: datetime) -> None:
        self.now = now
        self.ctx = _TeamContext(team_id, now)
        # Per service: nothing can mute its alerts in this batch (no maintenance window that
        # may apply, no active silence, no inhibition rule) — the usual case, decided once.
        self._nothing_mutes: dict[int, bool] = {}

    def __call__(self, alert: Alert) -> tuple[str, dict]:
        nothing_mutes = self._nothing_mutes.get(alert.service_id)
        if nothing_mutes is None:
            ctx = self.ctx
            self._probe(alert.service_id)
            nothing_mutes = not (ctx.windows(alert.service_id) or ctx.silences() or ctx.rules())
            self._nothing_mutes[alert.service_id] = nothing_mutes
        if nothing_mutes:
            # Without rules no alert is a source for another: nothing to remember either.
            return Suppression.NONE, {}
        found = find_suppression(alert, self.now, self.ctx)
        if alert.pk is None:
            self.ctx.pending.append(alert)  # its ``suppression`` is set by the caller right after
        return (found.kind, found.as_dict()) if found else (Suppression.NONE, {})

    def _probe(self, service_id: int) -> None:
        """Before loading anything: one statement asks whether the service has a maintenance
        window that may apply, the team an active silence, an enabled inhibition rule. What it
        has none of is known empty without its query — the usual case is all three, one round
        trip instead of three (a batch of one alert paid a third of its pipeline time for them).
        """
        ctx = self.ctx
        loaded = (service_id in ctx._windows, ctx._silences is not None, ctx._rules is not None)
        if all(loaded) or ctx._all_windows_loaded:
            return
        window, silence, rule = _anything_may_mute(ctx.team_id, service_id, ctx.now)
        if not window:
            ctx._windows.setdefault(service_id, [])
        if not silence and ctx._silences is None:
            ctx._silences = []
        if not rule and ctx._rules is None:
            ctx._rules = []

    def has_inhibition_rules(self) -> bool:
        """Whether the team has enabled inhibition rules (no query when the batch read them)."""
        return bool(self.ctx.rules())


def _anything_may_mute(team_id: int, service_id: int, now: datetime) -> tuple[bool, bool, bool]:
    """(a maintenance window of the service may apply, the team has an active silence, an
    enabled inhibition rule) at ``now``, in one statement: the conditions of
    ``current_candidates``, ``Silence.objects.active`` and ``_TeamContext.rules`` as EXISTS.
    Plain SQL, written once: the three querysets cost more to compile than to run."""
    connection = connections[router.db_for_read(Silence)]
    quote = connection.ops.quote_name
    at = connection.ops.adapt_datetimefield_value(now)
    windows, silences, rules = (
        quote(model._meta.db_table) for model in (MaintenanceWindow, Silence, InhibitionRule)
    )
    sql = (
        f"SELECT EXISTS(SELECT 1 FROM {windows} WHERE service_id = %s"
        " AND (ends_at IS NULL OR (starts_at <= %s AND ends_at > %s))),"
        f" EXISTS(SELECT 1 FROM {silences} WHERE team_id = %s"
        " AND starts_at <= %s AND ends_at > %s),"
        f" EXISTS(SELECT 1 FROM {rules} WHERE team_id = %s AND enabled = %s)"
    )
    with bulk.server_cursor(connection) as cursor:  # prepared: the same text every batch
        cursor.execute(sql, [service_id, at, at, team_id, at, at, team_id, True])
        window, silence, rule = cursor.fetchone()
    return bool(window), bool(silence), bool(rule)


def batch_suppressor(team_id: int, now: datetime) -> BatchSuppressor:
    return BatchSuppressor(team_id, now)


def reevaluate_team(team_id: int, now: datetime | None = None, actor: Any = None) -> int:
    """Re-check every firing alert of one team; returns how many changed."""
    now = now or timezone.now()
    alerts = list(
        Alert.objects.filter(team_id=team_id, status=AlertStatus.FIRING)
        .select_related("service")
        .order_by("id")
    )
    if not alerts:
        return 0
    ctx = _TeamContext(team_id, now, sources=alerts)
    ctx.preload_windows()
    changed = 0
    for alert in alerts:
        found = find_suppression(alert, now, ctx)
        kind, by = (found.kind, found.as_dict()) if found else (Suppression.NONE, {})
        if (alert.suppression, alert.suppressed_by) == (kind, by):
            continue
        with transaction.atomic():
            if alert.change_suppression(
                kind, by, now, actor=actor, actor_label="" if actor else "suppression"
            ):
                changed += 1
    return changed


def reevaluate_suppressions(now: datetime | None = None) -> int:
    """The periodic task: every team with firing alerts, one team at a time."""
    now = now or timezone.now()
    team_ids = (
        Alert.objects.filter(status=AlertStatus.FIRING)
        .order_by()
        .values_list("team_id", flat=True)
        .distinct()
    )
    return sum(reevaluate_team(team_id, now) for team_id in list(team_ids))
