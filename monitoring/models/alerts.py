"""Alerts: one row per (service, fingerprint), updated in place as the sender re-sends it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from monitoring.models.catalog import Integration, Service
from tocsin.models import Team


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"

    @classmethod
    def rank(cls, value: str) -> int:
        return [c.value for c in cls].index(value)


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Suppression(models.TextChoices):
    NONE = "", "Not suppressed"
    SILENCED = "silenced", "Silenced"
    INHIBITED = "inhibited", "Inhibited"
    MAINTENANCE = "maintenance", "In maintenance"


class Alert(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="alerts")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="alerts")
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    source = models.CharField(max_length=20)
    # From the sender (Alertmanager fingerprint, Events v2 dedup_key) or from the sorted labels.
    fingerprint = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    summary = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    links = models.JSONField(default=list, blank=True)
    generator_url = models.URLField(max_length=1000, blank=True)
    # A digest of what the sender said; an identical re-send only bumps last_seen/occurrences.
    content_hash = models.CharField(max_length=64)

    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_change_at = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1)
    fired_count = models.PositiveIntegerField(default=1)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    # Recent status changes (ISO times, newest last), for flap detection.
    recent_changes = models.JSONField(default=list, blank=True)
    is_flapping = models.BooleanField(default=False)

    suppression = models.CharField(
        max_length=12, choices=Suppression.choices, default=Suppression.NONE, blank=True
    )
    # What suppresses it: {"kind": "silence", "id": 3, "label": "…"}.
    suppressed_by = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-last_change_at"]
        constraints = [
            # Dedup is this constraint: concurrent first sends of one alert cannot both insert.
            models.UniqueConstraint(
                fields=["service", "fingerprint"], name="alert_unique_service_fingerprint"
            ),
        ]
        indexes = [
            # Alerts page: "firing alerts of these teams, newest change first".
            models.Index(fields=["team", "status", "-last_change_at"], name="alert_team_status"),
            models.Index(fields=["service", "status"], name="alert_service_status"),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def is_firing(self) -> bool:
        return self.status == AlertStatus.FIRING

    @property
    def is_suppressed(self) -> bool:
        return bool(self.suppression)
