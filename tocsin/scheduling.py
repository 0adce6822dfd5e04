"""Recurring background work, declared in code and synced into django-q2's Schedule table.

Apps call ``register`` from ``AppConfig.ready``; ``manage.py worker`` syncs before starting the
cluster, so a deployment never depends on someone clicking schedules together in the admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    func: str
    minutes: int


_registry: dict[str, ScheduledTask] = {}


def register(name: str, func: str, minutes: int) -> None:
    _registry[name] = ScheduledTask(name, func, minutes)


def registered() -> list[ScheduledTask]:
    return sorted(_registry.values(), key=lambda t: t.name)


def ensure_schedules() -> list[str]:
    """Create or update each registered schedule; returns the names that changed."""
    from django_q.models import Schedule

    changed = []
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


def run_soon(func: str) -> None:
    """Ask a worker to run ``func`` as soon as the current transaction commits.

    Periodic schedules are the safety net (a worker that was down catches up from the rows);
    this is the fast path, so a page does not wait for the next scheduler tick.
    """
    from django.db import transaction
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(func, task_name=f"soon: {func}"))
