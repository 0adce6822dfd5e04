"""Status pages and what they show: groups, components, public incidents and their updates,
maintenance notices; subscribers and the outbox of their notifications.

A page belongs to a team and is private until published. Components map to a monitoring
``Service`` (open incidents and maintenance windows set their status) and/or to a target of an
availability source (``monitoring.availability``: a probe check), whose states and per-day
counts give the status and the uptime bars. A manual status overrides the automatic one until
it expires or is cleared.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from incidents.lifecycle.models import Incident
from monitoring.models import MaintenanceWindow, Service
from tocsin.crypto import EncryptedJSONField
from tocsin.models import Authored, Team, Timestamped

__all__ = [
    "Component",
    "ComponentGroup",
    "ComponentStatus",
    "DeliveryState",
    "MaintenanceNotice",
    "PublicImpact",
    "PublicIncident",
    "PublicIncidentStatus",
    "PublicUpdate",
    "StatusDelivery",
    "StatusPage",
    "StatusSubscriber",
    "SubscriberKind",
]

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", "a colour like #1f6feb")
domain_validator = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    "a host name like status.example.com (lower case, no scheme, no port)",
)


class ComponentStatus(models.TextChoices):
    """Statuspage's five statuses, worst last but one (maintenance is not an outage)."""

    OPERATIONAL = "operational", "Operational"
    DEGRADED = "degraded_performance", "Degraded performance"
    PARTIAL = "partial_outage", "Partial outage"
    MAJOR = "major_outage", "Major outage"
    MAINTENANCE = "under_maintenance", "Under maintenance"


# How bad a status is, for "the worst of" (maintenance ranks between degraded and partial: a
# planned outage is shown as such unless something is actually broken).
SEVERITY = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.DEGRADED: 1,
    ComponentStatus.MAINTENANCE: 2,
    ComponentStatus.PARTIAL: 3,
    ComponentStatus.MAJOR: 4,
}


class PublicIncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class PublicImpact(models.TextChoices):
    NONE = "none", "None"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class StatusPage(Authored):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="status_pages")
    title = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True, help_text="The page is at /status/<slug>/.")
    description = models.TextField(blank=True, help_text="Public: shown under the title.")
    published = models.BooleanField(
        default=False, help_text="Unpublished pages are private: only the team can preview them."
    )
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    services = models.ManyToManyField(
        Service,
        blank=True,
        related_name="status_pages",
        help_text="Services whose incidents responders may publish on this page.",
    )
    # Branding: an uploaded logo (kept in the database, served by the page) or a URL.
    logo = models.BinaryField(null=True, blank=True, editable=False)
    logo_type = models.CharField(max_length=40, blank=True, editable=False)
    logo_url = models.URLField(blank=True, help_text="Used when no logo is uploaded.")
    brand_colour = models.CharField(max_length=7, default="#1f6feb", validators=[colour_validator])
    header_colour = models.CharField(max_length=7, default="#24292f", validators=[colour_validator])
    custom_domain = models.CharField(
        max_length=253,
        null=True,
        blank=True,
        unique=True,
        validators=[domain_validator],
        help_text="Serve the page at / of this host (add it to ALLOWED_HOSTS and point DNS here).",
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    support_url = models.URLField(blank=True, help_text="Public: a 'get help' link.")

    class Meta:
        ordering = ["team__name", "title", "id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("statuspage", args=[self.slug])


class ComponentGroup(models.Model):
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["page", "position", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def team_id(self) -> int:
        return self.page.team_id

    @property
    def team(self) -> Team:
        return self.page.team


class Component(models.Model):
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="components")
    group = models.ForeignKey(
        ComponentGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="components"
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, help_text="Public.")
    position = models.PositiveIntegerField(default=0)
    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="status_components",
        help_text="Its open incidents and maintenance windows set the status.",
    )
    # A target of an availability source (monitoring.availability), e.g. ("probe", check id).
    source_kind = models.CharField(max_length=20, blank=True)
    target_id = models.BigIntegerField(null=True, blank=True)
    manual_status = models.CharField(
        max_length=24,
        choices=ComponentStatus.choices,
        blank=True,
        help_text="Set by hand; blank = automatic.",
    )
    manual_until = models.DateTimeField(
        null=True, blank=True, help_text="When the manual status expires; blank = until cleared."
    )
    show_uptime = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["page", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(source_kind="", target_id__isnull=True)
                | (~Q(source_kind="") & Q(target_id__isnull=False)),
                name="statuscomp_source_and_target",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def team_id(self) -> int:
        return self.page.team_id

    @property
    def team(self) -> Team:
        return self.page.team

    def manual_at(self, now: datetime) -> str:
        """The manual status in force at ``now`` ("" when automatic)."""
        if not self.manual_status:
            return ""
        if self.manual_until is not None and self.manual_until <= now:
            return ""
        return self.manual_status


class PublicIncident(Timestamped):
    """What the public sees of an incident: a title and updates written for them."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="incidents")
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="public_incidents",
    )
    title = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16,
        choices=PublicIncidentStatus.choices,
        default=PublicIncidentStatus.INVESTIGATING,
    )
    impact = models.CharField(
        max_length=10, choices=PublicImpact.choices, default=PublicImpact.MINOR
    )
    components = models.ManyToManyField(Component, blank=True, related_name="public_incidents")
    started_at = models.DateTimeField(default=timezone.now)
    monitoring_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # Public page: "unresolved incidents of this page"; history: "of the last 90 days".
            models.Index(fields=["page", "status", "-started_at"], name="pubincident_page"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "incident"],
                condition=Q(incident__isnull=False),
                name="pubincident_unique_page_incident",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def team_id(self) -> int:
        return self.page.team_id

    @property
    def team(self) -> Team:
        return self.page.team

    @property
    def is_resolved(self) -> bool:
        return self.status == PublicIncidentStatus.RESOLVED


class PublicUpdate(models.Model):
    public_incident = models.ForeignKey(
        PublicIncident, on_delete=models.CASCADE, related_name="updates"
    )
    status = models.CharField(max_length=16, choices=PublicIncidentStatus.choices)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.body[:40]}"

    @property
    def team_id(self) -> int:
        return self.public_incident.page.team_id

    @property
    def team(self) -> Team:
        return self.public_incident.page.team


class MaintenanceNotice(Timestamped):
    """A maintenance window as the public sees it: a public title and note (the window's own
    title and description are internal), or hidden from the page altogether."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="maintenances")
    window = models.ForeignKey(
        MaintenanceWindow, on_delete=models.CASCADE, related_name="public_notices"
    )
    title = models.CharField(max_length=200, default="Scheduled maintenance")
    note = models.TextField(blank=True)
    hidden = models.BooleanField(default=False)

    class Meta:
        ordering = ["page", "id"]
        constraints = [
            models.UniqueConstraint(fields=["page", "window"], name="maintnotice_unique"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def team_id(self) -> int:
        return self.page.team_id


# --- Subscribers and their notifications (see incidents.statuspages.subscribers) -------------


class SubscriberKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class StatusSubscriber(models.Model):
    """Someone told of public updates and maintenance: by e-mail (confirmed by a link sent to
    the address: double opt-in) or by webhook (added by the team's managers). No components
    means every component of the page."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="subscribers")
    kind = models.CharField(max_length=10, choices=SubscriberKind.choices)
    email = models.EmailField(blank=True)
    # {"url": ..., "secret": ...}: URLs may carry tokens, so they are encrypted at rest.
    webhook = EncryptedJSONField()
    components = models.ManyToManyField(Component, blank=True, related_name="subscribers")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["page", "kind", "email", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "email"],
                condition=Q(kind="email"),
                name="statussub_unique_page_email",
            ),
        ]

    def __str__(self) -> str:
        return self.email if self.kind == SubscriberKind.EMAIL else f"webhook #{self.pk}"

    @property
    def team_id(self) -> int:
        return self.page.team_id

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class StatusDelivery(models.Model):
    """One notification to one subscriber: a durable outbox row, retried until sent or given
    up on (``failed``, kept and shown in the admin: nothing is dropped silently)."""

    MAX_ATTEMPTS = 8

    id = models.BigAutoField(primary_key=True)
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="+")
    subscriber = models.ForeignKey(
        StatusSubscriber, on_delete=models.CASCADE, related_name="deliveries"
    )
    # "confirm" (the opt-in mail), "incident" or "maintenance".
    topic = models.CharField(max_length=20)
    dedup_key = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sender: "pending deliveries that are due".
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="statusdelivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} to {self.subscriber}"

    @property
    def team_id(self) -> int:
        return self.page.team_id
