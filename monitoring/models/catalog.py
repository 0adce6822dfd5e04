"""The service catalog and the integrations through which alerts arrive."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from monitoring.ingest import kinds as integration_kinds
from tocsin.models import Team


class Service(models.Model):
    """Something a team runs and gets alerted about: the unit of ownership for alerts."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    runbook_url = models.URLField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "slug"], name="service_unique_team_slug"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:100]
        super().save(*args, **kwargs)


# One member per integration kind module (``monitoring.ingest.kinds``): ALERTMANAGER,
# PROMETHEUS, GRAFANA, EVENTS_V2, GENERIC and INTERNAL (alerts raised from inside Tocsin).
IntegrationKind = models.TextChoices(
    "IntegrationKind",
    [(value.upper(), (value, label)) for value, label in integration_kinds.choices()],
    module=__name__,
)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class IntegrationQuerySet(models.QuerySet):
    def usable(self) -> IntegrationQuerySet:
        return self.filter(revoked_at__isnull=True)


class Integration(models.Model):
    """A door into a service for one sender, guarded by a secret ingest key (shown once)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="integrations")
    kind = models.CharField(max_length=20, choices=IntegrationKind.choices)
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Requests per minute before ingest answers 429 (0 = unlimited).
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_received_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        ordering = ["service__name", "name"]

    def __str__(self) -> str:
        return f"{self.service}: {self.name}"

    @property
    def team(self) -> Team:
        return self.service.team

    @property
    def team_id(self) -> int:
        return self.service.team_id

    @staticmethod
    def new_key() -> str:
        # 32 hex characters: the shape PagerDuty routing keys have, so clients that check
        # the key's format accept ours.
        return secrets.token_hex(16)

    def set_key(self, raw: str) -> None:
        self.key_prefix = raw[:6]
        self.key_hash = hash_key(raw)

    @classmethod
    def by_key(cls, raw: str, kind: str | None = None) -> Integration | None:
        qs = cls.objects.usable().select_related("service", "service__team")
        if kind is not None:
            qs = qs.filter(kind=kind)
        return qs.filter(key_hash=hash_key(raw)).first()
