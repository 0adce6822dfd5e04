"""Alerts into incidents.

Runs inside the pipeline's transaction (subscribed to the alert events, see
``incidents.lifecycle.subscribers``), so an alert's state change, the incident change and their
events
commit together. Two processes grouping alerts of one group at the same moment cannot open two
incidents: the partial unique constraint over (service, group_key) among open incidents refuses
the second insert, and the loser joins the winner's incident.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import IntegerField, Q, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from incidents.lifecycle.groups import (
    AUTO_ACTOR,
    as_candidate,
    group_key,
    open_incident_of,
    reopenable_incident,
    rule_label,
)
from incidents.models import (
    OPEN_STATUSES,
    GroupingMode,
    Incident,
    IncidentAlert,
    IncidentStatus,
    ServiceIncidentSettings,
)
from monitoring.models import Alert, AlertStatus, Service
from tocsin.db import bulk
from tocsin.events import NewEvent, record_many
from tocsin.services import ServiceError

# --- Reacting to alert events ----------------------------------------------------------------


def alert_fired(alert: Alert, now: datetime | None = None) -> Incident | None:
    """A firing, unsuppressed alert joins (or opens, or reopens) its group's incident."""
    alerts_fired([alert], now=now)
    link = IncidentAlert.objects.select_related("incident").filter(alert=alert).first()
    return link.incident if link is not None and link.incident.is_open else None


def alerts_fired(alerts: list[Alert], now: datetime | None = None, *, new: bool = False) -> None:
    """Firing, unsuppressed alerts join (or open, or reopen) their groups' incidents.

    A batch costs the same number of queries whatever its size: per service, the settings, the
    open incidents of the batch's groups, the storm count, one INSERT for the new incidents,
    one for the links and one for the events. ``new``: the alerts were just stored (no links).
    Suppressed alerts never open incidents nor page.
    """
    now = now or timezone.now()
    by_service: dict[int, list[Alert]] = {}
    for alert in alerts:
        if alert.status == AlertStatus.FIRING and not alert.suppression:
            by_service.setdefault(alert.service_id, []).append(alert)
    for service_alerts in by_service.values():
        _group_batch(service_alerts, now, new=new)


def _group_batch(alerts: list[Alert], now: datetime, *, new: bool) -> None:
    service = alerts[0].service
    links: dict[int, IncidentAlert] = {}
    if not new:
        rows = IncidentAlert.objects.select_related("incident").filter(alert__in=alerts)
        links = {link.alert_id: link for link in rows}
        alerts = [a for a in alerts if not (a.pk in links and links[a.pk].incident.is_open)]
        if not alerts:
            return  # still part of open incidents: nothing changes
    settings = ServiceIncidentSettings.for_ingest(service)
    keys = {alert.pk: group_key(settings, as_candidate(alert), now) for alert in alerts}
    plan = _Plan(service, settings, now)
    plan.find_open(set(keys.values()))
    joins_only = plan.opens_nothing(set(keys.values()))
    if settings.storm_threshold and not joins_only and connection.features.has_select_for_update:
        # Batches that may open incidents take turns here (the service row's lock, to the end
        # of the transaction): concurrent requests in a storm must not each see room under the
        # threshold and together open far more, nor open the same group twice. Batches that
        # only join (open groups, or a storm already at its bound) go on without waiting.
        # FOR NO KEY UPDATE: it excludes other openers but not the FOR KEY SHARE that every
        # INSERT referencing the service takes (its foreign key check), which FOR UPDATE would.
        # Of the service row alone: its default ordering joins the team, whose row would be
        # locked too (every opener of the team's other services would wait). SQLite has no row
        # locks and needs none here: its one writer has held the database since the batch's
        # first INSERT, so what the plan read is already final.
        turn = Service.objects.select_for_update(no_key=True, of=("self",)).filter(pk=service.pk)
        list(turn.order_by().values("pk"))
        plan = _Plan(service, settings, now)  # read again: what the last holder opened
        plan.find_open(set(keys.values()))
    if new and joins_only:
        # New alerts joining open incidents: links and events only, nothing that can conflict.
        plan.place_all(alerts, keys)
        plan.open_new(links)
        return
    try:
        with transaction.atomic():  # a savepoint: a racing process may have opened a group
            plan.place_all(alerts, keys)
            plan.open_new(links)
    except (IntegrityError, ServiceError):
        for alert in alerts:  # one at a time, joining whatever the other opened
            _group_one(alert, now)


OPENS, REOPENS, JOINS, STORM = "opens", "reopens", "joins", "storm"


def _newer(incident: Incident, than: Incident) -> bool:
    return (incident.created_at, incident.pk) > (than.created_at, than.pk)


def _sql_string(value: str) -> str:
    """A constant of ours (a status) as an SQL string literal."""
    if not value.isidentifier():
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


