"""Heartbeat operations, called from the ping views, the admin, the API and the loop.

The hot path is ``record_ping``: one locked read of the heartbeat, one UPDATE of its
denormalised state, one INSERT of the ping. Only a change that concerns the pipeline (a problem
appears or goes away) costs more, and only then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import Service
from probes.heartbeats import alerts
from probes.heartbeats.models import (
    MAX_DURATION,
    STATE_FIELDS,
    Heartbeat,
    Ping,
    PingKey,
    PingKind,
)
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


@dataclass
class PingResult:
    ping: Ping
    heartbeat: Heartbeat


def lock_by_uuid(code: uuid.UUID) -> Heartbeat | None:
    return Heartbeat.objects.select_for_update().filter(uuid=code).first()


def lock_by_slug(key: str, slug: str) -> Heartbeat | None:
    return (
        Heartbeat.objects.select_for_update(of=("self",))
        .filter(service__heartbeat_ping_key__key=key, slug=slug)
        .first()
    )


def record_ping(heartbeat: Heartbeat, data: PingData, now: datetime | None = None) -> Ping:
    """Apply one ping to a heartbeat the caller locked (``lock_by_uuid``/``lock_by_slug`` in a
    transaction) and store it."""
    now = now or timezone.now()
    kind = data.kind
    if data.exit_status is not None:
        kind = PingKind.SUCCESS if data.exit_status == 0 else PingKind.FAIL
    duration = None
    heartbeat.last_ping_at = now
    if kind != PingKind.LOG and not heartbeat.resume_for_ping():
        kind = PingKind.IGNORED
    if kind == PingKind.START:
        heartbeat.apply_start(now, data.rid)
    elif kind in (PingKind.SUCCESS, PingKind.FAIL):
        started_at = heartbeat.started_at_for(data.rid)
        if started_at is None and data.rid is not None:
            started_at = _start_of_run(heartbeat, data.rid, now)
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
    heartbeat.save(update_fields=STATE_FIELDS)
    return Ping.objects.create(
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
    return Heartbeat.objects.select_for_update().select_related("service").get(pk=heartbeat.pk)


def _settle(heartbeat: Heartbeat, now: datetime) -> None:
    heartbeat.refresh_state(now)
    alerts.sync(heartbeat, now)
    heartbeat.refresh_state(now)
    heartbeat.save(update_fields=STATE_FIELDS)


def pause(heartbeat: Heartbeat, now: datetime | None = None) -> Heartbeat:
    """Stop expecting pings; open alerts resolve."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(heartbeat)
        locked.pause()
        _settle(locked, now)
    return locked


def resume(heartbeat: Heartbeat, now: datetime | None = None) -> Heartbeat:
    """Expect pings again, from the next one on (as a new heartbeat does)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(heartbeat)
        if locked.status == "paused":
            locked.status = "new"
            _settle(locked, now)
    return locked


def snooze(heartbeat: Heartbeat, seconds: int, now: datetime | None = None) -> Heartbeat:
    """No new alerts for ``seconds`` (0 ends a snooze); alerts already open stay open, and
    problems found meanwhile are raised when the snooze ends if they still hold."""
    now = now or timezone.now()
    if seconds < 0 or timedelta(seconds=seconds) > MAX_SNOOZE:
        raise ServiceError(f"Snooze for at most {MAX_SNOOZE.days} days.")
    with transaction.atomic():
        locked = _locked(heartbeat)
        locked.snoozed_until = now + timedelta(seconds=seconds) if seconds else None
        _settle(locked, now)
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
