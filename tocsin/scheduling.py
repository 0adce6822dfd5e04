"""Recurring background work, declared in code and synced into django-q2's Schedule table.

Apps call ``register`` from ``AppConfig.ready``; ``manage.py worker`` syncs before starting the
cluster, so a deployment never depends on someone clicking schedules together in the admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    func: str
    minutes: int


_registry: dict[str, ScheduledTask] = {}
# Schedules older versions created that must not run any more: the worker's heartbeat is
# written by the worker process itself now (tocsin.duework), not through the task queue.
RETIRED = ("tocsin.worker_heartbeat",)


def register(name: str, func: str, minutes: int) -> None:
    _registry[name] = ScheduledTask(name, func, minutes)


def registered() -> list[ScheduledTask]:
    return sorted(_registry.values(), key=lambda t: t.name)


def ensure_schedules() -> list[str]:
    """Create or update each registered schedule; returns the names that changed."""
    from django_q.models import Schedule

    changed = []
    Schedule.objects.filter(name__in=RETIRED).delete()
    for task in registered():
        schedule, created = Schedule.objects.get_or_create(
            name=task.name,
            defaults={
                "func": task.func,
                "schedule_type": Schedule.MINUTES,
                "minutes": task.minutes,
                "next_run": timezone.now(),
                "repeats": -1,
            },
        )
        if not created and (schedule.func, schedule.minutes) != (task.func, task.minutes):
            schedule.func, schedule.minutes = task.func, task.minutes
            schedule.schedule_type = Schedule.MINUTES
            schedule.save()
            created = True
        if created:
            changed.append(task.name)
    return changed


@dataclass(frozen=True)
class DueWork:
    """Work the due-work loop of ``manage.py worker`` claims from rows when it is due.

    ``run(now)`` claims and does what is due (safe with any number of loops at once) and
    returns how much it started; ``next_due()`` is the earliest time something becomes due
    (None: nothing pending), so the loop sleeps exactly until then. ``func`` is the name
    callers pass to ``run_soon``. All three are dotted paths, resolved in the loop.
    """

    name: str
    func: str
    run: str
    next_due: str
    drain: str = ""  # called once when the loop stops (wait for work in flight)


_due_work: dict[str, DueWork] = {}


def register_due_work(work: DueWork) -> None:
    _due_work[work.func] = work


def due_work() -> list[DueWork]:
    """In registration order: a pass runs them in turn (escalation before the pages it makes)."""
    return list(_due_work.values())


def run_soon(func: str) -> None:
    """Hint that ``func`` has work as soon as the current transaction commits.

    A hint, never an error for the caller: the rows are the truth and the due-work loop (or,
    for other functions, the periodic schedule) finds them anyway. So the wake-up runs after
    commit, robustly (a queue or Redis outage is logged, not raised into a request that has
    already stored its data), and once per function per transaction however often it is asked.
    Functions the due-work loop runs get a wake-up hint (``tocsin.wake``); others a queued task.
    """
    from django.db import transaction

    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        getattr(callback, "wakes", None) == func for _, callback, _ in connection.run_on_commit
    ):
        return  # already asked in this transaction

    def wake() -> None:
        _wake(func)

    wake.wakes = func  # type: ignore[attr-defined]
    transaction.on_commit(wake, robust=True)


def _wake(func: str) -> None:
    if func in _due_work:
        from tocsin import wake

        wake.send(func)
        return
    try:
        from django_q.tasks import async_task

        async_task(func, task_name=f"soon: {func}")
    except Exception as exc:  # broker down: the schedule is the safety net
        log.warning("could not queue %s (%s); its schedule will run it", func, exc)
