"""Backups as configuration and history: where to (storage), of what (target), when and how
long to keep (plan), and every run.

The engine (``backups.engine``) does the work and knows no models; these rows say what to do and
record what happened. A plan belongs to a service, so its alerts (failed run, stale backup,
failed verify or drill, storage running out) reach the team that owns it. Secrets — a DSN with
its password, S3 keys — are encrypted at rest and never shown back.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now as utc_now

from backups.engine import targets
from backups.engine.repository import Repository
from backups.engine.retention import Policy
from backups.engine.s3 import S3Storage
from backups.engine.storage import LocalStorage, Storage
from tocsin import cron
from tocsin.crypto import EncryptedJSONField
from tocsin.models import Team


def backup_passphrases() -> list[bytes]:
    """TOCSIN_BACKUP_KEYS: the first encrypts new repositories; all are tried to open one."""
    return [key.encode() for key in settings.TOCSIN_BACKUP_KEYS]


class StorageKind(models.TextChoices):
    LOCAL = "local", "Local folder"
    S3 = "s3", "S3-compatible storage"


class BackupStorage(models.Model):
    """One repository: plans storing here share chunks, so each stores only what is new."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="backup_storages")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=StorageKind.choices, default=StorageKind.LOCAL)
    path = models.CharField(
        max_length=500, blank=True, help_text="Local folder: an absolute path on the workers."
    )
    bucket = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=200, blank=True, help_text="Folder inside the bucket.")
    endpoint_url = models.URLField(
        blank=True, help_text="S3-compatible endpoint (MinIO, Ceph, …); empty for AWS."
    )
    region = models.CharField(max_length=40, blank=True, default="us-east-1")
    credentials = EncryptedJSONField(help_text="access_key and secret_key (encrypted at rest).")
    encrypted = models.BooleanField(
        default=True,
        help_text="Encrypt with AES-256-GCM under TOCSIN_BACKUP_KEYS (set before creating).",
    )
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="backup_storage_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == StorageKind.LOCAL:
            if not self.path or not os.path.isabs(self.path):
                raise ValidationError({"path": "A local folder needs an absolute path."})
        elif not self.bucket:
            raise ValidationError({"bucket": "S3-compatible storage needs a bucket."})
        if self.encrypted and not settings.TOCSIN_BACKUP_KEYS:
            raise ValidationError(
                {"encrypted": "Set TOCSIN_BACKUP_KEYS first: encryption needs a key."}
            )

    def engine(self) -> Storage:
        if self.kind == StorageKind.S3:
            secrets = self.credentials or {}
            return S3Storage(
                self.bucket,
                self.prefix,
                endpoint_url=self.endpoint_url or None,
                region=self.region or "us-east-1",
                access_key=secrets.get("access_key", ""),
                secret_key=secrets.get("secret_key", ""),
            )
        return LocalStorage(self.path)

    def repository(self) -> Repository:
        """The repository on this storage, created on first use."""
        keys = backup_passphrases()
        passphrase = keys[0] if self.encrypted and keys else None
        return Repository.open_or_create(self.engine(), passphrase, keys[1:])

    def describe(self) -> str:
        return self.engine().describe()


class TargetKind(models.TextChoices):
    TOCSIN = "tocsin", "Tocsin's own database"
    SQLITE = "sqlite", "SQLite file"
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    DIRECTORY = "directory", "Folder"


# Kinds that read or write files on Tocsin's own machine (its database, any path): only an
# administrator may configure them — a team manager pointing Tocsin at /etc, or at Tocsin's own
# database with every team's data in it, could otherwise read what is not theirs.
HOST_TARGET_KINDS = frozenset({TargetKind.TOCSIN, TargetKind.SQLITE, TargetKind.DIRECTORY})
HOST_ONLY_MESSAGE = "Only an administrator may point Tocsin at files on its own machine."
# Tocsin's own database holds every team's data: where its backups go, and where they are
# restored, is an administrator's decision, whichever team the plan belongs to.
OWN_DATABASE_MESSAGE = (
    "Only an administrator may set up, redirect or restore backups of Tocsin's own database: "
    "it holds every team's data."
)


