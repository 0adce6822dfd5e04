"""``manage.py backup``: run, verify or drill a plan now, list plans, rotate the backup key.

    manage.py backup list
    manage.py backup run "Nightly"          # in the foreground, with progress
    manage.py backup verify 3 --all         # every chunk, not one slice
    manage.py backup drill 3
    manage.py backup rekey                  # after putting a new key first in TOCSIN_BACKUP_KEYS

The same ``runs.request_run`` / ``runs.execute`` as the schedule and the admin; a plan with a
run in progress is refused, as anywhere else.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backups import runs
from backups.models import BackupPlan, BackupRun, BackupStorage, RunKind, RunStatus
from backups.presentation import human_bytes, human_duration, human_rate


def find_plan(key: str) -> BackupPlan:
    plans = BackupPlan.objects.select_related("service", "target", "storage")
    found = plans.filter(pk=int(key)) if key.isdecimal() else plans.filter(name=key)
    if not found:
        raise CommandError(f"no backup plan {key!r} (manage.py backup list shows them)")
    if len(found) > 1:
        raise CommandError(f"several plans are called {key!r}; give its number")
    return found[0]


def follow(run: BackupRun, write: Any) -> BackupRun:
    """Execute ``run`` here, printing its progress about once a second; returns it finished."""

    def report(progress: BackupRun) -> None:
        percent = f" ({progress.percent:.0f} %)" if progress.percent is not None else ""
        write(f"  {human_bytes(progress.progress_bytes)}{percent} at {human_rate(progress.rate)}")

    runs.execute(run.pk, on_progress=report)
    run.refresh_from_db()
    return run


class Command(BaseCommand):
    help = "Run, verify or drill a backup plan now; list plans; rotate the backup key."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="plans, with their last result")
        for name, what in (("run", "back up"), ("verify", "verify"), ("drill", "restore-drill")):
            action = sub.add_parser(name, help=f"{what} a plan now, in the foreground")
            action.add_argument("plan", help="the plan's number or name")
            if name == "verify":
                action.add_argument("--all", action="store_true", help="read every chunk")
        sub.add_parser("rekey", help="let TOCSIN_BACKUP_KEYS' first key open every repository")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            return self.list_plans()
        if action == "rekey":
            return self.rekey()
        plan = find_plan(options["plan"])
        kind = {"run": RunKind.BACKUP, "verify": RunKind.VERIFY, "drill": RunKind.DRILL}[action]
        try:
            run = runs.request_run(plan, kind, read_all=bool(options.get("all")))
        except runs.PlanBusy as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{run.get_kind_display()} of {plan} ({plan.target.describe()}):")
        started = time.monotonic()
        run = follow(run, self.stdout.write)
        took = human_duration(time.monotonic() - started)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"{run.get_kind_display()} failed after {took}: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"done in {took}: {self.summary(run)}"))

    @staticmethod
    def summary(run: BackupRun) -> str:
        if run.kind == RunKind.BACKUP:
            return (
                f"{human_bytes(run.size_bytes)} read, {human_bytes(run.new_bytes)} new, "
                f"{human_bytes(run.stored_bytes)} stored (snapshot {run.snapshot_id[:12]})"
            )
        if run.kind == RunKind.VERIFY:
            return f"{run.manifest.get('chunks_checked', 0)} chunks read and checked"
        return f"restored in {human_duration(run.rto_seconds)}, tables match the manifest"

    def list_plans(self) -> None:
        for plan in BackupPlan.objects.select_related("service", "target", "storage"):
            last = plan.runs.filter(kind=RunKind.BACKUP).first()
            said = f"{last.get_status_display()} {last.created_at:%Y-%m-%d %H:%M}" if last else "—"
            self.stdout.write(
                f"{plan.pk:>4}  {plan.name:<24} {plan.target.describe():<40} "
                f"{plan.schedule} {plan.timezone:<14} last: {said}"
            )

    def rekey(self) -> None:
        keys = [key.encode() for key in settings.TOCSIN_BACKUP_KEYS]
        if not keys:
            raise CommandError("TOCSIN_BACKUP_KEYS is empty: put the new key first, old after")
        for storage in BackupStorage.objects.filter(encrypted=True):
            repository = storage.repository()
            repository.add_passphrase(keys[0])
            for old in keys[1:]:
                repository.remove_passphrase(old)
            self.stdout.write(f"{storage}: opens with the first key only now")
        self.stdout.write("Remove the old keys from TOCSIN_BACKUP_KEYS.")
