"""How incidents hear about alerts: the pipeline's alert events, in the pipeline's transaction.

Nothing in ``monitoring`` imports ``incidents``. The pipeline records ``alert.*`` events; these
handlers are subscribed to them in ``incidents.apps`` (``on_event``) and receive the Alert the
pipeline has in hand, so an alert opening an incident costs no re-read.
"""

from __future__ import annotations

from monitoring.models import Alert
from tocsin.events import on_event, on_events
from tocsin.models import Event

FIRING_KINDS = ("alert.firing", "alert.refired", "alert.unsuppressed")


def alerts_fired(pairs: list[tuple[Event, Alert]]) -> None:
    """A batch subscriber: the pipeline records a batch's ``alert.firing`` events together, and
    their alerts are grouped together (``grouping.alerts_fired``), in a constant number of
    queries."""
    from incidents.lifecycle import grouping

    alerts = [alert for _event, alert in pairs if isinstance(alert, Alert)]
    if not alerts:  # written without the alerts (imports, tests): nothing to group
        return
    # The pipeline's clock (it may be given one) is on the alerts' last change; lifting a
    # suppression happens at the event's own time.
    first = pairs[0][0]
    now = first.created_at if first.kind == "alert.unsuppressed" else alerts[0].last_change_at
    new = all(event.kind == "alert.firing" for event, _alert in pairs)
    grouping.alerts_fired(alerts, now=now, new=new)


def alerts_resolved(pairs: list[tuple[Event, Alert]]) -> None:
    """A batch subscriber: a batch's resolved alerts auto-resolve their incidents together."""
    alerts = [alert for _event, alert in pairs if isinstance(alert, Alert)]
    if not alerts:  # written without the alerts (imports, tests): nothing to resolve
        return
    from incidents.lifecycle import grouping

    grouping.alerts_resolved(alerts, now=alerts[0].last_change_at)


def alert_acknowledged(event: Event, alert: Alert) -> None:
    """The sender acknowledged (Events v2 ``acknowledge``): as in PagerDuty, the incident is
    acknowledged and its escalation stops; the timeline names the sender."""
    if not isinstance(alert, Alert):
        return
    from incidents.lifecycle import grouping

    grouping.alert_acknowledged(alert, sender=event.actor_label, now=alert.acknowledged_at)


def subscribe() -> None:
    """Called once from ``IncidentsConfig.ready``. A suppressed alert never opens an incident
    (``alert_fired`` refuses it) and one already in an incident stays there, so
    ``alert.suppressed`` needs no handler."""
    on_events(FIRING_KINDS, alerts_fired)
    on_events("alert.resolved", alerts_resolved)
    on_event("alert.acknowledged", alert_acknowledged)