class _Plan:
    """Where each alert of one service's batch goes: an open incident of its group, a reopened
    one, a new one, or — past the storm threshold — the newest open incident of the service."""

    def __init__(self, service: Service, settings: ServiceIncidentSettings, now: datetime):
        self.service, self.settings, self.now = service, settings, now
        self.open: dict[str, Incident] = {}  # group key → incident ("": the newest open one)
        self.new: dict[str, Alert] = {}  # group key → the alert that opens its incident
        # (group key, alert, how): OPENS a new incident, REOPENS one, JOINS one, or joins the
        # newest open incident in a STORM.
        self.placed: list[tuple[str, Alert, str]] = []
        self._reopenable: dict[str, Incident] | None = None
        self._storm_budget: int | None = None

    def find_open(self, keys: set[str]) -> None:
        if self.settings.grouping_mode == GroupingMode.TIME_WINDOW:
            [key] = keys or {""}  # one window per batch: every alert has the same key
            found = open_incident_of(self.service, self.settings, key, self.now)
            self.open = {key: found} if found is not None else {}
            return
        open_incidents = Incident.objects.filter(service=self.service, status__in=OPEN_STATUSES)
        threshold = int(self.settings.storm_threshold or 0)
        if not threshold:
            self.open = {
                incident.group_key: incident
                for incident in open_incidents.filter(group_key__in=keys)
            }
            return
        # With storm grouping, the same statement brings the service's newest open incident
        # (where a storm's further groups go) and, on every row, how much of the storm budget
        # is used: one statement instead of two, and no reading of the twenty incidents a
        # storm opened to count them (a third of a one-alert batch's time went there).
        if connection.vendor == "postgresql":
            rows = bulk.raw(Incident, *self._open_and_newest_sql(keys, threshold))
        else:
            newest = open_incidents.order_by("-created_at", "-id").values("pk")[:1]
            rows = (
                open_incidents.filter(Q(group_key__in=keys) | Q(pk=Subquery(newest)))
                .annotate(storm_used=self._storm_used(threshold))
                .order_by("-created_at", "-id")
            )
        self.open = {}
        for incident in rows:
            if not self.open:  # the first row is the newest open incident
                self.open[""] = incident
                self._storm_budget = threshold - incident.storm_used
            if incident.group_key in keys:
                self.open[incident.group_key] = incident

    def _open_and_newest_sql(self, keys: set[str], threshold: int) -> tuple[str, list]:
        """find_open's statement on PostgreSQL, in plain SQL (and prepared, the same text for
        every batch): compiling the same query through the ORM took longer than running it (a
        quarter of a one-alert batch's time), and planning it was PostgreSQL's largest. The open
        incidents of the groups are found by one probe of the open-group unique index per key,
        whatever the table's statistics say (as the alerts of a batch are: see
        ``rows_by_fingerprint``)."""
        quote = connection.ops.quote_name
        table = quote(Incident._meta.db_table)
        service, status, group, created, pk = (
            quote(name) for name in ("service_id", "status", "group_key", "created_at", "id")
        )
        # The statuses as constants, not parameters: a plan made for any values can then use
        # the partial indexes over open incidents (incident_unique_open_group and
        # incident_service_open_recent).
        is_open = f"{status} IN ({', '.join(_sql_string(value) for value in OPEN_STATUSES)})"
        storm_used = self._storm_used(threshold)
        # Named, not i.*: a prepared statement whose result changes shape (a column added by a
        # migration while the server runs) fails rather than being planned again.
        columns = ", ".join(f"i.{quote(f.column)}" for f in Incident._meta.concrete_fields)
        sql = (
            f"SELECT {columns}, {storm_used.sql} AS storm_used FROM {table} i "
            f"WHERE i.{pk} = ANY(ARRAY("
            f"SELECT (SELECT o.{pk} FROM {table} o WHERE o.{service} = (SELECT %s::bigint) "
            f"AND o.{is_open} AND o.{group} = k.key) FROM UNNEST(%s::text[]) AS k(key) "
            f"UNION ALL SELECT (SELECT o.{pk} FROM {table} o WHERE o.{service} = %s "
            f"AND o.{is_open} ORDER BY o.{created} DESC, o.{pk} DESC LIMIT 1))) "
            f"ORDER BY i.{created} DESC, i.{pk} DESC"
        )
        params = [*storm_used.params, self.service.pk, sorted(keys), self.service.pk]
        return sql, params

    def _storm_used(self, threshold: int) -> RawSQL:
        """How many incidents the service opened within the storm window, counted up to the
        threshold (past it, the number makes no difference)."""
        window = timedelta(minutes=max(int(self.settings.storm_window_minutes or 1), 1))
        quote = connection.ops.quote_name
        since = connection.ops.adapt_datetimefield_value(self.now - window)
        sql = (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {quote(Incident._meta.db_table)} "
            f"WHERE {quote('service_id')} = %s AND {quote('created_at')} >= %s "
            # Ordered as incident_service_recent is: the newest few, not a scan for any few.
            f"ORDER BY {quote('created_at')} DESC, {quote('id')} DESC LIMIT %s) recent"
        )
        return RawSQL(f"({sql})", (self.service.pk, since, threshold), IntegerField())

    def opens_nothing(self, keys: set[str]) -> bool:
        """Whether every alert of the batch joins an incident whatever other batches do now:
        its group is open, or the storm is at its bound (a read without the lock can only
        overstate the room left, as others' new incidents are not visible to it yet) with an
        open incident to join and no group to reopen."""
        missing = keys - self.open.keys()
        if not missing:
            return True
        if self.storm_budget() > 0 or self.newest_open() is None:
            return False
        return not (missing & self.reopenable_keys())

    def place_all(self, alerts: list[Alert], keys: dict[int, str]) -> None:
        for alert in alerts:
            self.place(alert, keys[alert.pk])

    def place(self, alert: Alert, key: str) -> None:
        if key in self.open or key in self.new:
            self.placed.append((key, alert, JOINS))
            return
        reopenable = self.reopenable(key)
        if reopenable is not None:
            self.open[key] = reopened = _reopen(reopenable, self.now)
            newest = self.open.get("")
            if newest is not None and _newer(reopened, newest):
                # Open again and newer than the newest open incident read before: a storm's
                # further groups join it, as they would had it never been resolved.
                self.open[""] = reopened
            self.placed.append((key, alert, REOPENS))
            return
        if self.storm_budget() > 0 or not (self.new or self.newest_open()):
            self._storm_budget = self.storm_budget() - 1
            self.new[key] = alert
            self.placed.append((key, alert, OPENS))
            return
        # A storm: beyond the threshold, new groups join the newest open incident.
        self.placed.append(("", alert, STORM))

    def reopenable(self, key: str) -> Incident | None:
        if key not in self.reopenable_keys():
            return None
        return self._reopenable.pop(key)

    def reopenable_keys(self) -> set[str]:
        minutes = int(self.settings.reopen_window_minutes or 0)
        if not minutes:
            return set()
        if self._reopenable is None:
            rows = Incident.objects.filter(
                service=self.service,
                status=IncidentStatus.RESOLVED,
                merged_into__isnull=True,
                resolved_at__gte=self.now - timedelta(minutes=minutes),
            ).order_by("resolved_at")
            self._reopenable = {incident.group_key: incident for incident in rows}
        return set(self._reopenable)

    def storm_budget(self) -> int:
        threshold = int(self.settings.storm_threshold or 0)
        if not threshold:
            return 1  # no limit
        if self._storm_budget is None:
            # Counted by find_open's statement when the service has an open incident; here
            # when it has none (or grouping is by time window).
            used = self._storm_used(threshold)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {used.sql}", used.params)
                self._storm_budget = threshold - cursor.fetchone()[0]
        return self._storm_budget

    def newest_open(self) -> Incident | None:
        if "" not in self.open:
            newest = (
                Incident.objects.filter(service=self.service, status__in=OPEN_STATUSES)
                .order_by("-created_at", "-id")
                .first()
            )
            if newest is not None:
                self.open[""] = newest
        return self.open.get("")

    def open_new(self, links: dict[int, IncidentAlert]) -> None:
        """Open the new incidents (one INSERT), then link every alert of the batch to its
        incident (one more); all the batch's incident events go in one INSERT too."""
        from incidents.lifecycle.opening import NewIncident, open_incident_batch

        if not self.new:
            record_many(self.attach(links))
            return

        def attach(incidents: list[Incident]) -> list[NewEvent]:
            for key, incident in zip(self.new, incidents, strict=True):
                self.open[key] = incident
            self.open[""] = incidents[-1]  # the newest: a storm's later groups join it
            return self.attach(links)

        open_incident_batch(
            self.service,
            [
                NewIncident(
                    title=alert.summary or "alert",
                    summary=alert.description,
                    priority=self.settings.priority_for(alert.severity),
                    urgency=self.settings.urgency_for(alert.severity),
                    group_key=key,
                    alert_id=alert.pk,
                )
                for key, alert in self.new.items()
            ],
            policy=self.settings.policy_if_any(),
            actor_label=AUTO_ACTOR,
            now=self.now,
            payload={"rule": rule_label(self.settings)},
            more_events=attach,
        )

    def attach(self, links: dict[int, IncidentAlert]) -> list[NewEvent]:
        """Link every alert to its incident (one INSERT); returns the ``incident.alert_added``
        events of those that joined an incident rather than opened or reopened one: one per
        incident per batch, naming every alert that joined it (a storm's thousand alerts are
        one line on the timeline per batch, not a thousand, and one row less per alert)."""
        fresh = []
        joined: dict[tuple[int, bool], list[Alert]] = {}  # (incident, storm) → its new alerts
        incidents: dict[int, Incident] = {}
        for key, alert, how in self.placed:
            incident = self.open[key]
            link = links.get(alert.pk)
            if link is not None:
                if link.incident_id != incident.pk:
                    link.incident, link.added_at = incident, self.now
                    link.save(update_fields=["incident", "added_at"])
            else:
                fresh.append(
                    {"incident_id": incident.pk, "alert_id": alert.pk, "added_at": self.now}
                )
            if how in (OPENS, REOPENS):
                continue  # the incident's own event names this alert already
            incidents[incident.pk] = incident
            joined.setdefault((incident.pk, how == STORM), []).append(alert)
        # Rows, not instances: nothing reads the links back (a storm's hundred alerts a batch).
        bulk.insert_rows(IncidentAlert, fresh)
        return [
            alerts_added_event(incidents[incident_id], alerts, storm=storm)
            for (incident_id, storm), alerts in joined.items()
        ]


