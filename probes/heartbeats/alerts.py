"""A heartbeat's problems as alerts: the one place that talks to the monitoring pipeline.

Each problem has its own fingerprint (``heartbeat:<id>:<problem>``), so a renamed heartbeat keeps
its alerts and a run that is both late and failing shows as two alerts that resolve separately.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction

from monitoring.models.choices import Severity
from monitoring.pipeline import AlertInput, raise_alert, resolve_alert
from probes.heartbeats.models import Heartbeat, Problem

log = logging.getLogger(__name__)

SOURCE = "heartbeat"


def fingerprint(heartbeat: Heartbeat, problem: str) -> str:
    return f"heartbeat:{heartbeat.pk}:{problem}"


def alert_input(heartbeat: Heartbeat, problem: str) -> AlertInput:
    labels = {
        "alertname": Problem(problem).label,
        "heartbeat": heartbeat.slug,
        "service": heartbeat.service.slug,
    }
    link = f"{settings.TOCSIN_BASE_URL}/admin/probes/heartbeat/{heartbeat.pk}/change/"
    return AlertInput(
        labels=labels,
        severity=Severity.ERROR,
        summary=heartbeat.problems.get(problem, "")[:500],
        details={
            "heartbeat": heartbeat.name,
            "uuid": str(heartbeat.uuid),
            "schedule": heartbeat.schedule_text(),
            "grace_seconds": heartbeat.grace,
            "last_ping_at": heartbeat.last_ping_at.isoformat() if heartbeat.last_ping_at else None,
            "expected_at": heartbeat.expected_at.isoformat() if heartbeat.expected_at else None,
            "last_exit_status": heartbeat.last_exit_status,
            "last_duration_seconds": heartbeat.last_duration,
        },
        links=[{"href": link, "text": "Heartbeat"}],
        fingerprint=fingerprint(heartbeat, problem),
    )


def sync(heartbeat: Heartbeat, now: datetime) -> bool:
    """Raise the problems the pipeline has not been told of, resolve those gone; updates
    ``heartbeat.alerted`` (the caller saves). Returns whether anything was sent.

    In a savepoint: if the pipeline refuses, the ping or evaluation around it still stands, the
    difference stays in the row and ``next_due_at`` brings the loop back to try again.
    """
    to_raise, to_resolve = heartbeat.unsynced(now)
    if not (to_raise or to_resolve):
        return False
    alerted = [p for p in heartbeat.alerted if p not in to_resolve]
    try:
        with transaction.atomic():
            for problem in to_resolve:
                resolve_alert(heartbeat.service, fingerprint(heartbeat, problem), source=SOURCE)
            for problem in to_raise:
                raise_alert(heartbeat.service, alert_input(heartbeat, problem), source=SOURCE)
    except Exception:
        log.exception("heartbeat %s: alerts not synced; the evaluation loop retries", heartbeat.pk)
        return False
    heartbeat.alerted = alerted + to_raise
    return True
