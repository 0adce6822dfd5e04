"""Serve HTTP and WebSockets with daphne: the web half of ``manage.py run`` and the image's command.

See :mod:`tocsin.management.web_server` for what it does differently from plain ``daphne``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from tocsin.env import env_int, env_str
from tocsin.management.web_server import serve


class Command(BaseCommand):
    help = (
        "Serve the web UI, API and WebSockets with daphne (access log without credentials; "
        "X-Forwarded-* trusted only with TOCSIN_BEHIND_PROXY=1)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=env_str("TOCSIN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_int("TOCSIN_PORT", 8000, minimum=1))

    def handle(self, *args, **options):
        serve(options["host"], options["port"], behind_proxy=settings.TOCSIN_BEHIND_PROXY)
