"""Run the background work: the due-work loop and heartbeat here, a django-q2 cluster beside.

Paging runs in this process (``tocsin.duework``): escalation steps, acknowledgement timeouts
and deliveries are claimed from their rows the moment they are due, not when a queued task or
a one-minute schedule gets round to them. The django-q2 cluster (``manage.py qcluster``, a
child in this process group) runs everything else, and the one-minute schedules that catch up
whatever a hint missed. This process writes the worker's heartbeat from a thread, so liveness
never waits behind the queue; it removes its row when it stops cleanly.

SIGINT or SIGTERM stops both; a cluster that dies is started again (paging goes on meanwhile).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from tocsin import wake
from tocsin.duework import DueWorkLoop, Heartbeat, worker_id
from tocsin.env import env_bool
from tocsin.heap import freeze_startup_objects
from tocsin.scheduling import ensure_schedules

STOP_TIMEOUT = 15
RESTART_DELAY = 2.0
logger = logging.getLogger(__name__)


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
        freeze_startup_objects()  # before the cluster forks: its children inherit it
        cluster = Cluster() if not options["no_cluster"] else None
        # TOCSIN_DUE_WORK=0: a worker for queued tasks only (tests that drive paging by hand).
        due_work = env_bool("TOCSIN_DUE_WORK", True)
        loop = DueWorkLoop() if due_work else DueWorkLoop(works=[], listener=wake.Sleeper())

        def request_stop(signum, frame):
            loop.stop()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        if cluster is not None:
            cluster.start(loop.stopping)

        def healthy() -> bool:
            return (cluster is None or cluster.alive()) and loop.healthy()

        heartbeat = Heartbeat(worker_id(), healthy)
        heartbeat.start()
        try:
            loop.run()
        finally:
            heartbeat.stop()
            if cluster is not None:
                cluster.stop()


class Cluster:
    """The django-q2 cluster as a child process, restarted if it dies.

    Paging does not depend on it (the loop in the parent pages), so a cluster that falls over
    (its broker, Redis, gone for a while) is started again rather than taking paging down
    with it; while it is down the heartbeat says so.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()

    def spawn(self) -> None:
        # Same process group: a signal to the group (Ctrl-C, docker stop) reaches both.
        self.proc = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
            preexec_fn=_die_with_parent,
        )

    def start(self, parent_stopping: threading.Event) -> None:
        self.spawn()

        def watch() -> None:
            while True:
                code = self.proc.wait()
                if self.stopping.is_set() or parent_stopping.is_set():
                    return
                logger.error("the task cluster exited with code %s; restarting it", code)
                if parent_stopping.wait(RESTART_DELAY):
                    return
                self.spawn()

        threading.Thread(target=watch, name="cluster-watch", daemon=True).start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
