"""How incidents hear about alerts: the alert pipeline's events, in the pipeline's transaction.

Nothing in ``monitoring`` imports ``incidents``; the pipeline records an Event and this receiver
turns it into incident changes before the transaction commits.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from tocsin.models import Event

FIRING_KINDS = frozenset({"alert.firing", "alert.refired", "alert.unsuppressed"})
HANDLED_KINDS = FIRING_KINDS | {"alert.resolved", "alert.suppressed"}


@receiver(post_save, sender=Event, dispatch_uid="incidents.alert_events")
def on_alert_event(sender: Any, instance: Event, created: bool, **kwargs: Any) -> None:
    if not created or instance.kind not in HANDLED_KINDS:
        return
    alert_id = (instance.payload or {}).get("alert_id")
    if alert_id is None:
        return
    from incidents import grouping
    from monitoring.models import Alert

    alert = Alert.objects.select_related("service").filter(pk=alert_id).first()
    if alert is None:
        return
    # The pipeline's clock (it may be given one) is on the alert's last change.
    now = instance.created_at if instance.kind == "alert.unsuppressed" else alert.last_change_at
    if instance.kind in FIRING_KINDS:
        grouping.alert_fired(alert, now=now)
    elif instance.kind == "alert.resolved":
        grouping.alert_resolved(alert, now=now)
    # alert.suppressed: an alert already in an incident stays there; a suppressed alert never
    # opens one (alert_fired refuses suppressed alerts).
