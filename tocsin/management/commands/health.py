"""Print the health of this installation as JSON; exit 1 when a component fails.

Container health checks use it (``manage.py health``), and so can an operator over SSH.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from tocsin.health import components, run_checks


class Command(BaseCommand):
    help = "Check database, migrations, Redis (when configured) and worker heartbeats."

    def add_arguments(self, parser):
        parser.add_argument(
            "--component",
            action="append",
            help="check only this component (repeatable): " + ", ".join(components()),
        )

    def handle(self, *args, **options):
        wanted = options["component"]
        unknown = set(wanted or []) - set(components())
        if unknown:
            raise CommandError(f"unknown component(s): {', '.join(sorted(unknown))}")
        healthy, results = run_checks(only=wanted)
        self.stdout.write(json.dumps({"status": "ok" if healthy else "fail", **results}, indent=2))
        if not healthy:
            raise CommandError("unhealthy")
