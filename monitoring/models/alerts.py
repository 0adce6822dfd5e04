"""Alerts: one row per (service, fingerprint), updated in place as the sender re-sends it.

The state transitions are methods of ``Alert`` (``fire``, ``refire``, ``update``, ``resend``,
``resolve``, ``acknowledge``, ``change_suppression``), called by the pipeline and by suppression
re-evaluation alike. Each one changes the row and records its event with ``record_event``, the
one place an alert event's payload is built; the event's ``subject`` is this instance, with its
``service`` loaded, so subscribers (incidents) read nothing again. ``now`` is the caller's clock
(the pipeline's), and ``last_change_at`` is set from it on every change of state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db import connection, models
from django.utils import timezone

from monitoring.models.catalog import Integration, Service
from monitoring.models.choices import AlertStatus, Severity, Suppression
from tocsin.db import bulk
from tocsin.events import NewEvent, record_many
from tocsin.models import Event, Team

__all__ = ["Alert", "AlertStatus", "Severity", "Suppression"]

# An alert that changed status this many times within FLAP_WINDOW is flapping.
FLAP_THRESHOLD = 4
FLAP_WINDOW = timedelta(minutes=10)


class Content(Protocol):
    """What a sender says about an alert (``monitoring.pipeline.AlertInput``)."""

    severity: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    details: dict[str, Any]
    links: list[dict[str, str]]
    generator_url: str
    starts_at: datetime | None
    expected_end_at: datetime | None

    def get_summary(self) -> str: ...

    def content_hash(self) -> str: ...


# What mutes an alert, from its current content: (Suppression value, {"kind", "id", "label"}).
Suppressor = Callable[["Alert"], tuple[str, dict[str, Any]]]


class Alert(models.Model):
    # No index of their own: alert_team_status and the (service, fingerprint) constraint begin
    # with these columns, and every index is one more write for each new alert.
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="alerts", db_index=False)
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="alerts", db_index=False
    )
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    source = models.CharField(max_length=20)
    # From the sender (Alertmanager fingerprint, Events v2 dedup_key) or from the sorted labels.
    fingerprint = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    summary = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    links = models.JSONField(default=list, blank=True)
    generator_url = models.URLField(max_length=1000, blank=True)
    # A digest of what the sender said; an identical re-send only bumps last_seen/occurrences.
    content_hash = models.CharField(max_length=64)

    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    # When a firing alert resolves unless re-sent: the sender's future endsAt (Prometheus renews
    # it on every send). ``expire_alerts`` resolves firing alerts whose expected end has passed.
    expected_end_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_change_at = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1)
    fired_count = models.PositiveIntegerField(default=1)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    # Recent status changes (ISO times, newest last), for flap detection.
    recent_changes = models.JSONField(default=list, blank=True)
    is_flapping = models.BooleanField(default=False)

    suppression = models.CharField(
        max_length=12, choices=Suppression.choices, default=Suppression.NONE, blank=True
    )
    # What suppresses it: {"kind": "silence", "id": 3, "label": "…"}.
    suppressed_by = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-last_change_at"]
        constraints = [
            # Dedup is this constraint: concurrent first sends of one alert cannot both insert.
            models.UniqueConstraint(
                fields=["service", "fingerprint"], name="alert_unique_service_fingerprint"
            ),
        ]
        indexes = [
            # Alerts page: "firing alerts of these teams, newest change first".
            models.Index(fields=["team", "status", "-last_change_at"], name="alert_team_status"),
            models.Index(fields=["service", "status"], name="alert_service_status"),
            # expire_alerts: "firing alerts whose expected end has passed".
            models.Index(
                fields=["expected_end_at"],
                name="alert_expected_end",
                condition=models.Q(status="firing", expected_end_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def is_firing(self) -> bool:
        return self.status == AlertStatus.FIRING

    @property
    def is_suppressed(self) -> bool:
        return bool(self.suppression)

    # --- The one event builder ------------------------------------------------------------------

    def event_payload(self, **extra: Any) -> dict[str, Any]:
        """The payload every alert event carries (``tocsin.events.kinds.ALERT_PAYLOAD``)."""
        return {
            "alert_id": self.pk,
            "service_id": self.service_id,
            "service": self.service.name,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "labels": self.labels,
            "suppression": self.suppression,
            "suppressed_by": self.suppressed_by,
            "flapping": self.is_flapping,
            **extra,
        }

    def new_event(
        self, kind: str, *, actor: Any = None, actor_label: str = "", **extra: Any
    ) -> NewEvent:
        """The event ``kind`` about this alert, for ``record_many`` (a batch of alerts)."""
        return NewEvent(
            kind,
            self.team_id,
            subject=self,
            subject_label=self.summary[:200],
            actor=actor,
            actor_label=actor_label,
            payload=self.event_payload(**extra),
        )

    def record_event(
        self, kind: str, *, actor: Any = None, actor_label: str = "", **extra: Any
    ) -> Event:
        return record_many([self.new_event(kind, actor=actor, actor_label=actor_label, **extra)])[0]

    # --- Transitions (call inside transaction.atomic(); each records its event) -----------------

    def take_content(self, item: Content) -> None:
        self.severity = item.severity
        self.summary = item.get_summary()
        self.description = item.description
        self.labels = item.labels
        self.annotations = item.annotations
        self.details = item.details
        self.links = item.links
        self.generator_url = item.generator_url[:1000]
        self.content_hash = item.content_hash()
        self.expected_end_at = item.expected_end_at

    def set_suppression(self, kind: str, by: dict[str, Any]) -> bool:
        """Set what mutes the alert (in memory); True if that changed."""
        changed = (self.suppression, self.suppressed_by) != (kind, by)
        self.suppression, self.suppressed_by = kind, by
        return changed

    @classmethod
    def new_instance(
        cls,
        service: Service,
        integration: Integration | None,
        source: str,
        fingerprint: str,
        now: datetime,
    ) -> Alert:
        """A new, unsaved alert of ``service`` (related objects cached, as the keyword
        constructor would), built the cheap way (``bulk.instance``): a batch builds thousands."""
        alert = bulk.instance(
            cls,
            {
                "team_id": service.team_id,
                "service_id": service.pk,
                "integration_id": integration.pk if integration is not None else None,
                "source": source,
                "fingerprint": fingerprint,
                "first_seen_at": now,
                "last_seen_at": now,
                "last_change_at": now,
            },
        )
        cls.service.field.set_cached_value(alert, service)
        if integration is not None:
            cls.integration.field.set_cached_value(alert, integration)
        return alert

    def prepare_fire(self, item: Content, now: datetime, *, suppress: Suppressor) -> None:
        """A new firing alert, in memory: the pipeline stores a batch of them with one INSERT
        and records their ``alert.firing`` events with one more."""
        self.status = AlertStatus.FIRING
        self.starts_at = item.starts_at or now
        self.first_seen_at = self.last_seen_at = self.last_change_at = now
        self.recent_changes = [now.isoformat()]
        self.take_content(item)
        self.set_suppression(*suppress(self))

    @classmethod
    def store_fired(cls, alerts: list[Alert], *, actor_label: str) -> list[Alert]:
        """Store new alerts made ready by ``prepare_fire`` with one INSERT, record their
        ``alert.firing`` events with one more, and return those stored: an alert another process
        stored a moment ago (same service and fingerprint) is left out, for the caller to apply
        as an update of that one."""
        stored = bulk.insert(alerts, skip_conflicts=("service_id", "fingerprint"))
        record_many([alert.new_event("alert.firing", actor_label=actor_label) for alert in stored])
        return stored

    def fire(self, item: Content, now: datetime, *, actor_label: str, suppress: Suppressor) -> None:
        """Store a new firing alert and record ``alert.firing``. ``suppress`` says what mutes
        it, from its content. Raises IntegrityError when another process stored the same alert
        a moment ago."""
        self.prepare_fire(item, now, suppress=suppress)
        self.save()
        self.record_event("alert.firing", actor_label=actor_label)

    def refire(
        self,
        item: Content,
        now: datetime,
        *,
        actor_label: str,
        suppress: Suppressor,
        integration: Integration | None = None,
    ) -> None:
        """A resolved alert fires again: a new episode (acknowledgement cleared)."""
        self.status = AlertStatus.FIRING
        self.starts_at = item.starts_at or now
        self.ends_at = None
        self.acknowledged_at = None
        self.fired_count += 1
        self.occurrences += 1
        self.last_seen_at = self.last_change_at = now
        if integration is not None:
            self.integration = integration
        self.take_content(item)
        self.set_suppression(*suppress(self))
        started_flapping = self._note_change(now)
        self.save()
        self.record_event("alert.refired", actor_label=actor_label)
        if started_flapping:
            self.record_event("alert.flapping", actor_label=actor_label)

    def update(self, item: Content, now: datetime, *, actor_label: str) -> None:
        """Still firing, but the sender's words changed (severity, annotations, …)."""
        before = {"severity": self.severity, "summary": self.summary}
        self.occurrences += 1
        self.last_seen_at = now
        self.take_content(item)
        self.save()
        self.record_event("alert.updated", actor_label=actor_label, before=before)

    def resend(self, now: datetime, expected_end_at: datetime | None) -> None:
        """An identical re-send: no event (the batch path does this for many alerts at once)."""
        self.occurrences += 1
        self.last_seen_at = now
        self.expected_end_at = expected_end_at
        self.save(update_fields=["occurrences", "last_seen_at", "expected_end_at"])

    # What resolving changes: a batch of resolves writes these columns with one UPDATE.
    RESOLVE_FIELDS = (
        "status",
        "ends_at",
        "expected_end_at",
        "last_seen_at",
        "last_change_at",
        "recent_changes",
        "is_flapping",
    )

    def prepare_resolve(
        self, now: datetime, *, actor_label: str, ends_at: datetime | None = None
    ) -> list[NewEvent]:
        """Resolve a firing alert in memory; returns its events to record (none when it is not
        firing). The caller saves ``RESOLVE_FIELDS`` and records the events."""
        if not self.is_firing:
            return []
        self.status = AlertStatus.RESOLVED
        self.ends_at = ends_at or now
        self.expected_end_at = None
        self.last_seen_at = self.last_change_at = now
        started_flapping = self._note_change(now)
        events = [self.new_event("alert.resolved", actor_label=actor_label)]
        if started_flapping:
            events.append(self.new_event("alert.flapping", actor_label=actor_label))
        return events

    @classmethod
    def store_resolved(cls, alerts: list[Alert], events: list[NewEvent]) -> None:
        """Write a batch resolved by ``prepare_resolve`` (one UPDATE) and record its events
        (one INSERT); subscribers hear of them as one batch."""
        cls.objects.bulk_update(alerts, cls.RESOLVE_FIELDS)
        record_many(events)

    def resolve(self, now: datetime, *, actor_label: str, ends_at: datetime | None = None) -> bool:
        """Resolve a firing alert; False (nothing done) when it is not firing."""
        events = self.prepare_resolve(now, actor_label=actor_label, ends_at=ends_at)
        if not events:
            return False
        self.save()
        record_many(events)
        return True

    def acknowledge(self, now: datetime, *, actor_label: str, actor: Any = None) -> bool:
        """The sender says someone is on it; False when already acknowledged or not firing."""
        if self.acknowledged_at is not None or not self.is_firing:
            return False
        self.acknowledged_at = now
        self.last_seen_at = self.last_change_at = now
        self.save(update_fields=["acknowledged_at", "last_seen_at", "last_change_at"])
        self.record_event("alert.acknowledged", actor=actor, actor_label=actor_label)
        return True

    def change_suppression(
        self,
        kind: str,
        by: dict[str, Any],
        now: datetime,
        *,
        actor: Any = None,
        actor_label: str = "",
    ) -> bool:
        """Mute or unmute a firing alert that is not locked (re-evaluation); records
        ``alert.suppressed``/``alert.unsuppressed``. The write is conditional: False when a
        resolve, a re-fire or another pass changed the alert meanwhile."""
        if (self.suppression, self.suppressed_by) == (kind, by):
            return False
        updated = Alert.objects.filter(
            pk=self.pk, status=AlertStatus.FIRING, suppression=self.suppression
        ).update(suppression=kind, suppressed_by=by, last_change_at=now)
        if not updated:
            return False
        previous = {"suppression": self.suppression, "suppressed_by": self.suppressed_by}
        self.set_suppression(kind, by)
        self.last_change_at = now
        self.record_event(
            "alert.suppressed" if kind else "alert.unsuppressed",
            actor=actor,
            actor_label=actor_label,
            previous=previous,
        )
        return True

    def _note_change(self, now: datetime) -> bool:
        """Keep recent status changes and derive flapping; True when flapping starts now."""
        horizon = now - FLAP_WINDOW
        recent = [t for t in self.recent_changes if datetime.fromisoformat(t) >= horizon]
        recent.append(now.isoformat())
        self.recent_changes = recent[-(FLAP_THRESHOLD * 2) :]
        was_flapping = self.is_flapping
        self.is_flapping = len(recent) >= FLAP_THRESHOLD
        return self.is_flapping and not was_flapping


