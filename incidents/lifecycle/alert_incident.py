"""The incident an alert belongs to, for monitoring's alert page
(``monitoring.incident_links``, registered in ``incidents.apps``)."""

from __future__ import annotations

from typing import Any

from incidents.lifecycle.models import IncidentAlert
from monitoring.incident_links import AlertIncident


def incident_for_alert(alert: Any) -> AlertIncident | None:
    """One query: the alert's link (an alert is in one incident at a time) with its incident."""
    link = IncidentAlert.objects.select_related("incident").filter(alert_id=alert.pk).first()
    if link is None:
        return None
    incident = link.incident
    return AlertIncident(
        incident_id=incident.pk,
        title=incident.title,
        url=incident.get_absolute_url(),
        status=incident.get_status_display(),
        joined_at=link.added_at,
    )