class BackupTarget(models.Model):
    """What is backed up: a database by DSN, a SQLite file, a folder, or Tocsin itself."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="backup_targets")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=TargetKind.choices)
    path = models.CharField(
        max_length=500, blank=True, help_text="SQLite file or folder: an absolute path."
    )
    secrets = EncryptedJSONField(
        help_text="dsn: postgresql://… or mysql://… with its password (encrypted at rest)."
    )
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="backup_target_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        needs_path = self.kind in (TargetKind.SQLITE, TargetKind.DIRECTORY)
        if needs_path and not (self.path and os.path.isabs(self.path)):
            raise ValidationError({"path": "Give an absolute path."})

    @staticmethod
    def dsn_problem(kind: str, dsn: str) -> str | None:
        """What is wrong with a database target's connection string (None: nothing). Forms
        and serializers ask, as the DSN arrives in a field of their own."""
        if kind not in (TargetKind.POSTGRESQL, TargetKind.MYSQL):
            return None
        if not dsn:
            return "A database target needs its connection string."
        try:
            BackupTarget(kind=kind, secrets={"dsn": dsn}).engine()
        except targets.TargetError as exc:
            return str(exc)
        return None

    def engine(self) -> Any:
        """The engine's target (``backups.engine.targets``) this row describes."""
        if self.kind == TargetKind.TOCSIN:
            return own_database()
        if self.kind == TargetKind.SQLITE:
            return targets.SQLiteTarget(self.path)
        if self.kind == TargetKind.DIRECTORY:
            return targets.DirectoryTarget(self.path)
        dsn = (self.secrets or {}).get("dsn", "")
        if self.kind == TargetKind.POSTGRESQL:
            return targets.PostgreSQLTarget(dsn)
        return targets.MySQLTarget(dsn)

    def describe(self) -> str:
        """Where it is, for people: never the password."""
        try:
            return self.engine().describe()
        except targets.TargetError as exc:
            return f"{self.get_kind_display()} (misconfigured: {exc})"


def own_database() -> Any:
    """Tocsin's own database as a target: SQLite through the online backup API, PostgreSQL
    through pg_dump (MySQL as any MySQL database)."""
    db = settings.DATABASES["default"]
    vendor = db["ENGINE"]
    if "sqlite" in vendor:
        return targets.SQLiteTarget(db["NAME"])
    user, password = quote(db.get("USER") or "", safe=""), quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    where = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or ''}".rstrip(":")
    # The operator's own database: configuration, not user input (no outbound guard).
    if "postgresql" in vendor:
        return targets.PostgreSQLTarget(
            f"postgresql://{credentials}{where}/{db['NAME']}", guarded=False
        )
    return targets.MySQLTarget(f"mysql://{credentials}{where}/{db['NAME']}", guarded=False)


