"""Serve HTTP and WebSockets with daphne: the web half of ``manage.py run`` and the image's command.

See :mod:`tocsin.management.web_server` for what it does differently from plain ``daphne``, and
how ``--processes`` (``TOCSIN_WEB_PROCESSES``; default one per core up to 8 on PostgreSQL, one on
SQLite) shares one port between several daphne processes, each listening on its own socket.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tocsin.env import env_int, env_str
from tocsin.management.web_server import default_processes, serve, serve_inherited_socket


class Command(BaseCommand):
    help = (
        "Serve the web UI, API and WebSockets with daphne, in one or several processes (access "
        "log without credentials; X-Forwarded-* trusted only with TOCSIN_BEHIND_PROXY=1)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=env_str("TOCSIN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_int("TOCSIN_PORT", 8000, minimum=1))
        parser.add_argument(
            "--processes",
            type=int,
            default=env_int("TOCSIN_WEB_PROCESSES", default_processes(), minimum=1),
            help="daphne processes sharing the port (default: TOCSIN_WEB_PROCESSES, else one "
            "per core up to 8 on PostgreSQL, one on SQLite)",
        )
        # Internal: the parent's bound socket, whose address each child listens on.
        parser.add_argument(
            "--fd", type=int, default=None, help="(internal) listen on this socket's address"
        )

    def handle(self, *args, **options):
        behind_proxy = settings.TOCSIN_BEHIND_PROXY
        if options["fd"] is not None:
            serve_inherited_socket(options["fd"], behind_proxy=behind_proxy)
            return
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1")
        try:
            status = serve(
                options["host"],
                options["port"],
                behind_proxy=behind_proxy,
                processes=options["processes"],
            )
        except (ValueError, OSError) as exc:  # a bad address, or the port is taken
            raise CommandError(str(exc)) from exc
        if status:
            raise CommandError("the web processes kept exiting at start-up; see the log above")
