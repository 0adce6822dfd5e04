"""An incident's timeline: the event log about the incident and its alerts, oldest first.

Nothing keeps a second history: notes, acknowledgements, escalation steps and the alerts'
own state changes are all events, and this is the one query that reads them back.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from incidents.models import Incident, IncidentAlert
from tocsin.models import Event


def for_incident(incident: Incident) -> QuerySet[Event]:
    alert_ids = [
        str(pk)
        for pk in IncidentAlert.objects.filter(incident=incident).values_list("alert_id", flat=True)
    ]
    about = Q(subject_type="incident", subject_id=str(incident.pk))
    if alert_ids:
        about |= Q(subject_type="alert", subject_id__in=alert_ids)
    return Event.objects.filter(about).select_related("actor").order_by("id")