def alerts_added_event(incident: Incident, alerts: list[Alert], *, storm: bool) -> NewEvent:
    """``incident.alert_added`` for ``alerts`` joining ``incident`` together (one or more):
    the first alert's id and summary, every alert's id, and how many."""
    payload: dict = {
        "incident_id": incident.pk,
        "alert_id": alerts[0].pk,
        "summary": alerts[0].summary,
        "alert_ids": [alert.pk for alert in alerts],
        "count": len(alerts),
    }
    if storm:
        payload["storm"] = True
    return NewEvent(
        "incident.alert_added",
        incident.team_id,
        subject=incident,
        actor_label=AUTO_ACTOR,
        payload=payload,
    )


def _group_one(alert: Alert, now: datetime) -> Incident | None:
    """One alert, retrying when another process opens its group at the same moment (the
    partial unique constraint over open incidents refuses the second insert)."""
    link = IncidentAlert.objects.select_related("incident").filter(alert=alert).first()
    if link is not None and link.incident.is_open:
        return link.incident  # still part of an open incident: nothing changes
    service = alert.service
    settings = ServiceIncidentSettings.for_service(service)
    key = group_key(settings, as_candidate(alert), now)
    for _attempt in range(3):
        incident = open_incident_of(service, settings, key, now)
        if incident is not None:
            _attach(incident, alert, link, now, joins=True)
            return incident
        reopened = reopenable_incident(service, settings, key, now)
        try:
            with transaction.atomic():  # a savepoint: the unique constraint may refuse us
                if reopened is not None:
                    incident = _reopen(reopened, now)
                else:
                    incident = _create(service, settings, key, alert, now)
        except (IntegrityError, ServiceError):
            continue  # another process opened this group a moment ago: join theirs
        _attach(incident, alert, link, now, joins=False)
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
        payload={"rule": rule_label(settings)},
    )


