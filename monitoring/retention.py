"""Retention: resolved alerts do not stay in the alerts table forever.

An alert row is the current state of one (service, fingerprint); once it has been resolved for
longer than ``TOCSIN_ALERT_RETENTION_DAYS`` (default 30; 0 keeps every alert) and nothing still
needs it, ``prune_resolved_alerts`` deletes it, in batches, every hour (registered in
``monitoring.apps``). Its history stays in the event log: every ``alert.*`` event keeps the
alert's summary, labels and states in its payload, and incident timelines keep
``incident.alert_added``. If the same alert fires again later it is stored as a new row.

What "still needs it" means is declared by the apps that point at alerts, through
:func:`keep_alerts_where` (monitoring cannot import them): incidents keeps the alerts of open
incidents and of incidents resolved within the retention window, so an incident's page shows its
alerts for as long as its own alerts would be kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from monitoring.models import Alert, AlertStatus

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30
# One transaction per batch keeps locks short; a run stops after MAX_BATCHES and the next run
# (an hour later) continues, so a first run over years of alerts does not hold the worker.
BATCH_SIZE = 2000
MAX_BATCHES = 50

# cutoff → the alerts to keep although resolved before the cutoff.
Keeper = Callable[[datetime], Q]
_keepers: dict[str, Keeper] = {}


def keep_alerts_where(name: str, keeper: Keeper) -> None:
    """Declare alerts retention must keep: ``keeper(cutoff)`` is a filter on ``Alert`` (it may
    follow relations into the declaring app). Registering a name again replaces it."""
    _keepers[name] = keeper


def retention_days() -> int:
    return int(getattr(settings, "TOCSIN_ALERT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))


def prunable(cutoff: datetime) -> QuerySet[Alert]:
    """Resolved alerts whose last change is older than ``cutoff`` and that no app keeps."""
    alerts = Alert.objects.filter(status=AlertStatus.RESOLVED, last_change_at__lt=cutoff)
    for keeper in _keepers.values():
        alerts = alerts.exclude(keeper(cutoff))
    return alerts


def prune_resolved_alerts(
    now: datetime | None = None,
    *,
    days: int | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Delete the alerts :func:`prunable` returns, oldest ids first, ``batch_size`` per
    transaction; returns how many went. Rows another transaction holds (an alert firing again
    this moment) are skipped, and every condition is checked again under the row lock."""
    days = retention_days() if days is None else days
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(
                prunable(cutoff)
                .select_for_update(skip_locked=True)
                .order_by("id")
                .values_list("id", flat=True)[:batch_size]
            )
            if not ids:
                break
            # Links from incidents go with their alerts (IncidentAlert → Alert cascades).
            Alert.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            break
    if deleted:
        log.info("retention: deleted %d alerts resolved before %s", deleted, cutoff.isoformat())
    return deleted
