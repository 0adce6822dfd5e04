"""Check operations: what the admin, the UI and the API call (one function per operation).

- ``create_check`` / ``update_check``: validate (``full_clean``: config through the kind,
  conditions parsed with the position of an error) and keep the slots in line with the
  locations; a changed configuration forgets the verdicts (unknown until the next run) and
  runs soon.
- ``pause`` / ``resume``: a paused check has no due slots and its alert resolves; a resumed
  one runs within a moment.
- ``run_now``: runs a saved check once, at once, and stores the result like a scheduled run
  (a run of its own, not one of its slots: the schedule is left as it was).
- ``test_config``: runs an unsaved configuration and returns the outcome without storing
  anything (the form's "test this configuration").
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from probes import kinds
from probes.checks import alerts, scheduler
from probes.checks.choices import CheckState, ResultStatus
from probes.checks.models import (
    CHECK_STATE_FIELDS,
    SLOT_FIELDS,
    Check,
    Result,
    Slot,
    parse_conditions,
)
from probes.checks.runner import Plan, RunOutcome, run_plan, run_sync
from tocsin.events import record
from tocsin.events import record_many as record_events
from tocsin.scheduling import run_soon

RUN_SOON = "probes.checks.scheduler.run_all_due"
# Fields whose change makes the verdicts so far meaningless.
# The slot columns that hold its verdicts (reset when the settings that judge change).
VERDICT_FIELDS = ("state", "consecutive_failures", "consecutive_successes", "recent")
JUDGED_BY = ("kind", "config", "conditions", "degraded_conditions", "locations")


def _first_run(check: Check, now: datetime) -> datetime:
    """Soon, spread over a tenth of the interval, so checks created together do not all run
    in the same second."""
    return now + timedelta(seconds=random.uniform(0, min(check.interval * 0.1, 5.0)))


def sync_slots(check: Check, now: datetime) -> list[Slot]:
    """One slot per location the check requires (one ``*`` slot when none)."""
    wanted = check.location_names()
    check.slots.exclude(location__in=wanted).delete()
    have = set(check.slots.values_list("location", flat=True))
    first = None if check.paused else _first_run(check, now)
    Slot.objects.bulk_create(
        [Slot(probe=check, location=name, next_run_at=first) for name in wanted if name not in have]
    )
    return list(check.slots.all())


def _log(action: str, check: Check, actor: Any) -> None:
    """``check.<action>`` in the event log: who, and the check's settings (not its ``config``,
    which may hold passwords and tokens)."""
    record(
        f"check.{action}",
        team=check.service.team_id,
        subject=check,
        actor=actor,
        payload={
            "check_id": check.pk,
            "service_id": check.service_id,
            "name": check.name,
            "kind": check.kind,
            "interval": check.interval,
            "timeout": check.timeout,
            "conditions": check.conditions,
            "paused": check.paused,
        },
    )


def _locked(check: Check) -> Check:
    """The check's row locked for the transaction (its service read along, not locked: a lock
    on the service row would hold up every alert stored for the service meanwhile)."""
    return Check.objects.select_for_update(of=("self",)).select_related("service").get(pk=check.pk)


def create_check(
    *,
    parents: Iterable[Check] = (),
    now: datetime | None = None,
    actor: Any = None,
    **fields: Any,
) -> Check:
    """A new check, validated, with its slots; ValidationError names the wrong fields."""
    now = now or timezone.now()
    check = Check(**fields)
    check.full_clean()
    with transaction.atomic():
        check.save()
        if parents:
            check.parents.set(parents)
        sync_slots(check, now)
        _log("created", check, actor)
        run_soon(RUN_SOON)
    return check


def update_check(
    check: Check, now: datetime | None = None, *, actor: Any = None, **fields: Any
) -> Check:
    """Change a check's settings (validated); see the module docstring for what follows."""
    now = now or timezone.now()
    parents = fields.pop("parents", None)
    with transaction.atomic():
        locked = _locked(check)
        before = {name: getattr(locked, name) for name in JUDGED_BY}
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.full_clean()
        locked.save()
        if parents is not None:
            locked.parents.set(parents)
        configured(locked, before, now, created=False, actor=actor)
    return locked


def configured(
    check: Check, before: dict[str, Any], now: datetime, *, created: bool, actor: Any = None
) -> None:
    """After a person saved a check's settings (admin, API): :func:`saved`, and the event log
    says who did it."""
    with transaction.atomic():
        saved(check, before, now)
        _log("created" if created else "updated", check, actor)


