"""The alert vocabulary (severity, status, suppression), with no model imports: ingest parsers
and the integration kinds read it while ``monitoring.models`` is still loading."""

from __future__ import annotations

from django.db import models


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
