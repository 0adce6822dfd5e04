"""Run the whole of Tocsin in one command: the web server (``manage.py web``, one or several
daphne processes) and a worker cluster.

Ctrl-C (SIGINT) or SIGTERM stops both cleanly; if either process dies, the other is stopped too
and the command exits non-zero, so a supervisor notices.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tocsin.env import env_int, env_str

STOP_TIMEOUT = 15


class Command(BaseCommand):
    help = "Serve the web UI/API/WebSockets with daphne and run the background workers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=env_str("TOCSIN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_int("TOCSIN_PORT", 8000, minimum=1))
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="web processes (default: TOCSIN_WEB_PROCESSES, else as manage.py web decides)",
        )
        parser.add_argument("--no-worker", action="store_true", help="serve the web only")

    def handle(self, *args, **options):
        python = sys.executable
        commands = {
            # `manage.py web`, not daphne itself: the access log redacts ingest keys and
            # X-Forwarded-For is trusted only behind a proxy (TOCSIN_BEHIND_PROXY).
            "web": [
                python,
                str(settings.BASE_DIR / "manage.py"),
                "web",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                *(["--processes", str(options["processes"])] if options["processes"] else []),
            ],
        }
        if not options["no_worker"]:
            commands["worker"] = [python, str(settings.BASE_DIR / "manage.py"), "worker"]

        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        procs = {}
        for name, cmd in commands.items():
            # Own process groups: Ctrl-C reaches us once, and we stop the children in order.
            procs[name] = subprocess.Popen(cmd, start_new_session=True)
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"Tocsin is starting at {url} (Ctrl-C stops it)"))

        failed = None
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    failed = name
                    stopping = True
                    break
            time.sleep(0.2)

        self.stdout.write("stopping…")
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if proc is procs.get("web") else signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if failed:
            raise CommandError(f"the {failed} process exited with code {procs[failed].returncode}")
        self.stdout.write("stopped")
