"""The incident an alert belongs to, and why, for monitoring's alert page
(``monitoring.incident_links``, registered in ``incidents.apps``)."""

from __future__ import annotations

from typing import Any

from incidents.lifecycle.groups import as_candidate, group_key, rule_label
from incidents.models import GroupingMode, Incident, IncidentAlert, ServiceIncidentSettings
from monitoring.incident_links import AlertIncident


def incident_for_alert(alert: Any) -> AlertIncident | None:
    """A few queries: the alert's link (an alert is in one incident at a time) with its
    incident, whether it came first, and the service's grouping rule for the explanation."""
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
        why=grouping_reason(alert, link),
    )


def grouping_reason(alert: Any, link: IncidentAlert) -> str:
    """Why ``alert`` is in ``link.incident``, in the words of the service's grouping rule."""
    incident: Incident = link.incident
    settings = ServiceIncidentSettings.for_service(alert.service)
    if not IncidentAlert.objects.filter(incident_id=incident.pk, pk__lt=link.pk).exists():
        return (
            f"It opened incident #{incident.pk}: no open incident had its group "
            f"(the service groups by {rule_label(settings)})."
        )
    key = group_key(settings, as_candidate(alert), link.added_at)
    head = f"It joined incident #{incident.pk} because"
    if incident.group_key.startswith("fp:") and key == incident.group_key:
        return f"{head} it has the same fingerprint ({alert.fingerprint[:16]}…)."
    if incident.group_key.startswith("labels") and key == incident.group_key:
        labels = alert.labels or {}
        values = ", ".join(
            f"{name}={labels.get(name, '')!r}" for name in sorted(settings.group_labels)
        )
        return f"{head} it has the same values of the labels {values}."
    if settings.grouping_mode == GroupingMode.TIME_WINDOW and incident.group_key.startswith(
        "window:"
    ):
        return (
            f"{head} it fired within the {settings.window_minutes}-minute window after the "
            "incident opened (the service groups by time window)."
        )
    return (
        f"{head} of an alert storm (past {settings.storm_threshold} new incidents within "
        f"{settings.storm_window_minutes} minutes, new groups join the newest open incident), "
        "a merge, or a grouping rule changed since."
    )
