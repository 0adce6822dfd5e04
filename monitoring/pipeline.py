"""The one alert pipeline: fingerprint → dedup → suppression → state change → event.

Every source ends here: webhook parsers, the Events v2 endpoint, metric rules, probes and backup
runs (through ``raise_alert``/``resolve_alert``), and ``expire_alerts`` for alerts whose sender
stopped re-sending before their expected end. Re-sends of an unchanged firing alert are the
common case (Prometheus re-sends every evaluation interval) and cost two queries per batch;
new alerts are stored, recorded and grouped in bulk, in a constant number of queries per batch.
The state changes themselves are methods of ``Alert``, which also record their events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.inputs import AlertInput, fingerprint_labels
from monitoring.models import (
    Alert,
    AlertStatus,
    Integration,
    Service,
    Suppression,
)
from monitoring.models import alerts as alert_rows
from monitoring.models.alerts import Suppressor
from monitoring.suppression import (
    BatchSuppressor,
    batch_suppressor,
    find_suppression,
    reevaluate_team,
)

LAST_RECEIVED_RESOLUTION = timedelta(minutes=1)
# The actor named on resolves of alerts whose expected end passed without a re-send.
EXPIRY_ACTOR = "expected end passed (sender stopped re-sending)"

__all__ = [
    "AlertInput",
    "Outcome",
    "Result",
    "expire_alerts",
    "fingerprint_labels",
    "process",
    "raise_alert",
    "resolve_alert",
]


class Result:
    CREATED = "created"  # a new alert, firing
    REFIRED = "refired"  # a resolved alert fires again
    UPDATED = "updated"  # still firing, but what the sender says changed
    RESENT = "resent"  # an identical re-send
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    IGNORED = "ignored"  # a resolve or ack for an alert we never saw firing, or a repeat of one


@dataclass
class Outcome:
    fingerprint: str
    result: str
    alert: Alert | None = None


def process(
    service: Service,
    inputs: Iterable[AlertInput],
    *,
    source: str,
    integration: Integration | None = None,
    actor_label: str = "",
    now: datetime | None = None,
) -> list[Outcome]:
    """Apply a batch of alerts from one sender to one service; returns what happened to each.

    One transaction: the batch is stored whole or not at all. New alerts cost a constant number
    of statements whatever their number (one INSERT for the alerts, one for their events, and
    what their subscribers do in bulk); identical re-sends one UPDATE.
    """
    now = now or timezone.now()
    actor_label = actor_label or (
        f"{integration.kind}: {integration.name}" if integration else source
    )
    # Within one batch the last word about a fingerprint wins, as if sent one by one.
    latest: dict[str, AlertInput] = {}
    for item in inputs:
        latest[item.get_fingerprint()] = item
    if not latest:
        return []
    # savepoint=False: a caller's transaction (a test, a task) needs no savepoint of ours; the
    # batch still stands or falls with it.
    with transaction.atomic(savepoint=False):
        return _process(service, latest, source, integration, actor_label, now)


def _process(
    service: Service,
    latest: dict[str, AlertInput],
    source: str,
    integration: Integration | None,
    actor_label: str,
    now: datetime,
) -> list[Outcome]:
    existing = alert_rows.rows_by_fingerprint(service.pk, list(latest))
    outcomes: dict[str, Outcome] = {}
    # Identical re-sends, by the expected end they renew (usually one value per batch).
    resent: dict[datetime | None, list[int]] = defaultdict(list)
    new: list[tuple[str, AlertInput]] = []
    resolves: list[tuple[str, AlertInput]] = []
    for fp, item in latest.items():
        row = existing.get(fp)
        if row is None and item.status == AlertStatus.FIRING and not item.acknowledge:
            new.append((fp, item))
            continue
        if (
            row is not None
            and row["status"] == AlertStatus.FIRING
            and item.status == AlertStatus.RESOLVED
            and not item.acknowledge
            and not item.expired
        ):
            resolves.append((fp, item))
            continue
        if (
            row is not None
            and row["status"] == AlertStatus.FIRING
            and item.status == AlertStatus.FIRING
            and not item.acknowledge
            and row["content_hash"] == item.content_hash()
        ):
            resent[item.expected_end_at].append(row["id"])
            outcomes[fp] = Outcome(fp, Result.RESENT)
            continue
        outcomes[fp] = _apply(
            service, fp, item, source, integration, actor_label, now, exists=row is not None
        )
    suppress = batch_suppressor(service.team_id, now)
    for outcome in _fire_new(service, new, source, integration, actor_label, now, suppress):
        outcomes[outcome.fingerprint] = outcome
    for outcome in _resolve_firing(service, resolves, actor_label, now):
        outcomes[outcome.fingerprint] = outcome
    for expected_end_at, ids in resent.items():
        # The hot path: one UPDATE for the identical re-sends of a batch, no event.
        alert_rows.renew(ids, now, expected_end_at)
    if integration is not None and (
        integration.last_received_at is None
        or now - integration.last_received_at > LAST_RECEIVED_RESOLUTION
    ):
        # Minute resolution is enough for "last received"; a write per request is not free.
        Integration.objects.filter(pk=integration.pk).update(last_received_at=now)
        integration.last_received_at = now
    ordered = [outcomes[fp] for fp in latest]
    if any(o.result in _CHANGES_INHIBITION for o in ordered) and suppress.has_inhibition_rules():
        # A source alert that starts or stops firing mutes or frees its targets now, not at
        # the next periodic pass.
        reevaluate_team(service.team_id, now)
    return ordered


def _fire_new(
    service: Service,
    new: list[tuple[str, AlertInput]],
    source: str,
    integration: Integration | None,
    actor_label: str,
    now: datetime,
    suppress: BatchSuppressor,
) -> list[Outcome]:
    """Store the batch's new alerts with one INSERT and their ``alert.firing`` events with
    another; their subscribers (incidents) then take them as one batch too."""
    if not new:
        return []
    alerts = []
    for fp, item in new:
        alert = Alert.new_instance(service, integration, source, fp, now)
        alert.prepare_fire(item, now, suppress=suppress)
        alerts.append(alert)
    stored = {alert.fingerprint for alert in Alert.store_fired(alerts, actor_label=actor_label)}
    # An alert another process stored a moment ago becomes an update of that one.
    return [
        Outcome(alert.fingerprint, Result.CREATED, alert)
        if alert.fingerprint in stored
        else _apply(service, fp, item, source, integration, actor_label, now, exists=True)
        for alert, (fp, item) in zip(alerts, new, strict=True)
    ]


_CHANGES_INHIBITION = frozenset({Result.CREATED, Result.REFIRED, Result.RESOLVED})


def _resolve_firing(
    service: Service, resolves: list[tuple[str, AlertInput]], actor_label: str, now: datetime
) -> list[Outcome]:
    """Resolve the batch's firing alerts together (a data centre coming back): one locking
    read, one UPDATE, one INSERT of events; their incidents then resolve as one batch too."""
    if not resolves:
        return []
    locked = {
        alert.fingerprint: alert
        for alert in Alert.objects.select_for_update()
        .filter(service=service, fingerprint__in=[fp for fp, _item in resolves])
        .select_related("service")
    }
    outcomes, changed, events = [], [], []
    for fp, item in resolves:
        alert = locked.get(fp)
        done = (
            alert.prepare_resolve(now, actor_label=actor_label, ends_at=item.ends_at)
            if alert
            else []
        )
        if done:
            changed.append(alert)
            events.extend(done)
        outcomes.append(Outcome(fp, Result.RESOLVED if done else Result.IGNORED, alert))
    if changed:
        Alert.store_resolved(changed, events)
    return outcomes


def _apply(
    service: Service,
    fp: str,
    item: AlertInput,
    source: str,
    integration: Integration | None,
    actor_label: str,
    now: datetime,
    *,
    exists: bool,
) -> Outcome:
    if not exists and item.status == AlertStatus.FIRING and not item.acknowledge:
        alert = Alert(
            team_id=service.team_id,
            service=service,
            integration=integration,
            source=source,
            fingerprint=fp,
        )
        try:
            with transaction.atomic():
                alert.fire(item, now, actor_label=actor_label, suppress=_suppressor(now))
            return Outcome(fp, Result.CREATED, alert)
        except IntegrityError:
            pass  # another process created it a moment ago: update theirs instead
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(service=service, fingerprint=fp)
            .select_related("service")
            .first()
        )
        if alert is None:
            return Outcome(fp, Result.IGNORED)
        return _transition(alert, item, integration, actor_label, now)


def _suppressor(now: datetime) -> Suppressor:
    """What mutes an alert at ``now``: silences, inhibitions and maintenance."""

    def suppress(alert: Alert) -> tuple[str, dict[str, Any]]:
        found = find_suppression(alert, now)
        return (found.kind, found.as_dict()) if found else (Suppression.NONE, {})

    return suppress


def _transition(
    alert: Alert,
    item: AlertInput,
    integration: Integration | None,
    actor_label: str,
    now: datetime,
) -> Outcome:
    fp = alert.fingerprint
    if item.acknowledge:
        done = alert.acknowledge(now, actor_label=actor_label)
        return Outcome(fp, Result.ACKNOWLEDGED if done else Result.IGNORED, alert)

    if item.status == AlertStatus.RESOLVED:
        if item.expired and (alert.expected_end_at is None or alert.expected_end_at > now):
            return Outcome(fp, Result.IGNORED, alert)  # re-sent since: it fires on
        done = alert.resolve(now, actor_label=actor_label, ends_at=item.ends_at)
        return Outcome(fp, Result.RESOLVED if done else Result.IGNORED, alert)

    if not alert.is_firing:
        alert.refire(
            item,
            now,
            actor_label=actor_label,
            integration=integration,
            suppress=_suppressor(now),
        )
        return Outcome(fp, Result.REFIRED, alert)

    if alert.content_hash == item.content_hash():
        # An identical send that lost the race to create the alert: a re-send, no event.
        alert.resend(now, item.expected_end_at)
        return Outcome(fp, Result.RESENT, alert)

    alert.update(item, now, actor_label=actor_label)
    return Outcome(fp, Result.UPDATED, alert)


# --- For sources inside Tocsin: rules, probes, backups ---------------------------------------


def raise_alert(service: Service, item: AlertInput, *, source: str) -> Outcome:
    return process(service, [item], source=source)[0]


def resolve_alert(service: Service, fingerprint: str, *, source: str) -> Outcome:
    item = AlertInput(labels={}, status=AlertStatus.RESOLVED, fingerprint=fingerprint)
    return process(service, [item], source=source)[0]


# --- Expected ends -----------------------------------------------------------------------------


def expire_alerts(now: datetime | None = None) -> int:
    """The periodic task: resolve firing alerts whose sender's expected end (``endsAt``) has
    passed without a re-send, as Alertmanager does; returns how many resolved.

    Resolved at their expected end, through ``process`` (events, inhibition, incidents follow);
    an alert re-sent in the meantime is left firing (the locked re-check in ``_transition``).
    """
    now = now or timezone.now()
    due = (
        Alert.objects.filter(status=AlertStatus.FIRING, expected_end_at__lte=now)
        .select_related("service", "integration")
        .order_by("service_id", "id")
    )
    by_service: dict[int, list[Alert]] = defaultdict(list)
    for alert in due:
        by_service[alert.service_id].append(alert)
    resolved = 0
    for alerts in by_service.values():
        items = [
            AlertInput(
                labels={},
                status=AlertStatus.RESOLVED,
                fingerprint=alert.fingerprint,
                ends_at=alert.expected_end_at,
                expired=True,
            )
            for alert in alerts
        ]
        outcomes = process(
            alerts[0].service, items, source="expiry", actor_label=EXPIRY_ACTOR, now=now
        )
        resolved += sum(1 for o in outcomes if o.result == Result.RESOLVED)
    return resolved
