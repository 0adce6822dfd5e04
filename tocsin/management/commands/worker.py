"""Run the background work: the due-work loop and heartbeat here, a django-q2 cluster beside.

Paging runs in this process (``tocsin.duework``): escalation steps, acknowledgement timeouts
and deliveries are claimed from their rows the moment they are due, not when a queued task or
a one-minute schedule gets round to them. The django-q2 cluster (``manage.py qcluster``, a
child in this process group) runs everything else, and the one-minute schedules that catch up
whatever a hint missed. This process writes the worker's heartbeat from a thread, so liveness
never waits behind the queue; it removes its row when it stops cleanly.

SIGINT or SIGTERM stops both; if the cluster dies, this process stops too and exits non-zero.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tocsin.duework import DueWorkLoop, Heartbeat, worker_id
from tocsin.scheduling import ensure_schedules

STOP_TIMEOUT = 15


def _die_with_parent() -> None:
    """In the cluster child: get SIGTERM if this process is killed outright (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Command(BaseCommand):
    help = "Run background work: the due-work loop (paging) and a django-q2 cluster."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-cluster",
            action="store_true",
            help="only the due-work loop and heartbeat (another process runs the cluster)",
        )

    def handle(self, *args, **options):
        changed = ensure_schedules()
        if changed:
            self.stdout.write(f"schedules updated: {', '.join(changed)}")
        # Nothing opened here may be shared with a child; each thread opens its own.
        connections.close_all()
        cluster = None
        if not options["no_cluster"]:
            # Same process group: a signal to the group (Ctrl-C, docker stop) reaches both.
            cluster = subprocess.Popen(
                [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
                preexec_fn=_die_with_parent,
            )

        loop = DueWorkLoop()
        stopped_by_signal = threading.Event()

        def request_stop(signum, frame):
            stopped_by_signal.set()
            loop.stop()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        def watch_cluster() -> None:
            cluster.wait()
            loop.stop()

        if cluster is not None:
            threading.Thread(target=watch_cluster, name="cluster-watch", daemon=True).start()

        def healthy() -> bool:
            return (cluster is None or cluster.poll() is None) and loop.healthy()

        heartbeat = Heartbeat(worker_id(), healthy)
        heartbeat.start()
        try:
            loop.run()
        finally:
            heartbeat.stop()
            if cluster is not None:
                self._stop_cluster(cluster)
        if cluster is not None and not stopped_by_signal.is_set():
            raise CommandError(f"the task cluster exited with code {cluster.returncode}")

    def _stop_cluster(self, cluster: subprocess.Popen) -> None:
        if cluster.poll() is None:
            cluster.send_signal(signal.SIGINT)
        try:
            cluster.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
