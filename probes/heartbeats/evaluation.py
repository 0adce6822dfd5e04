"""The heartbeat evaluation the due-work loop of ``manage.py worker`` runs.

``next_due`` tells the loop when the earliest heartbeat needs a look (one read of the partial
index on ``next_due_at``), so a missed deadline is found within the loop's poll interval (a
second at most), not at the next minute. ``run_due`` claims each due heartbeat with a
conditional UPDATE that moves its ``next_due_at`` a lease ahead: whichever evaluator updates the
row owns it, any other sees "nothing updated" and moves on, so any number of loops is safe. The
owner then locks the row (serialising with pings), evaluates and saves; a loop killed between
claim and save leaves the lease, and the row is looked at again when it runs out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from probes.heartbeats import alerts
from probes.heartbeats.models import STATE_FIELDS, Heartbeat

BATCH = 200
LEASE = timedelta(seconds=60)


def next_due() -> datetime | None:
    return (
        Heartbeat.objects.filter(next_due_at__isnull=False)
        .order_by("next_due_at")
        .values_list("next_due_at", flat=True)
        .first()
    )


def due_ids(now: datetime, limit: int = BATCH) -> list[tuple[int, datetime]]:
    """(id, next_due_at) of the heartbeats due at ``now``, most overdue first."""
    return list(
        Heartbeat.objects.filter(next_due_at__lte=now)
        .order_by("next_due_at")
        .values_list("pk", "next_due_at")[:limit]
    )


def claim(pk: int, due: datetime, now: datetime) -> bool:
    """Take one due heartbeat; False when another evaluator (or a ping) changed it first."""
    return bool(Heartbeat.objects.filter(pk=pk, next_due_at=due).update(next_due_at=now + LEASE))


def evaluate(pk: int, now: datetime) -> None:
    """Evaluate a claimed heartbeat: find what time revealed, tell the pipeline, save."""
    with transaction.atomic():
        heartbeat = Heartbeat.objects.select_for_update().filter(pk=pk).first()
        if heartbeat is None:
            return  # deleted meanwhile
        heartbeat.evaluate(now)
        heartbeat.refresh_state(now)
        if alerts.sync(heartbeat, now):
            heartbeat.refresh_state(now)
        elif heartbeat.next_due_at is not None and heartbeat.next_due_at <= now:
            # The pipeline refused: look again after a lease rather than spin on it.
            heartbeat.next_due_at = now + LEASE
        heartbeat.save(update_fields=STATE_FIELDS)


def run_due(now: datetime | None = None) -> int:
    """One pass of the loop: evaluate what is due; returns how many heartbeats it evaluated."""
    now = now or timezone.now()
    done = 0
    for pk, due in due_ids(now):
        if claim(pk, due, now):
            evaluate(pk, now)
            done += 1
    return done


def evaluate_due(now: datetime | None = None) -> int:
    """Everything due, batch after batch (the periodic safety net and ``run_soon`` target)."""
    total = 0
    while True:
        done = run_due(now)
        total += done
        if done < BATCH:
            return total
