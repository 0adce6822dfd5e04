"""Background tasks run by the django-q2 worker cluster."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tocsin.events import record
from tocsin.models import Team, WorkerHeartbeat

HEARTBEAT_SCHEDULE_NAME = "tocsin.worker_heartbeat"


def worker_name() -> str:
    # Tasks run in a child of the cluster's sentinel; the parent pid names the cluster.
    return f"{socket.gethostname()}:{os.getppid()}"


def worker_heartbeat() -> str:
    """Prove that this worker cluster executes tasks; /health/ready reads it."""
    now = timezone.now()
    name = worker_name()
    beat, created = WorkerHeartbeat.objects.get_or_create(
        worker=name, defaults={"started_at": now, "last_seen_at": now}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(last_seen_at=now)
    # Forget clusters that stopped long ago so the health page lists the living.
    WorkerHeartbeat.objects.filter(last_seen_at__lt=now - timedelta(days=1)).delete()
    return name


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
