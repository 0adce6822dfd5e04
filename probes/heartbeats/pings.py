"""What arrives at the ping URLs: the ``Ping`` log and the services' ``PingKey`` for slug URLs."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.timezone import now as utc_now

from probes.heartbeats.choices import PingKind


class PingKey(models.Model):
    """A service's key for slug ping URLs, ``/ping/<key>/<slug>`` (Healthchecks' project ping
    key: the service is the project). Auto-provisioned heartbeats land in this service."""

    service = models.OneToOneField(
        "monitoring.Service", on_delete=models.CASCADE, related_name="heartbeat_ping_key"
    )
    key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        verbose_name = "heartbeat ping key"

    def __str__(self) -> str:
        return f"{self.service}: {self.key}"

    @staticmethod
    def new_key() -> str:
        # 22 URL-safe characters, the shape of Healthchecks' ping keys (never UUID-shaped, so
        # /ping/<key>/<slug> cannot be mistaken for /ping/<uuid>/<exit-status>).
        return secrets.token_urlsafe(16)

    @property
    def team_id(self) -> int:
        return self.service.team_id


class Ping(models.Model):
    """One request to a ping URL, as received (bounded), for the history and the durations."""

    heartbeat = models.ForeignKey(
        "probes.Heartbeat", on_delete=models.CASCADE, related_name="pings"
    )
    received_at = models.DateTimeField(default=utc_now)
    kind = models.CharField(max_length=10, choices=PingKind.choices)
    exit_status = models.SmallIntegerField(null=True, blank=True)
    rid = models.UUIDField(null=True, blank=True)
    method = models.CharField(max_length=10, blank=True)
    remote_addr = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)  # the first TOCSIN_PING_BODY_LIMIT bytes, as text
    body_size = models.PositiveIntegerField(default=0)  # what the client sent, in bytes
    duration = models.FloatField(null=True, blank=True)  # seconds since the matching start

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The heartbeat's history, newest first (admin inline, page, API).
            models.Index(fields=["heartbeat", "-received_at"], name="ping_heartbeat_recent"),
            # services.record_ping: the start of an overlapping run, by its run id.
            models.Index(
                fields=["heartbeat", "rid"], condition=Q(rid__isnull=False), name="ping_run_id"
            ),
            # services.prune_pings: pings older than the retention.
            models.Index(fields=["received_at"], name="ping_received_at"),
        ]

    def __str__(self) -> str:
        return f"{self.heartbeat}: {self.get_kind_display()} at {self.received_at:%Y-%m-%d %H:%M}"

    @property
    def team_id(self) -> int:
        return self.heartbeat.service.team_id

    @property
    def body_truncated(self) -> bool:
        return self.body_size > len(self.body.encode())
