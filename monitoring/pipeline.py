"""The one alert pipeline: fingerprint → dedup → suppression → state change → event.

Every source ends here: webhook parsers, the Events v2 endpoint, metric rules, probes and backup
runs (through ``raise_alert``/``resolve_alert``). Re-sends of an unchanged firing alert are the
common case (Prometheus re-sends every evaluation interval) and cost two queries per batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from monitoring.models import (
    Alert,
    AlertStatus,
    InhibitionRule,
    Integration,
    Service,
    Severity,
    Suppression,
)
from monitoring.suppression import find_suppression, reevaluate_team
from tocsin.events import record

# An alert that changed status this many times within FLAP_WINDOW is flapping.
FLAP_THRESHOLD = 4
FLAP_WINDOW = timedelta(minutes=10)
LAST_RECEIVED_RESOLUTION = timedelta(minutes=1)


class Result:
    CREATED = "created"  # a new alert, firing
    REFIRED = "refired"  # a resolved alert fires again
    UPDATED = "updated"  # still firing, but what the sender says changed
    RESENT = "resent"  # an identical re-send
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    IGNORED = "ignored"  # a resolve or ack for an alert we never saw firing, or a repeat of one


@dataclass
class AlertInput:
    """An alert as every sender's parser hands it over, normalised."""

    labels: dict[str, str]
    status: str = AlertStatus.FIRING
    severity: str = Severity.ERROR
    summary: str = ""
    description: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    fingerprint: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""
    # Events v2 "acknowledge": the sender says a person is on it.
    acknowledge: bool = False

    def get_fingerprint(self) -> str:
        return self.fingerprint or fingerprint_labels(self.labels)

    def get_summary(self) -> str:
        return (
            self.summary
            or self.annotations.get("summary")
            or self.labels.get("alertname")
            or ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
            or "alert"
        )[:500]

    def content_hash(self) -> str:
        body = json.dumps(
            [
                self.status,
                self.severity,
                self.get_summary(),
                self.description,
                self.labels,
                self.annotations,
                self.details,
                self.links,
                self.generator_url,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


def fingerprint_labels(labels: dict[str, str]) -> str:
    """Alertmanager-style: a digest over the sorted label pairs, independent of their order."""
    digest = hashlib.sha256()
    for name, value in sorted(labels.items()):
        digest.update(name.encode())
        digest.update(b"\xff")
        digest.update(str(value).encode())
        digest.update(b"\xff")
    return digest.hexdigest()[:16]


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
    """Apply a batch of alerts from one sender to one service; returns what happened to each."""
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

    existing = {
        row["fingerprint"]: row
        for row in Alert.objects.filter(service=service, fingerprint__in=list(latest)).values(
            "id", "fingerprint", "status", "content_hash"
        )
    }
    outcomes: list[Outcome] = []
    resent_ids: list[int] = []
    for fp, item in latest.items():
        row = existing.get(fp)
        if (
            row is not None
            and row["status"] == AlertStatus.FIRING
            and item.status == AlertStatus.FIRING
            and not item.acknowledge
            and row["content_hash"] == item.content_hash()
        ):
            resent_ids.append(row["id"])
            outcomes.append(Outcome(fp, Result.RESENT))
            continue
        outcomes.append(
            _apply(service, fp, item, source, integration, actor_label, now, exists=row is not None)
        )
    if resent_ids:
        # The hot path: one UPDATE for every identical re-send in the batch, no event.
        Alert.objects.filter(pk__in=resent_ids).update(
            last_seen_at=now, occurrences=F("occurrences") + 1
        )
    if integration is not None and (
        integration.last_received_at is None
        or now - integration.last_received_at > LAST_RECEIVED_RESOLUTION
    ):
        # Minute resolution is enough for "last received"; a write per request is not free.
        Integration.objects.filter(pk=integration.pk).update(last_received_at=now)
        integration.last_received_at = now
    if any(o.result in _CHANGES_INHIBITION for o in outcomes) and _team_has_inhibition(service):
        # A source alert that starts or stops firing mutes or frees its targets now, not at
        # the next periodic pass.
        reevaluate_team(service.team_id, now)
    return outcomes


_CHANGES_INHIBITION = frozenset({Result.CREATED, Result.REFIRED, Result.RESOLVED})


def _team_has_inhibition(service: Service) -> bool:
    return InhibitionRule.objects.filter(team_id=service.team_id, enabled=True).exists()


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
        try:
            with transaction.atomic():
                alert = _create(service, fp, item, source, integration, now)
                _record(alert, "alert.firing", actor_label, item)
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


def _create(
    service: Service,
    fp: str,
    item: AlertInput,
    source: str,
    integration: Integration | None,
    now: datetime,
) -> Alert:
    alert = Alert(
        team_id=service.team_id,
        service=service,
        integration=integration,
        source=source,
        fingerprint=fp,
        status=AlertStatus.FIRING,
        starts_at=item.starts_at or now,
        first_seen_at=now,
        last_seen_at=now,
        last_change_at=now,
        recent_changes=[now.isoformat()],
    )
    _copy_content(alert, item)
    _apply_suppression(alert, now)
    alert.save()
    return alert


def _copy_content(alert: Alert, item: AlertInput) -> None:
    alert.severity = item.severity
    alert.summary = item.get_summary()
    alert.description = item.description
    alert.labels = item.labels
    alert.annotations = item.annotations
    alert.details = item.details
    alert.links = item.links
    alert.generator_url = item.generator_url[:1000]
    alert.content_hash = item.content_hash()


def _apply_suppression(alert: Alert, now: datetime) -> bool:
    """Set the alert's suppression from silences, inhibitions and maintenance; True if changed."""
    found = find_suppression(alert, now)
    kind, by = (found.kind, found.as_dict()) if found else (Suppression.NONE, {})
    changed = (alert.suppression, alert.suppressed_by) != (kind, by)
    alert.suppression, alert.suppressed_by = kind, by
    return changed


def _transition(
    alert: Alert,
    item: AlertInput,
    integration: Integration | None,
    actor_label: str,
    now: datetime,
) -> Outcome:
    fp = alert.fingerprint
    if item.acknowledge:
        if alert.acknowledged_at is not None or not alert.is_firing:
            return Outcome(fp, Result.IGNORED, alert)
        alert.acknowledged_at = now
        alert.last_seen_at = now
        alert.save(update_fields=["acknowledged_at", "last_seen_at"])
        _record(alert, "alert.acknowledged", actor_label, item)
        return Outcome(fp, Result.ACKNOWLEDGED, alert)

    if item.status == AlertStatus.RESOLVED:
        if not alert.is_firing:
            return Outcome(fp, Result.IGNORED, alert)
        alert.status = AlertStatus.RESOLVED
        alert.ends_at = item.ends_at or now
        alert.last_seen_at = alert.last_change_at = now
        started_flapping = _note_change(alert, now)
        alert.save()
        _record(alert, "alert.resolved", actor_label, item)
        if started_flapping:
            _record(alert, "alert.flapping", actor_label, item)
        return Outcome(fp, Result.RESOLVED, alert)

    if not alert.is_firing:
        alert.status = AlertStatus.FIRING
        alert.starts_at = item.starts_at or now
        alert.ends_at = None
        alert.acknowledged_at = None
        alert.fired_count += 1
        alert.occurrences += 1
        alert.last_seen_at = alert.last_change_at = now
        if integration is not None:
            alert.integration = integration
        _copy_content(alert, item)
        _apply_suppression(alert, now)
        started_flapping = _note_change(alert, now)
        alert.save()
        _record(alert, "alert.refired", actor_label, item)
        if started_flapping:
            _record(alert, "alert.flapping", actor_label, item)
        return Outcome(fp, Result.REFIRED, alert)

    if alert.content_hash == item.content_hash():
        # An identical send that lost the race to create the alert: a re-send, no event.
        alert.occurrences += 1
        alert.last_seen_at = now
        alert.save(update_fields=["occurrences", "last_seen_at"])
        return Outcome(fp, Result.RESENT, alert)

    # Still firing, but the sender's words changed (severity, annotations, …).
    before = {"severity": alert.severity, "summary": alert.summary}
    alert.occurrences += 1
    alert.last_seen_at = now
    _copy_content(alert, item)
    alert.save()
    _record(alert, "alert.updated", actor_label, item, extra={"before": before})
    return Outcome(fp, Result.UPDATED, alert)


def _note_change(alert: Alert, now: datetime) -> bool:
    """Keep recent status changes and derive flapping; True when flapping starts now."""
    horizon = now - FLAP_WINDOW
    recent = [t for t in alert.recent_changes if datetime.fromisoformat(t) >= horizon]
    recent.append(now.isoformat())
    alert.recent_changes = recent[-(FLAP_THRESHOLD * 2) :]
    was_flapping = alert.is_flapping
    alert.is_flapping = len(recent) >= FLAP_THRESHOLD
    return alert.is_flapping and not was_flapping


def _record(
    alert: Alert,
    kind: str,
    actor_label: str,
    item: AlertInput | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    payload = {
        "alert_id": alert.pk,
        "service_id": alert.service_id,
        "service": alert.service.name,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "severity": alert.severity,
        "summary": alert.summary,
        "labels": alert.labels,
        "suppression": alert.suppression,
        "suppressed_by": alert.suppressed_by,
        "flapping": alert.is_flapping,
    }
    payload.update(extra or {})
    record(
        kind,
        team=alert.team_id,
        subject=alert,
        subject_label=alert.summary[:200],
        actor_label=actor_label,
        payload=payload,
    )


# --- For sources inside Tocsin: rules, probes, backups ---------------------------------------


def raise_alert(service: Service, item: AlertInput, *, source: str) -> Outcome:
    return process(service, [item], source=source)[0]


def resolve_alert(service: Service, fingerprint: str, *, source: str) -> Outcome:
    item = AlertInput(labels={}, status=AlertStatus.RESOLVED, fingerprint=fingerprint)
    return process(service, [item], source=source)[0]
