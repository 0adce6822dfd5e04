"""Start a django-q2 worker cluster after syncing the recurring schedules."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections
from django_q.tasks import async_task

from tocsin.scheduling import ensure_schedules


class Command(BaseCommand):
    help = "Run background workers (django-q2 cluster) with Tocsin's schedules in place."

    def handle(self, *args, **options):
        changed = ensure_schedules()
        if changed:
            self.stdout.write(f"schedules updated: {', '.join(changed)}")
        # Report in at once: /health/ready should not wait for the first scheduled beat.
        async_task("tocsin.tasks.worker_heartbeat", task_name="worker start heartbeat")
        # The cluster forks its pusher and workers: an open database connection must not be
        # carried across fork() (SQLite forbids it; PostgreSQL sockets would be shared).
        connections.close_all()
        call_command("qcluster")
