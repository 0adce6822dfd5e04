"""``manage.py openslo``: export SLOs as OpenSLO YAML, or import them (all documents or none).

    manage.py openslo export --team payments > slos.yaml
    manage.py openslo export --team payments --service checkout-api
    manage.py openslo import slos.yaml --team payments
    manage.py openslo import slos.yaml --team payments --service checkout-api
    manage.py openslo import - --team payments < slos.yaml

An import reports every error by document and OpenSLO field and changes nothing then; an SLO
whose service and ``metadata.name`` match an existing one is updated. The event log records
each change with no person as its actor (the command line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from monitoring.models import Service, ServiceLevelObjective
from monitoring.slos import openslo
from monitoring.slos.services import SLOInvalid
from tocsin.models import Team


class Command(BaseCommand):
    help = "Export SLOs as OpenSLO YAML, or import OpenSLO YAML (all documents or none)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export")
        export.add_argument("--team", required=True, help="the team's slug")
        export.add_argument("--service", help="only this service's SLOs (its slug)")
        load = sub.add_parser("import")
        load.add_argument("file", help="a YAML file, or - for standard input")
        load.add_argument("--team", required=True, help="the team's slug")
        load.add_argument(
            "--service", help="import into this service (else each document's spec.service)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"no team {options['team']!r}")
        service = None
        if options.get("service"):
            service = Service.objects.filter(team=team, slug=options["service"]).first()
            if service is None:
                raise CommandError(f"no service {options['service']!r} in {team}")
        if options["action"] == "export":
            slos = ServiceLevelObjective.objects.filter(service__team=team).select_related(
                "service"
            )
            if service is not None:
                slos = slos.filter(service=service)
            self.stdout.write(openslo.export(list(slos.order_by("service__name", "name"))))
            return
        path = options["file"]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        try:
            saved = openslo.import_documents(text, team, service=service)
        except openslo.ImportFailed as exc:
            raise CommandError(_lines(exc.errors)) from None
        except SLOInvalid as exc:
            raise CommandError(_lines(exc.fields)) from None
        for slo in saved:
            self.stdout.write(f"{slo.service.slug}/{slo.slug}: {slo.name}")
        self.stdout.write(f"{len(saved)} SLO(s) imported into {team}")


def _lines(errors: dict[str, str]) -> str:
    return "the YAML does not hold; nothing was imported:\n" + "\n".join(
        f"  {field}: {message}" for field, message in errors.items()
    )
