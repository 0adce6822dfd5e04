"""Which resolved alerts incidents still need (``monitoring.retention.keep_alerts_where``).

An incident's page lists its alerts. Keep them while the incident is open and for the retention
window after it resolved — as long as an alert resolved at that moment would be kept anyway;
after that the incident keeps its timeline (``incident.alert_added`` and the alerts' own events
in the event log), not the alert rows.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from incidents.lifecycle.models import OPEN_STATUSES


def alerts_incidents_need(cutoff: datetime) -> Q:
    return Q(incident_links__incident__status__in=OPEN_STATUSES) | Q(
        incident_links__incident__resolved_at__gte=cutoff
    )
