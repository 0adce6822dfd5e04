"""``manage.py rule_pack``: list the ready-made rule packs, or install one for a service.

    manage.py rule_pack list
    manage.py rule_pack install postgresql --service 3
    manage.py rule_pack install host --service 12   # a service of "Tocsin (system)": host metrics

The admin installs a database's pack in one click (Monitored databases → the action); the host
pack belongs to the team that receives the host metrics, "Tocsin (system)".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from monitoring.databases import packs
from monitoring.models import Service
from tocsin.services import ServiceError


class Command(BaseCommand):
    help = "List the ready-made threshold rule packs, or install one for a service."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        install = sub.add_parser("install")
        install.add_argument("pack", choices=packs.pack_names())
        install.add_argument("--service", type=int, required=True, help="the service's id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for name, (title, rules) in packs.PACKS.items():
                self.stdout.write(f"{name} ({title}):")
                for rule in rules:
                    self.stdout.write(
                        f"  {rule.name}: {rule.aggregation}({rule.metric}[{rule.window}s]) "
                        f"{rule.comparison} {rule.threshold:g}"
                        + (f" for {rule.for_seconds}s" if rule.for_seconds else "")
                        + f" — {rule.severity}"
                    )
            return
        service = Service.objects.select_related("team").filter(pk=options["service"]).first()
        if service is None:
            raise CommandError(f"no service {options['service']}")
        try:
            created, skipped = packs.install(options["pack"], service)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{len(created)} rules created for {service} ({service.team})")
        for name in skipped:
            self.stdout.write(f"  already there, left as it is: {name}")
