"""The probe scheduler: claim due slots from rows, run them concurrently, record each once.

Three steps, on rows:

1. ``claim``: picks up to ``BATCH`` due slots (``SELECT … FOR UPDATE SKIP LOCKED`` where the
   database has it) and claims them with one conditional UPDATE that moves ``next_run_at`` a
   lease ahead and keeps the slot being run in ``slot_at``; three statements however many slots.
   Another worker's UPDATE finds ``next_run_at`` in the future and claims nothing: "nothing
   updated" means someone else has it.
2. runs the claimed checks concurrently on an event loop, each observation bounded by its own
   timeout;
3. ``record``: per slot, in a transaction, only if this claim is still ours: stores the
   result (unique per check, slot and location, so a slot is never recorded twice), advances
   the slot's state machine, derives the check's state and syncs its alert.

The due-work loop of ``manage.py worker`` calls ``run_due`` when ``next_due`` says so: it
starts claimed runs on a long-lived event loop (``inflight``) and records those finished on
its next passes, so a hanging target holds only its own slot, never the loop. ``run_batch``
claims, runs and records a batch before returning (the periodic catch-up, tests, commands).

A worker killed between 1 and 3 leaves its slots claimed until the lease ends; they are due
again then, with the same ``slot_at``, and the next worker runs them: no slot is lost. When a
slot runs more than an interval late (the prober was down or overloaded), the slots in between
are stored as one *unknown* result (never as the target's downtime) and the next run is
scheduled from now, so no burst of late runs follows.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from probes.checks import alerts
from probes.checks.choices import ANY_LOCATION, LEASE, ResultStatus, probe_location
from probes.checks.inflight import PACE, InFlight
from probes.checks.models import CHECK_STATE_FIELDS, SLOT_FIELDS, Check, Result, Slot
from probes.checks.runner import Plan, RunOutcome, run_plan, run_sync
from tocsin.db import bulk
from tocsin.duework import worker_id
from tocsin.events import NewEvent
from tocsin.events import record_many as record_events

BATCH = 500
# Jitter added to each next run: at most this share of the interval, and at most MAX_JITTER.
JITTER_SHARE = 0.02
MAX_JITTER = 2.0


def concurrency() -> int:
    return int(getattr(settings, "TOCSIN_PROBE_CONCURRENCY", 200))


def _locations(location: str | None) -> list[str]:
    return [ANY_LOCATION, location or probe_location()]


def claim(
    now: datetime,
    *,
    location: str | None = None,
    limit: int = BATCH,
    token: str = "",
    only: Iterable[int] | None = None,
    ahead: timedelta = timedelta(0),
) -> tuple[str, list[Slot]]:
    """Claim due slots for this location (of the checks ``only`` names, when given), and those
    due within ``ahead`` of ``now`` (the caller starts them on time); (the claim's token, the
    claimed slots with their checks). A constant number of statements whatever the number of
    slots."""
    token = token or f"{worker_id()}:{uuid.uuid4().hex[:8]}"
    until = now + ahead
    with transaction.atomic():
        due = Slot.objects.filter(next_run_at__lte=until, location__in=_locations(location))
        if only is not None:
            due = due.filter(probe_id__in=list(only))
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.order_by("next_run_at").values_list("pk", flat=True)[:limit])
        if not ids:
            return token, []
        Slot.objects.filter(pk__in=ids, next_run_at__lte=until).update(
            slot_at=Coalesce(F("slot_at"), F("next_run_at")),
            next_run_at=now + LEASE,
            claimed_by=token,
        )
    slots = list(Slot.objects.filter(pk__in=ids, claimed_by=token).select_related("probe"))
    return token, slots


async def run_slot(slot: Slot, now: datetime) -> RunOutcome:
    """Run a claimed slot's check; a bug in a kind is that slot's failure, never the batch's."""
    try:
        return await run_plan(Plan.of(slot.probe), now)
    except Exception as exc:
        return RunOutcome(
            status=ResultStatus.DOWN,
            started_at=now,
            error=f"the probe failed: {type(exc).__name__}: {exc}"[:500],
        )


async def run_slot_on_time(slot: Slot, now: datetime) -> RunOutcome:
    """Run a slot claimed ahead of its time when its time comes (at once when it is due)."""
    slot_at = slot.slot_at or now
    wait = (slot_at - timezone.now()).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait)
    return await run_slot(slot, max(now, slot_at))


async def run_slots(slots: list[Slot], now: datetime) -> list[RunOutcome]:
    """Run claimed slots concurrently (at most ``TOCSIN_PROBE_CONCURRENCY`` at once)."""
    limit = asyncio.Semaphore(concurrency())

    async def one(slot: Slot) -> RunOutcome:
        async with limit:
            return await run_slot(slot, now)

    return list(await asyncio.gather(*(one(slot) for slot in slots)))


