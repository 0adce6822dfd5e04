"""Background tasks run by the django-q2 worker cluster, and the worker's heartbeat rows."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tocsin.events import record
from tocsin.models import Team, WorkerHeartbeat


def worker_name() -> str:
    # Tasks run in a child of the cluster's sentinel; the parent pid names the cluster.
    return f"{socket.gethostname()}:{os.getppid()}"


def worker_heartbeat(name: str | None = None) -> str:
    """Record that the worker ``name`` is alive now; /health/ready and /metrics read it.

    ``manage.py worker`` calls this from a thread of its own every few seconds
    (``tocsin.duework.Heartbeat``), not through the task queue.
    """
    now = timezone.now()
    name = name or worker_name()
    updated = WorkerHeartbeat.objects.filter(worker=name).update(last_seen_at=now)
    if not updated:
        WorkerHeartbeat.objects.get_or_create(
            worker=name, defaults={"started_at": now, "last_seen_at": now}
        )
    # Forget workers that stopped long ago so the health page lists the living.
    WorkerHeartbeat.objects.filter(last_seen_at__lt=now - timedelta(days=1)).delete()
    return name


def worker_stopped(name: str) -> None:
    """A worker that stops cleanly says so: it is gone at once, not after the stale time."""
    WorkerHeartbeat.objects.filter(worker=name).delete()


def emit_test_event(team_id: int, actor_id: int | None, requested_at: str) -> int:
    team = Team.objects.get(pk=team_id)
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    with transaction.atomic():
        event = record(
            "team.test",
            team=team,
            subject=team,
            actor=actor,
            actor_label=f"worker {worker_name()}",
            payload={"requested_at": requested_at, "message": "Test event from a worker"},
        )
    return event.pk
