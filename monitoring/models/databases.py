"""Databases whose health Tocsin watches: PostgreSQL, MySQL/MariaDB and Redis by DSN.

A collector reads each one's own statistics on a schedule and records them as metric samples of
the database's team (labelled ``database=<name>``), where the threshold rules — the ready-made
rule packs among them — turn them into alerts. The DSN is encrypted at rest and never shown back.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from monitoring.models.catalog import Service
from tocsin.crypto import EncryptedJSONField
from tocsin.models import Team


class DatabaseKind(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    REDIS = "redis", "Redis"


class MonitoredDatabase(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="monitored_databases")
    service = models.ForeignKey(
        Service,
        on_delete=models.PROTECT,
        related_name="monitored_databases",
        help_text="The service the database belongs to (its rule pack alerts it).",
    )
    name = models.SlugField(max_length=60, help_text="Its samples carry the label database=<name>.")
    kind = models.CharField(max_length=12, choices=DatabaseKind.choices)
    secrets = EncryptedJSONField(help_text="dsn (encrypted at rest).")
    interval_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(60), MaxValueValidator(3600)],
        help_text="How often its statistics are read (the collector runs once a minute).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # -- written by the collector --------------------------------------------------------------
    next_collect_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_collected_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    # The slowest statements at the last collection (pg_stat_statements where installed).
    slow_queries = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="monitored_db_unique_name")
        ]
        indexes = [
            # The collection loop: enabled databases by next collection.
            models.Index(
                fields=["next_collect_at"],
                name="monitored_db_due",
                condition=models.Q(enabled=True),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def dsn(self) -> str:
        return (self.secrets or {}).get("dsn", "")