def _reopen(incident: Incident, now: datetime) -> Incident:
    from incidents.lifecycle import services

    return services.reopen(
        incident, actor_label=AUTO_ACTOR, reason="alert fired within the reopen window", now=now
    )


def _attach(
    incident: Incident, alert: Alert, link: IncidentAlert | None, now: datetime, joins: bool
) -> None:
    if link is not None:
        if link.incident_id == incident.pk:
            return
        link.incident = incident
        link.added_at = now
        link.save(update_fields=["incident", "added_at"])
    else:
        IncidentAlert.objects.create(incident=incident, alert=alert, added_at=now)
    if joins:
        record_many([alerts_added_event(incident, [alert], storm=False)])


def alerts_resolved(alerts: list[Alert], now: datetime | None = None) -> list[Incident]:
    """Auto-resolve: an incident resolves when every one of its alerts has resolved. A batch of
    resolved alerts costs three reads whatever its size, plus each incident it resolves."""
    links = list(IncidentAlert.objects.select_related("incident__service").filter(alert__in=alerts))
    incidents = {link.incident_id: link.incident for link in links if link.incident.is_open}
    if not incidents:
        return []
    services_ids = {incident.service_id for incident in incidents.values()}
    settings = {
        row.service_id: row
        for row in ServiceIncidentSettings.objects.filter(service_id__in=services_ids)
    }
    still_firing = set(
        IncidentAlert.objects.filter(
            incident_id__in=list(incidents), alert__status=AlertStatus.FIRING
        ).values_list("incident_id", flat=True)
    )
    from incidents.lifecycle import services

    resolved = []
    for pk, incident in incidents.items():
        auto = settings.get(incident.service_id, ServiceIncidentSettings()).auto_resolve
        if auto and pk not in still_firing:
            services.resolve(incident, actor_label="auto-resolve", via="auto", now=now)
            resolved.append(incident)
    return resolved


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