def next_run(slot_at: datetime, interval: int, now: datetime) -> tuple[datetime, int]:
    """(the next run, how many slots were missed since ``slot_at``). Late by more than an
    interval: the next run is an interval from now (no burst of late runs)."""
    step = timedelta(seconds=interval)
    missed = int((now - slot_at) / step) if now > slot_at else 0
    base = now + step if missed else slot_at + step
    if base <= now:
        base = now + step
    jitter = random.uniform(0, min(interval * JITTER_SHARE, MAX_JITTER))
    return base + timedelta(seconds=jitter), missed


# What only running a check reads: recording leaves these columns unread.
RUN_ONLY_FIELDS = ("config", "conditions", "degraded_conditions")
# A run to record: the claimed slot, the claim's token, what the run found, and the moment the
# next run is scheduled from.
Run = tuple[Slot, str, RunOutcome, datetime]


def record(slot: Slot, token: str, outcome: RunOutcome, now: datetime) -> bool:
    """Store a run of a claimed slot; False when this claim was lost (its lease ran out and
    another worker took the slot) or the slot was recorded already."""
    try:
        with transaction.atomic():
            return bool(_record_many([(slot, token, outcome, now)]))
    except IntegrityError:
        # This slot's result exists already (stored by a run_now in the same microsecond, or a
        # claim that outlived its lease): ours is the duplicate. Release the claim so the slot
        # moves on instead of being retaken again and again.
        Slot.objects.filter(pk=slot.pk, claimed_by=token).update(
            slot_at=None, claimed_by="", next_run_at=now + timedelta(seconds=slot.probe.interval)
        )
        return False


def record_many(runs: Sequence[Run]) -> int:
    """Store finished runs together: one transaction and a fixed number of statements however
    many runs (locks, results, slots, checks), each run only if its claim is still ours. If a
    result exists already, the lot is rolled back and recorded one run at a time, so only the
    duplicate is refused. Returns how many were stored."""
    stored = 0
    for start in range(0, len(runs), BATCH):
        chunk = runs[start : start + BATCH]
        try:
            with transaction.atomic():
                stored += _record_many(chunk)
        except IntegrityError:
            stored += sum(record(*run) for run in chunk)
    return stored


def _record_many(runs: Sequence[Run]) -> int:
    probe_ids = sorted({slot.probe_id for slot, _, _, _ in runs})
    # Locked in one order (checks, then their slots, by primary key) as every writer of these
    # rows locks them, so two workers recording at once wait for each other, never deadlock.
    checks = {
        check.pk: check
        for check in Check.objects.select_for_update()
        .defer(*RUN_ONLY_FIELDS)
        .filter(pk__in=probe_ids)
        .order_by("pk")
    }
    siblings: dict[int, list[Slot]] = defaultdict(list)
    locked_slots: dict[int, Slot] = {}
    for locked in Slot.objects.select_for_update().filter(probe_id__in=probe_ids).order_by("pk"):
        siblings[locked.probe_id].append(locked)
        locked_slots[locked.pk] = locked
    results: list[Result] = []
    done: list[Slot] = []
    touched: dict[int, tuple[Check, datetime]] = {}
    before = {pk: _state_of(check) for pk, check in checks.items()}
    for slot, token, outcome, now in runs:
        check = checks.get(slot.probe_id)
        locked = locked_slots.get(slot.pk)
        if check is None or locked is None or locked.claimed_by != token or not locked.slot_at:
            continue  # the claim was lost (the lease ran out) or the check is gone
        locked.probe = check
        results.extend(_results(check, locked, outcome, now))
        locked.consume(outcome.status, check)
        locked.last_run_at = outcome.started_at
        following, _ = next_run(locked.slot_at, check.interval, now)
        locked.slot_at, locked.claimed_by = None, ""
        locked.next_run_at = None if check.paused else following
        done.append(locked)
        _note_run(check, outcome)
        touched[check.pk] = (check, now)
    if not done:
        return 0
    bulk.insert(results)
    bulk.update(done, SLOT_FIELDS)
    changed: dict[tuple[str, ...], list[Check]] = defaultdict(list)
    moved: list[tuple[Check, str]] = []
    for check, now in touched.values():
        was = check.state
        if check.aggregate(siblings[check.pk], now):
            moved.append((check, was))
        alerts.sync(check, now)
        pairs = zip(CHECK_STATE_FIELDS, before[check.pk], _state_of(check), strict=True)
        fields = tuple(name for name, was, now_is in pairs if was != now_is)
        if fields:
            changed[fields].append(check)
    # Most runs change only when the check last ran: each set of changed columns is written
    # once, and only those columns.
    for fields, group in changed.items():
        bulk.update(group, fields)
    # Their services in one query: a whole fleet turns up (or down) together, as every check
    # does on its first run, and each event names its team.
    prefetch_related_objects([check for check, _ in moved], "service")
    record_events([state_changed(check, was) for check, was in moved])
    return len(done)


def state_changed(check: Check, was: str) -> NewEvent:
    """The event that tells live pages (the probes grid) that a check went up, degraded, down
    or unknown; rare (transitions only), so it costs nothing on the recording path."""
    return NewEvent(
        "check.state_changed",
        check.service.team_id,
        subject=check,
        actor_label="probes",
        payload={
            "check_id": check.pk,
            "service_id": check.service_id,
            "state": check.state,
            "was": was,
        },
    )


