"""Changes reported for a service (deploys, config changes): context for the alerts they cause.

Stored from PagerDuty-compatible change events (``POST /ingest/pagerduty/v2/change/enqueue``);
they never page. The service page shows them next to its alerts.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from monitoring.models.catalog import Integration, Service

__all__ = ["ChangeEvent"]


class ChangeEvent(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="changes")
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    summary = models.CharField(max_length=1024)
    source = models.CharField(max_length=255, blank=True)
    # When the sender says the change happened (PagerDuty's payload.timestamp), else received_at.
    timestamp = models.DateTimeField()
    links = models.JSONField(default=list, blank=True)
    custom_details = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            # Service page: "this service's latest changes".
            models.Index(fields=["service", "-timestamp"], name="change_service_time"),
        ]

    def __str__(self) -> str:
        return self.summary[:200]

    @property
    def team_id(self) -> int:
        return self.service.team_id
