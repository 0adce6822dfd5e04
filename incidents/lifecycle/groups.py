"""What group an alert belongs to under its service's grouping rule, and which incident of that
group is open or may be reopened: the reads grouping decides by, and ``preview``, which shows
the decision without making it (the service page, the API)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from incidents.models import (
    OPEN_STATUSES,
    GroupingMode,
    Incident,
    IncidentStatus,
    ServiceIncidentSettings,
)
from monitoring.models import Alert, Service

AUTO_ACTOR = "grouping"


@dataclass
class Candidate:
    """What grouping needs of an alert, from a stored Alert or from an alert input."""

    fingerprint: str
    labels: dict[str, str]
    severity: str
    summary: str


def group_key(settings: ServiceIncidentSettings, candidate: Candidate, now: datetime) -> str:
    mode = settings.grouping_mode
    if mode == GroupingMode.LABELS and settings.group_labels:
        parts = ",".join(
            f"{name}={candidate.labels.get(name, '')}" for name in sorted(settings.group_labels)
        )
        key = f"labels:{parts}"
        if len(key) > 200:
            key = "labels#" + hashlib.sha256(parts.encode()).hexdigest()
        return key
    if mode == GroupingMode.TIME_WINDOW:
        window = max(int(settings.window_minutes or 1), 1) * 60
        return f"window:{int(now.timestamp()) // window}"
    return f"fp:{candidate.fingerprint}"[:255]


def rule_label(settings: ServiceIncidentSettings) -> str:
    if settings.grouping_mode == GroupingMode.LABELS and settings.group_labels:
        return f"labels: {', '.join(sorted(settings.group_labels))}"
    if settings.grouping_mode == GroupingMode.TIME_WINDOW:
        return f"time window: {settings.window_minutes} minutes"
    return "fingerprint"


def open_incident_of(
    service: Service, settings: ServiceIncidentSettings, key: str, now: datetime
) -> Incident | None:
    if settings.grouping_mode == GroupingMode.TIME_WINDOW:
        # Any open incident of the service that started within the window, whatever bucket.
        horizon = now - timedelta(minutes=max(int(settings.window_minutes or 1), 1))
        return (
            Incident.objects.filter(
                service=service,
                status__in=OPEN_STATUSES,
                group_key__startswith="window:",
                created_at__gte=horizon,
            )
            .order_by("-created_at")
            .first()
        ) or Incident.objects.filter(
            service=service, status__in=OPEN_STATUSES, group_key=key
        ).first()
    return Incident.objects.filter(service=service, status__in=OPEN_STATUSES, group_key=key).first()


def reopenable_incident(
    service: Service, settings: ServiceIncidentSettings, key: str, now: datetime
) -> Incident | None:
    minutes = int(settings.reopen_window_minutes or 0)
    if not minutes:
        return None
    return (
        Incident.objects.filter(
            service=service,
            group_key=key,
            status=IncidentStatus.RESOLVED,
            merged_into__isnull=True,
            resolved_at__gte=now - timedelta(minutes=minutes),
        )
        .order_by("-resolved_at")
        .first()
    )


def preview(service: Service, item: Any, now: datetime | None = None) -> dict[str, Any]:
    """Which incident an alert would join, by which rule and key, and why. Changes nothing.

    ``item`` is an Alert, a pipeline ``AlertInput`` or a dict with ``labels`` (and optionally
    ``fingerprint``, ``severity``, ``summary``).
    """
    now = now or timezone.now()
    candidate = as_candidate(item)
    settings = ServiceIncidentSettings.for_service(service)
    key = group_key(settings, candidate, now)
    rule = rule_label(settings)
    incident = open_incident_of(service, settings, key, now)
    if incident is not None:
        why = f"joins open incident #{incident.pk}, which has the same group ({rule})"
    else:
        incident = reopenable_incident(service, settings, key, now)
        if incident is not None:
            why = (
                f"reopens incident #{incident.pk}: same group, resolved within the last "
                f"{settings.reopen_window_minutes} minutes"
            )
        else:
            why = f"opens a new incident: no open incident has this group ({rule})"
    return {
        "incident": incident,
        "rule": rule,
        "group_key": key,
        "why": why,
        "priority": settings.priority_for(candidate.severity),
        "urgency": settings.urgency_for(candidate.severity),
    }


def as_candidate(item: Any) -> Candidate:
    if isinstance(item, Alert):
        return Candidate(item.fingerprint, item.labels or {}, item.severity, item.summary)
    if isinstance(item, dict):
        from monitoring.pipeline import fingerprint_labels

        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        return Candidate(
            str(item.get("fingerprint") or fingerprint_labels(labels)),
            labels,
            str(item.get("severity") or "error"),
            str(item.get("summary") or labels.get("alertname") or "alert"),
        )
    return Candidate(item.get_fingerprint(), item.labels, item.severity, item.get_summary())
