"""Heartbeat operations, called from the ping views, the admin, the API and the loop.

The hot path is ``record_pings``: the pings a web process received together are written in one
transaction — one locked read of their heartbeats, one UPDATE of their denormalised state (run
for each row), one INSERT of all the pings. Only a change that concerns the pipeline (a problem
appears or goes away) costs more, and only then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from monitoring.models import Service
from probes.heartbeats import alerts
from probes.heartbeats.models import (
    CONFIG_FIELDS,
    MAX_DURATION,
    STATE_FIELDS,
    Heartbeat,
    Ping,
    PingKey,
    PingKind,
)
from tocsin.events import record
from tocsin.group_commit import write_all_or_each
from tocsin.services import ServiceError

MAX_SNOOZE = timedelta(days=30)


def body_limit() -> int:
    """``TOCSIN_PING_BODY_LIMIT`` (bytes of a ping's body kept, announced as Ping-Body-Limit)."""
    return settings.TOCSIN_PING_BODY_LIMIT


@dataclass
class PingData:
    """What a ping request carried, already bounded."""

    kind: str  # PingKind.SUCCESS, START, FAIL or LOG (an exit status decides success/fail)
    exit_status: int | None = None
    rid: uuid.UUID | None = None
    method: str = ""
    remote_addr: str = ""
    user_agent: str = ""
    body: str = ""
    body_size: int = 0


def lock_by_uuid(code: uuid.UUID) -> Heartbeat | None:
    return Heartbeat.objects.select_for_update().filter(uuid=code).first()


def lock_by_slug(key: str, slug: str) -> Heartbeat | None:
    return (
        Heartbeat.objects.select_for_update(of=("self",))
        .filter(service__heartbeat_ping_key__key=key, slug=slug)
        .first()
    )


@dataclass(eq=False)
class PendingPing:
    """One request to a ping URL, waiting to be written (then holding what to answer)."""

    data: PingData
    received_at: datetime
    code: uuid.UUID | None = None  # /ping/<uuid>
    key: str = ""  # /ping/<key>/<slug>
    slug: str = ""
    create: bool = False  # ?create=1 on a slug URL
    found: bool = False
    created: bool = False
    error: BaseException | None = None


def record_pings(batch: list[PendingPing]) -> None:
    """Write a batch of pings (the requests a web process received together) in one
    transaction: the UUID heartbeats locked in one statement, each touched heartbeat updated
    once, the pings inserted in one statement. Each ping gets ``found``/``created`` or its
    ``error``; never raises. If the batch fails, each ping is written again alone, so one ping's
    failure stays its own."""
    write_all_or_each(_write_pings, batch)


def _write_pings(batch: list[PendingPing]) -> None:
    answers: list[tuple[PendingPing, bool, bool]] = []
    with transaction.atomic():
        codes = {pending.code for pending in batch if pending.code is not None}
        locked = Heartbeat.objects.select_for_update().filter(uuid__in=codes).order_by("pk")
        by_uuid = {heartbeat.uuid: heartbeat for heartbeat in locked} if codes else {}
        targets = _Targets(by_uuid)
        touched: dict[int, Heartbeat] = {}
        pings: list[Ping] = []
        for pending in batch:
            heartbeat, created = targets.find(pending)
            answers.append((pending, heartbeat is not None, created))
            if heartbeat is not None:
                pings.append(_apply_ping(heartbeat, pending.data, pending.received_at, targets))
                touched[heartbeat.pk] = heartbeat
        _save_states(list(touched.values()))
        Ping.objects.bulk_create(pings)
    for pending, found, created in answers:  # only once committed
        pending.found, pending.created = found, created


def _save_states(heartbeats: list[Heartbeat]) -> None:
    """The batch's heartbeats' state columns (``STATE_FIELDS``) in one statement run for every
    row (``executemany``: psycopg sends the rows in one pipeline, SQLite steps one prepared
    statement): a save() each cost a round trip and most of a ping's CPU."""
    if len(heartbeats) == 1:
        heartbeats[0].save(update_fields=STATE_FIELDS)
        return
    fields = [Heartbeat._meta.get_field(name) for name in STATE_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    pk = quote(Heartbeat._meta.pk.column)
    sql = f"UPDATE {quote(Heartbeat._meta.db_table)} SET {columns} WHERE {pk} = %s"
    rows = [
        [field.get_db_prep_save(getattr(heartbeat, field.attname), connection) for field in fields]
        + [heartbeat.pk]
        for heartbeat in heartbeats
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


class _Targets:
    """The heartbeats one batch pings, locked, one Python object per row (a heartbeat pinged by
    its UUID and by its slug in one batch is changed in one place), and the run starts the
    batch has seen but not inserted yet."""

    def __init__(self, by_uuid: dict[uuid.UUID, Heartbeat]) -> None:
        self.by_uuid = by_uuid
        self.by_pk = {heartbeat.pk: heartbeat for heartbeat in by_uuid.values()}
        self.by_slug: dict[tuple[str, str], Heartbeat | None] = {}
        self.starts: dict[tuple[int, uuid.UUID], datetime] = {}

    def find(self, pending: PendingPing) -> tuple[Heartbeat | None, bool]:
        """The pinged heartbeat (None: no such one) and whether this ping created it."""
        if pending.code is not None:
            return self.by_uuid.get(pending.code), False
        where = (pending.key, pending.slug)
        if where in self.by_slug:
            return self.by_slug[where], False
        heartbeat, created = lock_by_slug(*where), False
        if heartbeat is None and pending.create:
            heartbeat = auto_provision(*where)
            created = heartbeat is not None
        if heartbeat is not None:
            heartbeat = self.by_pk.setdefault(heartbeat.pk, heartbeat)
        self.by_slug[where] = heartbeat
        return heartbeat, created


def record_ping(heartbeat: Heartbeat, data: PingData, now: datetime | None = None) -> Ping:
    """Apply one ping to a heartbeat the caller locked (``lock_by_uuid``/``lock_by_slug`` in a
    transaction) and store it."""
    ping = _apply_ping(heartbeat, data, now or timezone.now(), _Targets({}))
    heartbeat.save(update_fields=STATE_FIELDS)
    ping.save()
    return ping


def _apply_ping(heartbeat: Heartbeat, data: PingData, now: datetime, batch: _Targets) -> Ping:
    """One ping's change to the locked heartbeat (alerts raised or resolved at once), and the
    ``Ping`` to store; the caller saves both."""
    kind = data.kind
    if data.exit_status is not None:
        kind = PingKind.SUCCESS if data.exit_status == 0 else PingKind.FAIL
    duration = None
    heartbeat.last_ping_at = now
    if kind != PingKind.LOG and not heartbeat.resume_for_ping():
        kind = PingKind.IGNORED
    if kind == PingKind.START:
        heartbeat.apply_start(now, data.rid)
        if data.rid is not None:
            batch.starts[(heartbeat.pk, data.rid)] = now
    elif kind in (PingKind.SUCCESS, PingKind.FAIL):
        started_at = heartbeat.started_at_for(data.rid)
        if started_at is None and data.rid is not None:
            started_at = batch.starts.get((heartbeat.pk, data.rid)) or _start_of_run(
                heartbeat, data.rid, now
            )
        duration = heartbeat.apply_finish(
            now,
            success=kind == PingKind.SUCCESS,
            rid=data.rid,
            started_at=started_at,
            exit_status=data.exit_status,
        )
    heartbeat.refresh_state(now)
    if heartbeat.unsynced(now) != ([], []):
        alerts.sync(heartbeat, now)
        heartbeat.refresh_state(now)
    return Ping(
        heartbeat=heartbeat,
        received_at=now,
        kind=kind,
        exit_status=data.exit_status,
        rid=data.rid,
        method=data.method[:10],
        remote_addr=data.remote_addr[:45],
        user_agent=data.user_agent[:200],
        body=data.body,
        body_size=data.body_size,
        duration=duration,
    )


def _start_of_run(heartbeat: Heartbeat, rid: uuid.UUID, now: datetime) -> datetime | None:
    """The start ping of run ``rid`` (one of several overlapping runs), within MAX_DURATION."""
    return (
        Ping.objects.filter(
            heartbeat=heartbeat,
            rid=rid,
            kind=PingKind.START,
            received_at__gte=now - MAX_DURATION,
            received_at__lte=now,
        )
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )


# -- ping keys and auto-provisioning ---------------------------------------------------------
def ping_key_for(service: Service) -> PingKey:
    """The service's ping key for slug URLs, created on first use."""
    try:
        return service.heartbeat_ping_key
    except PingKey.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return PingKey.objects.create(service=service, key=PingKey.new_key())
    except IntegrityError:  # created a moment ago by another request
        return PingKey.objects.get(service=service)


def rotate_ping_key(service: Service) -> PingKey:
    """A new key: slug URLs with the old one answer 404 from now on."""
    key = ping_key_for(service)
    key.key = PingKey.new_key()
    key.save(update_fields=["key"])
    return key


def auto_provision(key: str, slug: str) -> Heartbeat | None:
    """``?create=1`` on a slug URL: a heartbeat with the defaults, named after its slug, in the
    key's service (locked, like the ones ``lock_by_slug`` finds). None: no such key."""
    ping_key = PingKey.objects.select_related("service").filter(key=key).first()
    if ping_key is None:
        return None
    try:
        with transaction.atomic():
            Heartbeat.objects.create(service=ping_key.service, name=slug, slug=slug)
    except IntegrityError:
        pass  # another request created it a moment ago: ping that one
    return lock_by_slug(key, slug)


# -- operations from people (admin, API) -----------------------------------------------------
def _locked(heartbeat: Heartbeat) -> Heartbeat:
    return (
        Heartbeat.objects.select_for_update(of=("self",))
        .select_related("service")
        .get(pk=heartbeat.pk)
    )


def _settle(heartbeat: Heartbeat, now: datetime) -> None:
    heartbeat.refresh_state(now)
    alerts.sync(heartbeat, now)
    heartbeat.refresh_state(now)
    heartbeat.save(update_fields=STATE_FIELDS)


def _log(
    action: str, heartbeat: Heartbeat, actor: Any, actor_label: str = "", **extra: Any
) -> None:
    """``heartbeat.<action>`` in the event log, with the configuration as it now is."""
    payload = {
        "heartbeat_id": heartbeat.pk,
        "service_id": heartbeat.service_id,
        **{name: getattr(heartbeat, name) for name in CONFIG_FIELDS},
        **extra,
    }
    record(
        f"heartbeat.{action}",
        team=heartbeat.service.team_id,
        subject=heartbeat,
        actor=actor,
        actor_label=actor_label,
        payload=payload,
    )


def configured(heartbeat: Heartbeat, *, created: bool, actor: Any = None) -> Heartbeat:
    """After a heartbeat's configuration was saved (admin, API): its service has a ping key for
    slug URLs, a change takes effect at once, and the event log says who did what."""
    with transaction.atomic():
        ping_key_for(heartbeat.service)
        if not created:
            heartbeat = settings_changed(heartbeat)
        _log("created" if created else "updated", heartbeat, actor)
    return heartbeat


def delete(heartbeat: Heartbeat, *, actor: Any = None) -> None:
    """Delete a heartbeat and its pings; its open alerts resolve first."""
    with transaction.atomic():
        locked = pause(heartbeat, actor=actor)
        _log("deleted", locked, actor)
        locked.delete()


def pause(heartbeat: Heartbeat, now: datetime | None = None, *, actor: Any = None) -> Heartbeat:
    """Stop expecting pings; open alerts resolve."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(heartbeat)
        locked.pause()
        _settle(locked, now)
        _log("paused", locked, actor)
    return locked


def resume(heartbeat: Heartbeat, now: datetime | None = None, *, actor: Any = None) -> Heartbeat:
    """Expect pings again, from the next one on (as a new heartbeat does)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(heartbeat)
        if locked.status == "paused":
            locked.status = "new"
            _settle(locked, now)
            _log("resumed", locked, actor)
    return locked


def snooze(
    heartbeat: Heartbeat,
    seconds: int,
    now: datetime | None = None,
    *,
    actor: Any = None,
    actor_label: str = "",
) -> Heartbeat:
    """No new alerts for ``seconds`` (0 ends a snooze); alerts already open stay open, and
    problems found meanwhile are raised when the snooze ends if they still hold."""
    now = now or timezone.now()
    if seconds < 0 or timedelta(seconds=seconds) > MAX_SNOOZE:
        raise ServiceError(f"Snooze for at most {MAX_SNOOZE.days} days.")
    with transaction.atomic():
        locked = _locked(heartbeat)
        locked.snoozed_until = now + timedelta(seconds=seconds) if seconds else None
        _settle(locked, now)
        until = locked.snoozed_until
        _log("snoozed", locked, actor, actor_label, snoozed_until=until and until.isoformat())
    return locked


def settings_changed(heartbeat: Heartbeat, now: datetime | None = None) -> Heartbeat:
    """After the schedule, grace or limits were edited: recompute the expectation from the
    last finished run and re-evaluate, so a shortened grace takes effect at once."""
    from probes.heartbeats import schedule

    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(heartbeat)
        if locked.status != "paused" and locked.expected_at is not None:
            last = locked.last_success_at or locked.last_ping_at or now
            locked.expected_at = schedule.next_expected(
                period=locked.period, cron=locked.cron, tz_name=locked.timezone, after=last
            )
        locked.evaluate(now)
        _settle(locked, now)
    return locked


def prune_pings(now: datetime | None = None) -> int:
    """The periodic task: drop pings older than ``TOCSIN_PING_RETENTION_DAYS`` (default 14,
    beyond the 7 days a start is paired with its finish); the state lives in the heartbeat."""
    now = now or timezone.now()
    days = settings.TOCSIN_PING_RETENTION_DAYS
    deleted, _ = Ping.objects.filter(received_at__lt=now - timedelta(days=days)).delete()
    return deleted
