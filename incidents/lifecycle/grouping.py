"""Alerts into incidents.

Runs inside the pipeline's transaction (subscribed to the alert events, see
``incidents.lifecycle.subscribers``), so an alert's state change, the incident change and their
events
commit together. Two processes grouping alerts of one group at the same moment cannot open two
incidents: the partial unique constraint over (service, group_key) among open incidents refuses
the second insert, and the loser joins the winner's incident.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.models import (
    OPEN_STATUSES,
    GroupingMode,
    Incident,
    IncidentAlert,
    IncidentStatus,
    ServiceIncidentSettings,
)
from monitoring.models import Alert, AlertStatus, Service
from tocsin.events import record
from tocsin.services import ServiceError

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


def _rule(settings: ServiceIncidentSettings) -> str:
    if settings.grouping_mode == GroupingMode.LABELS and settings.group_labels:
        return f"labels: {', '.join(sorted(settings.group_labels))}"
    if settings.grouping_mode == GroupingMode.TIME_WINDOW:
        return f"time window: {settings.window_minutes} minutes"
    return "fingerprint"


def _open_incident(
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


def _reopenable(
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
    rule = _rule(settings)
    incident = _open_incident(service, settings, key, now)
    if incident is not None:
        why = f"joins open incident #{incident.pk}, which has the same group ({rule})"
    else:
        incident = _reopenable(service, settings, key, now)
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


# --- Reacting to alert events ----------------------------------------------------------------


def alert_fired(alert: Alert, now: datetime | None = None) -> Incident | None:
    """A firing, unsuppressed alert joins (or opens, or reopens) its group's incident."""
    if alert.status != AlertStatus.FIRING or alert.suppression:
        return None  # suppressed alerts never open incidents nor page
    now = now or timezone.now()
    link = IncidentAlert.objects.select_related("incident").filter(alert=alert).first()
    if link is not None and link.incident.is_open:
        return link.incident  # still part of an open incident: nothing changes
    service = alert.service
    settings = ServiceIncidentSettings.for_service(service)
    key = group_key(settings, as_candidate(alert), now)
    for _attempt in range(3):
        incident = _open_incident(service, settings, key, now)
        if incident is not None:
            _attach(incident, alert, link, now, kind="incident.alert_added")
            return incident
        reopened = _reopenable(service, settings, key, now)
        try:
            with transaction.atomic():  # a savepoint: the unique constraint may refuse us
                if reopened is not None:
                    incident = _reopen(reopened, now)
                else:
                    incident = _create(service, settings, key, alert, now)
        except (IntegrityError, ServiceError):
            continue  # another process opened this group a moment ago: join theirs
        _attach(incident, alert, link, now, kind=None)
        return incident
    raise RuntimeError(f"could not group alert {alert.pk} into group {key!r}")


def _create(
    service: Service,
    settings: ServiceIncidentSettings,
    key: str,
    alert: Alert,
    now: datetime,
) -> Incident:
    from incidents.lifecycle import services

    return services.open_incident(
        service,
        title=alert.summary or "alert",
        summary=alert.description,
        priority=settings.priority_for(alert.severity),
        urgency=settings.urgency_for(alert.severity),
        group_key=key,
        policy=settings.escalation_policy,
        alert_id=alert.pk,
        actor_label=AUTO_ACTOR,
        now=now,
        payload={"rule": _rule(settings)},
    )


def _reopen(incident: Incident, now: datetime) -> Incident:
    from incidents.lifecycle import services

    return services.reopen(
        incident, actor_label=AUTO_ACTOR, reason="alert fired within the reopen window", now=now
    )


def _attach(
    incident: Incident, alert: Alert, link: IncidentAlert | None, now: datetime, kind: str | None
) -> None:
    if link is not None:
        if link.incident_id == incident.pk:
            return
        link.incident = incident
        link.added_at = now
        link.save(update_fields=["incident", "added_at"])
    else:
        IncidentAlert.objects.create(incident=incident, alert=alert, added_at=now)
    if kind:
        record(
            kind,
            team=incident.team_id,
            subject=incident,
            actor_label=AUTO_ACTOR,
            payload={"incident_id": incident.pk, "alert_id": alert.pk, "summary": alert.summary},
        )


def alert_resolved(alert: Alert, now: datetime | None = None) -> Incident | None:
    """Auto-resolve: the incident resolves when every one of its alerts has resolved."""
    link = IncidentAlert.objects.select_related("incident").filter(alert=alert).first()
    if link is None or not link.incident.is_open:
        return None
    incident = link.incident
    settings = ServiceIncidentSettings.for_service(incident.service)
    if not settings.auto_resolve:
        return None
    still_firing = Alert.objects.filter(
        incident_links__incident=incident, status=AlertStatus.FIRING
    ).exists()
    if still_firing:
        return None
    from incidents.lifecycle import services

    services.resolve(incident, actor_label="auto-resolve", via="auto", now=now)
    return incident


def alert_acknowledged(
    alert: Alert, *, sender: str, now: datetime | None = None
) -> Incident | None:
    """The sender acknowledged the alert: its open incident is acknowledged, escalation stops."""
    link = IncidentAlert.objects.select_related("incident").filter(alert=alert).first()
    if link is None or not link.incident.is_open:
        return None
    from incidents.lifecycle import services

    acknowledged = services.acknowledge(
        link.incident, actor_label=sender or "sender", via="sender", now=now
    )
    return link.incident if acknowledged else None