def _state_of(check: Check) -> tuple:
    return tuple(getattr(check, name) for name in CHECK_STATE_FIELDS)


def _results(check: Check, slot: Slot, outcome: RunOutcome, now: datetime) -> list[Result]:
    """The run's result, after an *unknown* one for the slots missed before it, if any."""
    slot_at = slot.slot_at
    _, missed = next_run(slot_at, check.interval, now)
    rows = []
    if missed:
        first_missed = slot_at + timedelta(seconds=check.interval)
        rows.append(
            Result(
                probe_id=check.pk,
                location=slot.location,
                slot_at=first_missed,
                started_at=first_missed,
                status=ResultStatus.UNKNOWN,
                error=f"no run for {missed} slot(s): the prober was down or overloaded",
                slots=missed,
            )
        )
    rows.append(
        Result(
            probe_id=check.pk,
            location=slot.location,
            slot_at=slot_at,
            started_at=outcome.started_at,
            status=outcome.status,
            latency_ms=outcome.latency_ms,
            timings=outcome.timings,
            error=outcome.error,
            excerpt=outcome.excerpt,
            explanation=outcome.explanation,
            details=outcome.details,
        )
    )
    return rows


def _note_run(check: Check, outcome: RunOutcome) -> None:
    check.last_run_at = outcome.started_at
    check.last_error = outcome.error
    check.last_explanation = outcome.explanation
    check.last_excerpt = outcome.excerpt


def apply_outcome(check: Check, slot: Slot, outcome: RunOutcome, now: datetime) -> None:
    """After a slot's run (``services.run_now``): the check's last run, its state from all its
    slots, its alert."""
    _note_run(check, outcome)
    slots = [s if s.pk != slot.pk else slot for s in check.slots.all()]
    was = check.state
    if check.aggregate(slots, now):
        record_events([state_changed(check, was)])
    alerts.sync(check, now)
    check.save(update_fields=CHECK_STATE_FIELDS)


# -- the due-work loop: runs in flight on a long-lived event loop ---------------------------------
_in_flight = InFlight()


def _record_finished(finished: list[tuple[Slot, str, RunOutcome]]) -> int:
    return record_many(
        [(slot, token, outcome, outcome.started_at) for slot, token, outcome in finished]
    )


def next_due(location: str | None = None) -> datetime | None:
    """When the earliest slot this location may run is due (None: nothing scheduled), or
    sooner while runs are in flight, so the loop comes back to record them as they finish;
    while runs are in flight, passes are paced (``inflight.PACE``)."""
    due = (
        Slot.objects.filter(next_run_at__isnull=False, location__in=_locations(location))
        .order_by("next_run_at")
        .values_list("next_run_at", flat=True)
        .first()
    )
    back = _in_flight.due_at()
    if back is None:
        return due
    if due is None:
        return back
    # Due slots are claimed up to a pace ahead (and start on time): a pass a pace before the
    # slot is soon enough.
    return min(max(due - PACE, _in_flight.paced()), back)


def run_due(now: datetime | None = None, *, location: str | None = None) -> int:
    """One pass of the due-work loop, never waiting for a target: record the runs that have
    finished, claim what is due or due within a pace (as many as the concurrency leaves room
    for) and start them, each at its slot's time. Passes are paced while runs are in flight
    (``next_due``); claiming a pace ahead keeps the runs on time all the same. Returns how
    many runs it recorded and started."""
    now = now or timezone.now()
    recorded = _in_flight.collect(_record_finished)
    room = min(BATCH, concurrency() - len(_in_flight))
    if room <= 0:
        return recorded
    token, slots = claim(now, location=location, limit=room, ahead=PACE)
    _in_flight.submit(
        [(slot, token, lambda slot=slot: run_slot_on_time(slot, now)) for slot in slots]
    )
    return recorded + len(slots)


def drain() -> None:
    """When the worker stops: wait for the runs in flight, record them, close the loop."""
    _in_flight.collect(_record_finished, wait=True)
    _in_flight.stop()


# -- a whole batch at once: the periodic catch-up, tests, commands ------------------------------
def run_batch(
    now: datetime | None = None,
    *,
    location: str | None = None,
    only: Iterable[int] | None = None,
) -> int:
    """Claim a batch (of the checks ``only`` names, when given), run it and record it before
    returning; how many slots ran."""
    now = now or timezone.now()
    # No more than run at once: a claimed slot waiting for its turn would eat into its lease.
    limit = min(BATCH, concurrency())
    token, slots = claim(now, location=location, limit=limit, only=only)
    if not slots:
        return 0
    outcomes = run_sync(lambda: run_slots(slots, now))
    pairs = zip(slots, outcomes, strict=True)
    return record_many([(slot, token, outcome, now) for slot, outcome in pairs])


def run_all_due(now: datetime | None = None, *, location: str | None = None) -> int:
    """Everything due, batch after batch (the periodic catch-up and ``run_soon`` target)."""
    total = 0
    while True:
        done = run_batch(now, location=location)
        total += done
        if done < min(BATCH, concurrency()):
            return total
