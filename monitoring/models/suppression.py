"""Silences, inhibition rules and maintenance windows: what keeps a firing alert from paging.

All three are data, as in Alertmanager. Suppressed alerts are still stored and shown; they carry
``Alert.suppression``/``suppressed_by`` and the incidents app does not page for them. Writes go
through ``monitoring.suppression`` (validation, events, re-evaluation of firing alerts).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from monitoring.matchers import Matcher, format_matchers, from_stored, matches_all
from monitoring.models.catalog import Service
from tocsin.models import Authored, Team

__all__ = ["InhibitionRule", "MaintenanceWindow", "Silence", "SilenceState"]


class SilenceState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"


class SilenceQuerySet(models.QuerySet):
    def active(self, now: datetime) -> SilenceQuerySet:
        return self.filter(starts_at__lte=now, ends_at__gt=now)

    def pending(self, now: datetime) -> SilenceQuerySet:
        return self.filter(starts_at__gt=now, ends_at__gt=now)

    def expired(self, now: datetime) -> SilenceQuerySet:
        return self.filter(ends_at__lte=now)


class Silence(models.Model):
    """Mute alerts whose labels match, for a while. Ending one early sets ``ends_at`` to that
    moment (as Alertmanager does) and records who ended it in ``expired_by``/``expired_at``."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="silences")
    # Only this service's alerts; null means every alert of the team.
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    # [{"name": "alertname", "op": "=", "value": "HighLatency"}, …], all must match.
    matchers = models.JSONField(default=list)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expired_at = models.DateTimeField(null=True, blank=True, editable=False)
    expired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gte=models.F("starts_at")), name="silence_ends_after_start"
            ),
        ]
        indexes = [
            # find_suppression: "silences of this team not yet ended" (starts_at checked after).
            models.Index(fields=["team", "ends_at"], name="silence_team_ends"),
        ]

    def __str__(self) -> str:
        return self.label

    @cached_property
    def matcher_list(self) -> list[Matcher]:
        return from_stored(self.matchers)

    @property
    def label(self) -> str:
        return format_matchers(self.matcher_list)

    def state(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.ends_at <= now:
            return SilenceState.EXPIRED
        if self.starts_at > now:
            return SilenceState.PENDING
        return SilenceState.ACTIVE

    def is_active(self, now: datetime | None = None) -> bool:
        return self.state(now) == SilenceState.ACTIVE

    def matches(self, alert: Any) -> bool:
        """Do the alert's service and labels fall under this silence (whatever the time)?"""
        if alert.team_id != self.team_id:
            return False
        if self.service_id is not None and alert.service_id != self.service_id:
            return False
        return matches_all(self.matcher_list, alert.labels or {})


class InhibitionRule(Authored):
    """While an alert matching the source matchers fires, alerts matching the target matchers
    and agreeing with it on every ``equal`` label are muted (Alertmanager's inhibit_rules).

    ``service`` narrows the targets to one service's alerts; sources may be any alert of the
    team (a database outage inhibits the API's error alerts).
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="inhibition_rules")
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="inhibition_rules"
    )
    name = models.CharField(max_length=200)
    source_matchers = models.JSONField(default=list)
    target_matchers = models.JSONField(default=list)
    # Label names whose values must be the same on source and target (missing = "").
    equal = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["team__name", "name", "id"]
        indexes = [
            # find_suppression: "enabled rules of this team".
            models.Index(fields=["team"], condition=Q(enabled=True), name="inhibition_team_on"),
        ]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def source_list(self) -> list[Matcher]:
        return from_stored(self.source_matchers)

    @cached_property
    def target_list(self) -> list[Matcher]:
        return from_stored(self.target_matchers)

    @property
    def label(self) -> str:
        source, target = format_matchers(self.source_list), format_matchers(self.target_list)
        return f"{self.name}: {source} inhibits {target}"

    def is_active(self, now: datetime | None = None) -> bool:
        return self.enabled

    def matches(self, alert: Any) -> bool:
        """Is ``alert`` a possible target of this rule?"""
        if alert.team_id != self.team_id:
            return False
        if self.service_id is not None and alert.service_id != self.service_id:
            return False
        return matches_all(self.target_list, alert.labels or {})

    def matches_source(self, alert: Any) -> bool:
        return alert.team_id == self.team_id and matches_all(self.source_list, alert.labels or {})

    def has_equal_labels(self, source: Any, target: Any) -> bool:
        src, tgt = source.labels or {}, target.labels or {}
        return all(str(src.get(n, "")) == str(tgt.get(n, "")) for n in self.equal)

    def inhibits(self, source: Any, target: Any) -> bool:
        """Alertmanager's rule: a firing source other than the target, matching the source
        matchers, equal on the ``equal`` labels. When the target also matches the source side,
        sources that also match the target side do not count, so two alerts of one kind cannot
        mute each other."""
        if source is target or (
            (source.pk is not None and source.pk == target.pk)
            or (source.service_id, source.fingerprint) == (target.service_id, target.fingerprint)
        ):
            return False
        if not (self.matches(target) and self.matches_source(source)):
            return False
        if not self.has_equal_labels(source, target):
            return False
        two_sided = matches_all(self.source_list, target.labels or {})
        return not (two_sided and matches_all(self.target_list, source.labels or {}))


class MaintenanceWindowQuerySet(models.QuerySet):
    def current_candidates(self, now: datetime) -> MaintenanceWindowQuerySet:
        """One-off windows open now, and every recurring window (checked in Python)."""
        return self.filter(Q(ends_at__isnull=True) | Q(starts_at__lte=now, ends_at__gt=now))


class MaintenanceWindow(models.Model):
    """A service is under maintenance: its alerts are stored but do not page.

    One-off: ``starts_at`` to ``ends_at``. Recurring: on ``weekdays`` (0 = Monday) at
    ``start_time`` in ``time_zone``, for ``duration`` of elapsed time, so a window may run past
    midnight and keeps its local start time across daylight-saving changes.
    """

    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    weekdays = models.JSONField(default=list, blank=True)
    start_time = models.TimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = MaintenanceWindowQuerySet.as_manager()

    class Meta:
        ordering = ["service__name", "title", "id"]
        indexes = [
            # find_suppression: "windows of this service not yet over" (null = recurring).
            models.Index(fields=["service", "ends_at"], name="maintenance_service_ends"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def team_id(self) -> int:
        return self.service.team_id

    @property
    def team(self) -> Team:
        return self.service.team

    @property
    def is_recurring(self) -> bool:
        return bool(self.weekdays)

    @property
    def label(self) -> str:
        return self.title

    def occurrence_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) of the occurrence covering ``now``, or None."""
        if not self.is_recurring:
            if self.starts_at and self.ends_at and self.starts_at <= now < self.ends_at:
                return self.starts_at, self.ends_at
            return None
        if self.start_time is None or not self.duration:
            return None
        zone = ZoneInfo(self.time_zone or "UTC")
        today = now.astimezone(zone).date()
        # An occurrence that started up to `duration` ago may still be running.
        for back in range(self.duration.days + 1, -1, -1):
            day = today - timedelta(days=back)
            if day.weekday() not in self.weekdays:
                continue
            # A start time skipped by a DST jump resolves forward (fold=0 uses the old offset).
            start = datetime.combine(day, self.start_time, tzinfo=zone).astimezone(UTC)
            end = start + self.duration
            if start <= now < end:
                return start, end
        return None

    def is_active(self, now: datetime | None = None) -> bool:
        return self.occurrence_at(now or timezone.now()) is not None

    def next_occurrence(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence running at ``now`` or, if none, the next one to start; None when a
        one-off window is over (or a recurring one is incomplete)."""
        if not self.is_recurring:
            if self.starts_at and self.ends_at and self.ends_at > now:
                return self.starts_at, self.ends_at
            return None
        if self.start_time is None or not self.duration:
            return None
        zone = ZoneInfo(self.time_zone or "UTC")
        today = now.astimezone(zone).date()
        for offset in range(-(self.duration.days + 1), 8):
            day = today + timedelta(days=offset)
            if day.weekday() not in self.weekdays:
                continue
            start = datetime.combine(day, self.start_time, tzinfo=zone).astimezone(UTC)
            if start + self.duration > now:
                return start, start + self.duration
        return None

    def matches(self, alert: Any) -> bool:
        return alert.service_id == self.service_id