# -- The re-send hot path, in plain SQL ----------------------------------------------------------
# A storm's re-sends are lists of hundreds of fingerprints or ids; Django's ``__in`` lookup
# prepares every value through the field (a fifth of a re-send batch's CPU, profiled), where the
# database driver takes the plain strings and numbers as they are.
_CHUNK = 1000  # values per statement, well under SQLite's 32,766 variables


def _run_in_chunks(sql: str, params: list[Any], values: list[Any]) -> list[tuple]:
    """``sql`` (ending in ``IN ({})``) with ``params`` then each chunk of ``values``; the rows.
    On PostgreSQL the values go as one array, ``= ANY(%s)`` (psycopg parses a query with a
    thousand placeholders again on every call: an eighth of a re-send batch, profiled)."""
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = sql.replace(" IN ({})", " = ANY(%s)")
            cursor.execute(sql, [*params, list(values)])
            return cursor.fetchall() if cursor.description else []
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            cursor.execute(sql.format(", ".join(["%s"] * len(chunk))), [*params, *chunk])
            if cursor.description:
                rows.extend(cursor.fetchall())
    return rows


def rows_by_fingerprint(service_id: int, fingerprints: list[str]) -> dict[str, dict[str, Any]]:
    """``{fingerprint: {"id", "fingerprint", "status", "content_hash"}}`` of the service's
    alerts with these fingerprints, locked for the rest of the transaction on PostgreSQL.

    Locked here, in id order, because two web processes may hold batches that share alerts (a
    sender's retries, several Prometheus replicas): each then updates the shared rows in its own
    order, and two such transactions deadlocked (seen under load). Taking every row's lock first,
    in one order, makes the second wait for the first instead."""
    quote = connection.ops.quote_name
    table = quote(Alert._meta.db_table)
    names = ("id", "fingerprint", "status", "content_hash")
    columns = ", ".join(quote(name) for name in names)
    if connection.vendor == "postgresql":
        # Index probes only, whatever the statistics say: the ids come from one probe of the
        # (service, fingerprint) unique index per fingerprint, computed once (ARRAY(…)), then
        # the rows by primary key. As "service_id = %s AND fingerprint = ANY(%s)", PostgreSQL
        # planned a scan of every alert of the service whenever its statistics were older than
        # a storm (they said a few rows; 68,500 were there): 10-45 ms a batch, growing with the
        # service's alerts, a third of the database's time under a storm of new alerts. As
        # "id IN (SELECT …)" it could still hash-join against a scan of the whole table. The
        # service id goes in as "(SELECT %s)", a value the planner cannot see: it then costs
        # "this service's alerts" at the average service's share of the table rather than at
        # what stale statistics say of this one (a handful), and the unique index wins. Bound
        # client-side, never prepared: a generic plan cannot see the values either, and under
        # a storm one read the whole table (266 ms a batch).
        sql = (
            f"SELECT {columns} FROM {table} WHERE {quote('id')} = ANY(ARRAY("
            f"SELECT (SELECT a.{quote('id')} FROM {table} a "
            f"WHERE a.{quote('service_id')} = (SELECT %s::bigint) "
            f"AND a.{quote('fingerprint')} = f.fp) FROM UNNEST(%s::text[]) AS f(fp)"
            f")) ORDER BY {quote('id')} FOR UPDATE"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [service_id, list(fingerprints)])
            rows = cursor.fetchall()
    else:
        sql = (
            f"SELECT {columns} FROM {table} "
            f"WHERE {quote('service_id')} = %s AND {quote('fingerprint')} IN ({{}})"
        )
        rows = _run_in_chunks(sql, [service_id], fingerprints)
    return {row[1]: dict(zip(names, row, strict=True)) for row in rows}


def renew(ids: list[int], now: datetime, expected_end_at: datetime | None) -> None:
    """Identical re-sends: seen again now, one more occurrence, the expected end they renew."""
    quote = connection.ops.quote_name
    field = Alert._meta.get_field("last_seen_at")
    sql = (
        f"UPDATE {quote(Alert._meta.db_table)} SET {quote('last_seen_at')} = %s, "
        f"{quote('occurrences')} = {quote('occurrences')} + 1, {quote('expected_end_at')} = %s "
        f"WHERE {quote('id')} IN ({{}})"
    )
    moments = [field.get_db_prep_value(moment, connection) for moment in (now, expected_end_at)]
    _run_in_chunks(sql, moments, ids)
