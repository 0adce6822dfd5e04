"""The audit chain from the command line: ``audit verify`` (exit status 1 on a broken chain),
``audit seal`` (what the schedule does every minute) and ``audit anchor`` (write an anchor now,
e.g. before a backup)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from tocsin.audit.chain import seal, write_anchor
from tocsin.audit.verify import last_verified_anchor, verify
from tocsin.models import AuditHead


class Command(BaseCommand):
    help = "Verify, seal or anchor the tamper-evident event log (docs/security-audit.md)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("verify", help="recompute the chains; exit 1 when broken")
        check.add_argument(
            "--incremental",
            action="store_true",
            help="start from the last anchor the scheduled check verified, not from the start",
        )
        check.add_argument("--json", action="store_true", help="print the report as JSON")
        actions.add_parser("seal", help="seal the events older than the seal margin")
        actions.add_parser("anchor", help="seal, then store and log an anchor of every chain")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "seal":
            self.stdout.write(f"{seal()} events sealed")
        elif action == "anchor":
            seal()
            with transaction.atomic():
                heads = {h.chain: h for h in AuditHead.objects.select_for_update()}
                if not heads:
                    raise CommandError("nothing sealed yet: no chain to anchor")
                anchor = write_anchor(timezone.now(), heads)
            self.stdout.write(f"anchor {anchor.pk}: {anchor.digest}")
        else:
            self.verify(options)

    def verify(self, options):
        since = last_verified_anchor() if options["incremental"] else None
        report = verify(since=since)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": report.ok,
                        "checked": report.checked,
                        "pending": report.pending,
                        "chains": report.chains,
                        "since_anchor": since.pk if since else None,
                        "problems": [
                            {
                                "kind": p.kind,
                                "chain": p.chain,
                                "event": p.event_id,
                                "detail": p.detail,
                            }
                            for p in report.problems
                        ],
                    }
                )
            )
        else:
            start = f"from anchor {since.pk}" if since else "from the start"
            self.stdout.write(
                f"{report.checked} sealed events in {report.chains} chains checked {start}; "
                f"{report.pending} not sealed yet; {len(report.anchors)} anchors"
            )
            for problem in report.problems:
                self.stdout.write(self.style.ERROR(str(problem)))
        if not report.ok:
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.by_kind().items()))
            raise CommandError(f"the audit chain is broken: {counts}")
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS("audit chain intact"))
