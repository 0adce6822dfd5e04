"""``manage.py restore``: bring a backup back, from a run Tocsin knows or straight from storage.

    manage.py restore --run 42 --yes                  # into the plan's own target
    manage.py restore --run 42 --into 7 --yes         # into another target of the team
    manage.py restore --from /var/backups/tocsin --list
    manage.py restore --from /var/backups/tocsin --snapshot 3f2a… --own-database --yes

The last form is for Tocsin's own database when it is gone, with Tocsin stopped: it needs
nothing from the database, only the repository (a folder, or ``s3://bucket/prefix`` with
``--endpoint`` and the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables) and, for an encrypted
one, TOCSIN_BACKUP_KEYS. docs/backups.md walks through it.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backups import runs
from backups.engine.repository import Repository, RepositoryError
from backups.engine.s3 import S3Storage
from backups.engine.storage import LocalStorage, Storage, StorageError
from backups.engine.targets import TargetError
from backups.management.commands.backup import follow
from backups.models import (
    BackupRun,
    BackupTarget,
    RunKind,
    RunStatus,
    backup_passphrases,
    own_database,
)
from backups.presentation import human_bytes, human_duration


def storage_at(location: str, endpoint: str | None) -> Storage:
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        return S3Storage(bucket, prefix, endpoint_url=endpoint)
    return LocalStorage(location)


class Command(BaseCommand):
    help = "Restore a backup: a run into a target, or a snapshot from storage into Tocsin itself."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--run", type=int, help="the backup run to restore")
        parser.add_argument("--into", type=int, help="restore into this target (default: own)")
        parser.add_argument("--from", dest="location", help="a repository: folder or s3://…")
        parser.add_argument("--endpoint", help="S3-compatible endpoint URL for --from s3://…")
        parser.add_argument("--list", action="store_true", help="list the repository's snapshots")
        parser.add_argument("--snapshot", help="the snapshot to restore (with --from)")
        parser.add_argument(
            "--own-database", action="store_true", help="restore into Tocsin's own database"
        )
        parser.add_argument("--yes", action="store_true", help="I know this replaces the data")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["location"]:
            return self.from_storage(options)
        if not options["run"]:
            raise CommandError("give --run N, or --from LOCATION (see --help)")
        return self.from_run(options)

    def from_run(self, options: dict[str, Any]) -> None:
        try:
            source = BackupRun.objects.select_related("plan__service").get(
                pk=options["run"], kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED
            )
        except BackupRun.DoesNotExist:
            raise CommandError(f"no good backup run {options['run']}") from None
        if source.forgotten_at:
            raise CommandError(f"run {source.pk}'s snapshot was removed by retention")
        into = None
        if options["into"]:
            into = BackupTarget.objects.filter(
                pk=options["into"], team_id=source.plan.service.team_id
            ).first()
            if into is None:
                raise CommandError(f"no target {options['into']} in the plan's team")
        destination = into or source.plan.target
        if not options["yes"]:
            raise CommandError(
                f"this replaces what {destination.describe()} holds with the backup of "
                f"{source.finished_at:%Y-%m-%d %H:%M}; add --yes to go ahead"
            )
        try:
            run = runs.request_run(source.plan, RunKind.RESTORE, source=source, restore_into=into)
        except runs.PlanBusy as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"restoring run {source.pk} into {destination.describe()}:")
        run = follow(run, self.stdout.write)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"restore failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"restored in {human_duration(run.rto_seconds)}"))

    def from_storage(self, options: dict[str, Any]) -> None:
        try:
            repository = Repository.open(
                storage_at(options["location"], options["endpoint"]), backup_passphrases()
            )
            if options["list"]:
                for snapshot in sorted(repository.snapshots(), key=lambda s: s.created_at):
                    meta = snapshot.metadata
                    self.stdout.write(
                        f"{snapshot.id}  {snapshot.created_at:%Y-%m-%d %H:%M} UTC  "
                        f"{meta.get('kind', '?'):<10} {meta.get('database', ''):<20} "
                        f"{human_bytes(snapshot.size)}"
                    )
                return
            if not options["snapshot"] or not options["own_database"]:
                raise CommandError("give --snapshot ID --own-database (or --list)")
            snapshot = repository.snapshot(options["snapshot"])
            target = own_database()
            if not options["yes"]:
                raise CommandError(
                    f"this replaces Tocsin's database ({target.describe()}) with the snapshot "
                    f"of {snapshot.created_at:%Y-%m-%d %H:%M} UTC. Stop Tocsin's web and "
                    "worker processes first, then add --yes"
                )
            started = time.monotonic()
            target.restore(repository, snapshot)
        except (RepositoryError, StorageError, TargetError) as exc:
            raise CommandError(str(exc)) from None
        took = human_duration(time.monotonic() - started)
        self.stdout.write(
            self.style.SUCCESS(
                f"Tocsin's database restored in {took}; run `manage.py migrate` "
                "if this Tocsin is newer than the backup, then start it"
            )
        )