def delete(check: Check, *, actor: Any = None) -> None:
    """Delete a check with its results and rollups; its open alert resolves first."""
    with transaction.atomic():
        locked = pause(check, actor=actor)
        _log("deleted", locked, actor)
        locked.delete()


def saved(check: Check, before: dict[str, Any], now: datetime) -> None:
    """After a check's settings were saved (here or by the admin): slots follow the
    locations; a changed configuration forgets the verdicts; the alert follows the state."""
    sync_slots(check, now)
    # Locked, and only the verdict columns written: a run in flight keeps its claim and
    # records as usual (its verdict then counts under the new settings).
    slots = list(check.slots.select_for_update())
    if any(before.get(name) != getattr(check, name) for name in JUDGED_BY):
        for slot in slots:
            slot.reset()
            fields = list(VERDICT_FIELDS)
            if not check.paused and slot.slot_at is None:
                slot.next_run_at = _first_run(check, now)
                fields.append("next_run_at")
            slot.save(update_fields=fields)
        run_soon(RUN_SOON)
    was = check.state
    if check.aggregate(slots, now):
        record_events([scheduler.state_changed(check, was)])
    alerts.sync(check, now)
    check.save(update_fields=CHECK_STATE_FIELDS)


def pause(check: Check, now: datetime | None = None, *, actor: Any = None) -> Check:
    """Stop running it; an open alert resolves."""
    return _set_paused(check, True, now or timezone.now(), actor)


def resume(check: Check, now: datetime | None = None, *, actor: Any = None) -> Check:
    """Run it again from now (unknown until its first run)."""
    return _set_paused(check, False, now or timezone.now(), actor)


def _set_paused(check: Check, paused: bool, now: datetime, actor: Any = None) -> Check:
    with transaction.atomic():
        locked = _locked(check)
        if locked.paused == paused:
            return locked
        locked.paused = paused
        locked.save(update_fields=["paused"])
        slots = list(locked.slots.select_for_update())
        for slot in slots:
            slot.reset()
            slot.slot_at, slot.claimed_by = None, ""
            slot.next_run_at = None if paused else _first_run(locked, now)
            slot.save(update_fields=SLOT_FIELDS)
        if paused:
            locked.aggregate(slots, now)
        else:
            locked.state, locked.state_changed_at = CheckState.UNKNOWN, now
        alerts.sync(locked, now)
        locked.save(update_fields=CHECK_STATE_FIELDS)
        _log("paused" if paused else "resumed", locked, actor)
        if not paused:
            run_soon(RUN_SOON)
    return locked


def run_now(check: Check, now: datetime | None = None) -> Result:
    """Run a saved check once, synchronously, and store the result. It counts like any run
    (thresholds, alerts) and leaves the schedule as it is. Call it outside a request's async
    context: it runs its own event loop."""
    now = now or timezone.now()
    outcome = run_sync(lambda: run_plan(Plan.of(check), now))
    with transaction.atomic():
        locked = _locked(check)
        slot = Slot.objects.select_for_update().filter(probe=locked).order_by("pk").first()
        result = Result.objects.create(
            probe=locked,
            location=slot.location if slot else "",
            slot_at=now,
            started_at=now,
            status=outcome.status,
            latency_ms=outcome.latency_ms,
            timings=outcome.timings,
            error=outcome.error,
            excerpt=outcome.excerpt,
            explanation=outcome.explanation,
            details={**outcome.details, "run_now": True},
        )
        if slot is not None and not locked.paused:
            slot.consume(outcome.status, locked)
            slot.last_run_at = now
            slot.save(update_fields=SLOT_FIELDS)
            scheduler.apply_outcome(locked, slot, outcome, now)
    return result


def test_config(
    kind: str,
    config: dict[str, Any],
    conditions: list[str] | None = None,
    degraded_conditions: list[str] | None = None,
    *,
    timeout: float = 10.0,
) -> RunOutcome:
    """Run an unsaved check once and return what it found; nothing is stored. Raises
    ``LookupError`` for an unknown kind, ``InvalidConfig`` for a wrong config and
    ``ValidationError`` for a condition that does not parse (with its position)."""
    module = kinds.get(kind)
    clean = module.validate(config)
    parsed = parse_conditions(conditions or kinds.conditions_for(kind, clean), "conditions")
    softer = parse_conditions(
        degraded_conditions or kinds.degraded_conditions_for(kind, clean), "degraded_conditions"
    )
    plan = Plan(kind, clean, parsed, softer, timeout)
    return run_sync(lambda: run_plan(plan))


__all__ = [
    "ResultStatus",
    "create_check",
    "pause",
    "resume",
    "run_now",
    "saved",
    "sync_slots",
    "test_config",
    "update_check",
]
