"""Incidents, their alerts and per-service incident settings (grouping, auto-resolve).

The incident's timeline is not stored here: it is the event log (``tocsin.Event``) filtered on
the incident and its alerts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Service
from tocsin.models import Team

__all__ = ["Incident", "IncidentStatus", "Priority", "Urgency"]


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Priority(models.TextChoices):
    P1 = "P1", "P1 - critical"
    P2 = "P2", "P2 - high"
    P3 = "P3", "P3 - moderate"
    P4 = "P4", "P4 - low"
    P5 = "P5", "P5 - informational"


class Urgency(models.TextChoices):
    HIGH = "high", "High"
    LOW = "low", "Low"


class Incident(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="incidents")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="incidents")
    title = models.CharField(max_length=500)
    summary = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED
    )
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    urgency = models.CharField(max_length=4, choices=Urgency.choices, default=Urgency.HIGH)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Incident list: "open incidents of these teams, newest first".
            models.Index(fields=["team", "status", "-created_at"], name="incident_team_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("incident", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED
