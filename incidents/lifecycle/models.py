"""Incidents, their alerts and per-service incident settings (grouping, auto-resolve).

The incident's timeline is not stored here: it is the event log (``tocsin.Event``) filtered on
the incident and its alerts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from incidents.escalation.models import EscalationPolicy
from monitoring.models import Alert, Service
from tocsin.models import Team
from tocsin.services import ServiceError

__all__ = [
    "OPEN_STATUSES",
    "GroupingMode",
    "Incident",
    "IncidentAlert",
    "IncidentStatus",
    "Priority",
    "ServiceIncidentSettings",
    "Urgency",
    "UsedActionLink",
]


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Priority(models.TextChoices):
    P1 = "P1", "P1 - critical"
    P2 = "P2", "P2 - high"
    P3 = "P3", "P3 - moderate"
    P4 = "P4", "P4 - low"
    P5 = "P5", "P5 - informational"


class Urgency(models.TextChoices):
    HIGH = "high", "High"
    LOW = "low", "Low"


OPEN_STATUSES = ("triggered", "acknowledged")


class Incident(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="incidents")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="incidents")
    title = models.CharField(max_length=500)
    summary = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED
    )
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    urgency = models.CharField(max_length=4, choices=Urgency.choices, default=Urgency.HIGH)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Alerts with the same key group into one open incident (see incidents.lifecycle.grouping).
    group_key = models.CharField(max_length=255, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_incidents"
    )

    # Escalation: the policy as it was when the incident triggered, and where it stands.
    policy_snapshot = models.JSONField(default=dict, blank=True)
    current_step = models.PositiveSmallIntegerField(default=0)
    # Monotonic across restarts (ack timeout, reopen) so page dedup keys never repeat.
    repeat_round = models.PositiveIntegerField(default=0)
    # The last round this escalation may reach (repeat_times after the round it started in).
    last_round = models.PositiveIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True)
    ack_timeout_at = models.DateTimeField(null=True, blank=True)

    # Response SLAs (see incidents.slas.services). The acknowledge clock runs from the last time the
    # incident became triggered, the resolve clock from when it opened or was last reopened.
    retriggered_at = models.DateTimeField(null=True, blank=True)
    reopened_at = models.DateTimeField(null=True, blank=True)
    # Denormalised from the team's response targets when a clock starts or the priority changes;
    # null = no target. A breach is recorded once per clock: *_breached_at is the marker.
    ack_due_at = models.DateTimeField(null=True, blank=True)
    resolve_due_at = models.DateTimeField(null=True, blank=True)
    ack_breached_at = models.DateTimeField(null=True, blank=True)
    resolve_breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Incident list: "open incidents of these teams, newest first".
            models.Index(fields=["team", "status", "-created_at"], name="incident_team_status"),
            # Escalation worker: "open incidents whose next step is due".
            models.Index(
                fields=["next_step_at"],
                name="incident_next_step_due",
                condition=Q(status__in=OPEN_STATUSES, next_step_at__isnull=False),
            ),
            # Ack timeout: "acknowledged incidents whose acknowledgement ran out".
            models.Index(
                fields=["ack_timeout_at"],
                name="incident_ack_timeout_due",
                condition=Q(status="acknowledged", ack_timeout_at__isnull=False),
            ),
            # SLA loop: "triggered incidents past their acknowledge target, breach not recorded".
            models.Index(
                fields=["ack_due_at"],
                name="incident_ack_due",
                condition=Q(
                    status="triggered", ack_due_at__isnull=False, ack_breached_at__isnull=True
                ),
            ),
            # SLA loop: "open incidents past their resolve target, breach not recorded".
            models.Index(
                fields=["resolve_due_at"],
                name="incident_resolve_due",
                condition=Q(
                    status__in=OPEN_STATUSES,
                    resolve_due_at__isnull=False,
                    resolve_breached_at__isnull=True,
                ),
            ),
            # Reopen window: "recently resolved incidents of this service and group".
            models.Index(fields=["service", "group_key", "-resolved_at"], name="incident_group"),
        ]
        constraints = [
            # Grouping is this constraint: two processes cannot open two incidents for one group.
            models.UniqueConstraint(
                fields=["service", "group_key"],
                condition=Q(status__in=OPEN_STATUSES),
                name="incident_unique_open_group",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("incident", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED

    # --- State transitions: the only code that changes status (callers lock the row first) ---

    def mark_acknowledged(self, user: Any, now: datetime) -> bool:
        """False when already acknowledged (a repeat is harmless, not an error)."""
        if self.status == IncidentStatus.RESOLVED:
            raise ServiceError("a resolved incident cannot be acknowledged", None, "resolved")
        if self.status == IncidentStatus.ACKNOWLEDGED:
            return False
        self.status = IncidentStatus.ACKNOWLEDGED
        self.acknowledged_at = now
        if user is not None and self.assignee_id is None:
            self.assignee = user
        # Escalation stops; the ack timeout (if the policy has one) may restart it.
        self.next_step_at = None
        minutes = int(self.policy_snapshot.get("ack_timeout_minutes") or 0)
        self.ack_timeout_at = now + timedelta(minutes=minutes) if minutes else None
        return True

    def mark_resolved(self, now: datetime, merged_into: Incident | None = None) -> bool:
        if self.status == IncidentStatus.RESOLVED:
            return False
        self.status = IncidentStatus.RESOLVED
        self.resolved_at = now
        self.next_step_at = None
        self.ack_timeout_at = None
        if merged_into is not None:
            if merged_into.pk == self.pk:
                raise ServiceError("an incident cannot be merged into itself", "sources")
            self.merged_into = merged_into
        return True

    def mark_triggered(self, now: datetime) -> bool:
        """Back to triggered (reopen, ack timeout); the caller restarts escalation."""
        if self.status == IncidentStatus.TRIGGERED:
            return False
        if self.merged_into_id is not None:
            raise ServiceError(
                "this incident was merged into another; work on that one", None, "merged"
            )
        if self.status == IncidentStatus.RESOLVED:
            self.reopened_at = now
        self.retriggered_at = now
        self.status = IncidentStatus.TRIGGERED
        self.acknowledged_at = None
        self.resolved_at = None
        self.ack_timeout_at = None
        return True

    # --- Response SLAs (targets come from incidents.slas.services) ---

    @property
    def ack_clock_started_at(self) -> datetime:
        return self.retriggered_at or self.created_at

    @property
    def resolve_clock_started_at(self) -> datetime:
        return self.reopened_at or self.created_at

    def ack_ended_at(self) -> datetime | None:
        """When the acknowledge clock stopped: acknowledged, or resolved without one."""
        return self.acknowledged_at or self.resolved_at

    def set_response_due(
        self,
        ack_minutes: int | None,
        resolve_minutes: int | None,
        *,
        ack: bool = True,
        resolve: bool = True,
        restart: bool = False,
    ) -> None:
        """Due times from target minutes, counted from when each clock started.

        ``restart`` is a new clock (opened, reopened, triggered again): its breach marker goes.
        Without it (a priority change) a recorded breach stays recorded.
        """
        if ack:
            start = self.ack_clock_started_at
            self.ack_due_at = start + timedelta(minutes=ack_minutes) if ack_minutes else None
            if restart:
                self.ack_breached_at = None
        if resolve:
            start = self.resolve_clock_started_at
            self.resolve_due_at = (
                start + timedelta(minutes=resolve_minutes) if resolve_minutes else None
            )
            if restart:
                self.resolve_breached_at = None


class IncidentAlert(models.Model):
    """An alert's place in an incident. An alert belongs to one incident at a time."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alert_links")
    # Indexed by its unique constraint (one incident per alert); no second index of its own.
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, related_name="incident_links", db_index=False
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["incident", "added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["alert"], name="incident_alert_unique_alert"),
        ]

    def __str__(self) -> str:
        return f"{self.alert} in {self.incident}"

    @property
    def team_id(self) -> int:
        return self.incident.team_id


class GroupingMode(models.TextChoices):
    FINGERPRINT = "fingerprint", "One incident per alert (fingerprint)"
    LABELS = "labels", "Alerts with the same values of some labels"
    TIME_WINDOW = "time_window", "All alerts within a time window"


DEFAULT_PRIORITY_MAP = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}
DEFAULT_URGENCY_MAP = {"critical": "high", "error": "high", "warning": "low", "info": "low"}


def _default_priority_map() -> dict[str, str]:
    return dict(DEFAULT_PRIORITY_MAP)


def _default_urgency_map() -> dict[str, str]:
    return dict(DEFAULT_URGENCY_MAP)


class ServiceIncidentSettings(models.Model):
    """How a service's alerts become incidents. A service without a row uses the defaults."""

    service = models.OneToOneField(
        Service, on_delete=models.CASCADE, related_name="incident_settings"
    )
    grouping_mode = models.CharField(
        max_length=12, choices=GroupingMode.choices, default=GroupingMode.FINGERPRINT
    )
    group_labels = models.JSONField(default=list, blank=True)
    window_minutes = models.PositiveIntegerField(default=10)
    auto_resolve = models.BooleanField(
        default=True, help_text="Resolve the incident when all its alerts resolve."
    )
    reopen_window_minutes = models.PositiveIntegerField(
        default=0, help_text="A group firing again this soon after resolving reopens the incident."
    )
    # Storm grouping: a data centre going dark sends thousands of distinct alerts at once; the
    # team needs tens of incidents to work, not thousands of pages. Beyond this many incidents
    # opened for the service within the storm window, new groups join its newest open incident.
    storm_threshold = models.PositiveIntegerField(
        default=20,
        help_text=(
            "At most this many new incidents per storm window; further alert groups join the "
            "newest open incident (0: no limit)."
        ),
    )
    storm_window_minutes = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)], help_text="The storm window, in minutes."
    )
    escalation_policy = models.ForeignKey(
        EscalationPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    priority_map = models.JSONField(default=_default_priority_map, blank=True)
    urgency_map = models.JSONField(default=_default_urgency_map, blank=True)

    class Meta:
        verbose_name_plural = "service incident settings"

    def __str__(self) -> str:
        return f"incident settings of {self.service}"

    @property
    def team_id(self) -> int:
        return self.service.team_id

    @property
    def team(self) -> Team:
        return self.service.team

    def priority_for(self, severity: str) -> str:
        value = (self.priority_map or {}).get(severity) or DEFAULT_PRIORITY_MAP.get(severity, "P3")
        return value if value in Priority.values else Priority.P3

    def urgency_for(self, severity: str) -> str:
        value = (self.urgency_map or {}).get(severity) or DEFAULT_URGENCY_MAP.get(severity, "high")
        return value if value in Urgency.values else Urgency.HIGH

    @classmethod
    def for_service(cls, service: Service) -> ServiceIncidentSettings:
        """The saved settings, or unsaved defaults (nothing is written by reading)."""
        found = cls.objects.filter(service=service).select_related("escalation_policy").first()
        return found or cls(service=service)

    @classmethod
    def for_ingest(cls, service: Service) -> ServiceIncidentSettings:
        """``for_service`` for grouping a batch of alerts, remembered per process as ingest
        keys are (``monitoring.ingest.key_cache``; a save or delete of settings forgets it, see
        ``incidents.apps``): every batch read them, a round trip and an ORM query of their own.
        Only the row is remembered, not its policy: ``policy_if_any`` reads that when an
        incident opens, so a changed policy is never seen stale."""
        from monitoring.ingest import key_cache

        def load() -> ServiceIncidentSettings:
            return cls.objects.filter(service_id=service.pk).first() or cls(service_id=service.pk)

        settings = key_cache.remembered_answer("incident-settings", service.pk, load)
        # The caller's instance, forward only: assigning would also put the settings in
        # ``service.incident_settings``, and so into the remembered integration.
        cls.service.field.set_cached_value(settings, service)
        return settings

    def policy_if_any(self) -> EscalationPolicy | None:
        """The escalation policy, or None — also when it was deleted after these settings were
        read (its deletion sets the column to NULL with a plain UPDATE, which remembered
        settings learn only when they expire)."""
        try:
            return self.escalation_policy
        except EscalationPolicy.DoesNotExist:
            return None


class UsedActionLink(models.Model):
    """A signed action link that has been used; the unique nonce makes links single-use."""

    nonce = models.CharField(max_length=64, unique=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16)
    used_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.action} #{self.incident_id} by {self.user_id}"