class BackupPlan(models.Model):
    """When a target is backed up to a storage, how long runs are kept, how they are checked."""

    service = models.ForeignKey(
        "monitoring.Service",
        on_delete=models.PROTECT,
        related_name="backup_plans",
        help_text="Alerts about this plan go to this service's team.",
    )
    name = models.CharField(max_length=100)
    target = models.ForeignKey(BackupTarget, on_delete=models.PROTECT, related_name="plans")
    storage = models.ForeignKey(BackupStorage, on_delete=models.PROTECT, related_name="plans")
    schedule = models.CharField(
        max_length=100,
        default="30 2 * * *",
        validators=[cron.validate_cron],
        help_text="Cron expression (minute hour day month weekday), in the time zone below.",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[cron.validate_timezone])
    enabled = models.BooleanField(default=True)
    mode = models.CharField(
        max_length=12,
        choices=[
            ("incremental", "Incremental: store only chunks the storage lacks"),
            ("full", "Full: store every chunk again (repairs a damaged chunk)"),
        ],
        default="incremental",
        help_text="Every run restores on its own either way; a full run rewrites every chunk.",
    )
    # Retention, as restic's forget --keep-* (applied after every successful run).
    keep_last = models.IntegerField(default=0, validators=[MinValueValidator(-1)])
    keep_hourly = models.IntegerField(default=0, validators=[MinValueValidator(-1)])
    keep_daily = models.IntegerField(default=7, validators=[MinValueValidator(-1)])
    keep_weekly = models.IntegerField(default=4, validators=[MinValueValidator(-1)])
    keep_monthly = models.IntegerField(default=12, validators=[MinValueValidator(-1)])
    keep_yearly = models.IntegerField(default=0, validators=[MinValueValidator(-1)])
    keep_within = models.CharField(
        max_length=40, blank=True, help_text="Also keep everything this recent, e.g. 2d or 1m."
    )
    drill_schedule = models.CharField(
        max_length=100,
        blank=True,
        default="0 4 * * 0",
        validators=[cron.validate_cron],
        help_text="When to run a restore drill (cron, same time zone); empty: never on its own.",
    )
    verify_slices = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Each verify reads one slice of this many; every chunk is read every N runs.",
    )
    max_age_hours = models.PositiveIntegerField(
        default=26, help_text="Alert when the last good backup is older than this."
    )
    created_at = models.DateTimeField(default=utc_now, editable=False)

    # -- state written by the runs (not edited) -------------------------------------------------
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_drill_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    verify_rotation = models.PositiveIntegerField(default=0, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    alerted = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["service__team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="backup_plan_unique_name")
        ]
        indexes = [
            # The due-work loop: enabled plans by next run.
            models.Index(
                fields=["next_run_at"], name="backup_plan_due", condition=models.Q(enabled=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def team(self) -> Team:
        return self.service.team

    @property
    def team_id(self) -> int:
        return self.service.team_id

    def clean(self) -> None:
        try:
            self.policy()
        except ValueError as exc:
            raise ValidationError({"keep_within": str(exc)}) from None
        team_id = self.service.team_id if self.service_id else None
        for field in ("target", "storage"):
            related = getattr(self, field, None) if getattr(self, f"{field}_id") else None
            if related is not None and team_id is not None and related.team_id != team_id:
                raise ValidationError({field: "It belongs to another team."})

    def policy(self) -> Policy:
        return Policy(
            last=self.keep_last,
            hourly=self.keep_hourly,
            daily=self.keep_daily,
            weekly=self.keep_weekly,
            monthly=self.keep_monthly,
            yearly=self.keep_yearly,
            within=self.keep_within,
        )

    def next_run_after(self, moment: datetime) -> datetime:
        return cron.next_cron_time(self.schedule, self.timezone, moment)

    def next_drill_after(self, moment: datetime) -> datetime | None:
        if not self.drill_schedule:
            return None
        return cron.next_cron_time(self.drill_schedule, self.timezone, moment)

    def lease_held(self, now: datetime | None = None) -> bool:
        now = now or utc_now()
        return bool(self.lease_expires_at and self.lease_expires_at > now)


class RunKind(models.TextChoices):
    BACKUP = "backup", "Backup"
    VERIFY = "verify", "Verify"
    DRILL = "drill", "Restore drill"
    RESTORE = "restore", "Restore"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class BackupRun(models.Model):
    """One backup, verify, drill or restore of a plan, from request to result."""

    plan = models.ForeignKey(BackupPlan, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=10, choices=RunKind.choices, default=RunKind.BACKUP)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    scheduled = models.BooleanField(default=False, help_text="Started by the schedule.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=utc_now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A restore's source: the backup run whose snapshot it restores.
    source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    # Where a restore writes: a target of the plan's team (the plan's own when empty).
    restore_into = models.ForeignKey(
        BackupTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    snapshot_id = models.CharField(max_length=64, blank=True)
    # Progress (bytes read so far, of about how many) and the figures of a finished run.
    progress_bytes = models.BigIntegerField(default=0)
    expected_bytes = models.BigIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    new_bytes = models.BigIntegerField(null=True, blank=True)
    stored_bytes = models.BigIntegerField(null=True, blank=True)
    chunks = models.PositiveIntegerField(null=True, blank=True)
    new_chunks = models.PositiveIntegerField(null=True, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    rto_seconds = models.FloatField(null=True, blank=True, help_text="Drills: restore time.")
    forgotten_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention removed this run's snapshot."
    )
    lease_token = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A plan's history page and "the last good backup".
            models.Index(fields=["plan", "kind", "-created_at"], name="backup_run_plan_kind"),
            # The reaper: runs still marked running.
            models.Index(
                fields=["status"],
                name="backup_run_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} of {self.plan}"

    @property
    def team_id(self) -> int:
        return self.plan.service.team_id

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def percent(self) -> float | None:
        if self.status == RunStatus.SUCCEEDED:
            return 100.0
        if self.expected_bytes:
            return min(99.0, 100.0 * self.progress_bytes / self.expected_bytes)
        return None

    @property
    def rate(self) -> float | None:
        """Bytes per second, so far (running) or overall (finished)."""
        end = self.finished_at or utc_now()
        if self.started_at is None:
            return None
        seconds = (end - self.started_at).total_seconds()
        done = self.size_bytes if self.size_bytes is not None else self.progress_bytes
        return done / seconds if seconds > 0 else None

    @property
    def dedup_ratio(self) -> float | None:
        if self.size_bytes and self.new_bytes is not None:
            return 1 - self.new_bytes / self.size_bytes
        return None
