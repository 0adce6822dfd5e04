"""Notification channels, contact methods, notification rules and deliveries (the outbox).

A page or a channel message is first a ``Delivery`` row (the outbox), written in the
transaction that decided to notify; workers
(``incidents.notifications.outbox.send_due_deliveries``) claim due
rows with a lease, send them, retry with backoff and keep every attempt's outcome on the row.
Secrets (webhook URLs with tokens, routing keys, addresses) are encrypted at rest.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from incidents.notifications import channels
from tocsin.crypto import EncryptedJSONField
from tocsin.models import Team

__all__ = [
    "ChannelKind",
    "ContactMethod",
    "Delivery",
    "DeliveryStatus",
    "NotificationChannel",
    "NotificationRule",
    "RuleUrgency",
]


# Derived from the channel registry: a kind is declared once, in its module under channels/.
ChannelKind = models.TextChoices(
    "ChannelKind", [(kind.upper(), (kind, label)) for kind, label in channels.choices()]
)


class NotificationChannel(models.Model):
    """A team's outbound destination (a Slack channel, a webhook, a PagerDuty service)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="notification_channels")
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    # Validated by the kind's form in incidents.notifications.channels; secret, so never returned
    # by the API.
    config = EncryptedJSONField()
    enabled = models.BooleanField(default=True)
    # Sends per minute before deliveries are deferred (0 = unlimited).
    rate_limit_per_minute = models.PositiveIntegerField(default=30)
    # Circuit breaker: K consecutive failures open it until open_until.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    open_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="notifchannel_unique_team_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def is_open(self, now: datetime | None = None) -> bool:
        """Is the breaker open (deliveries deferred) at ``now``?"""
        return self.open_until is not None and self.open_until > (now or timezone.now())

    @property
    def breaker_state(self) -> str:
        if self.is_open():
            return "open"
        if self.consecutive_failures:
            return "degraded"
        return "closed"


class ContactMethod(models.Model):
    """How one user can be reached: an email address, a personal Slack/webhook URL…"""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods"
    )
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    label = models.CharField(max_length=100, blank=True)
    # The address or URL (and any options), encrypted: {"to": [...]} / {"url": ...}.
    config = EncryptedJSONField()
    verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["user_id", "kind", "id"]

    def __str__(self) -> str:
        return self.label or self.get_kind_display()


class RuleUrgency(models.TextChoices):
    HIGH = "high", "High-urgency incidents"
    LOW = "low", "Low-urgency incidents"
    ANY = "any", "Any incident"


class NotificationRule(models.Model):
    """ "When paged for an incident of this urgency, notify me here after N minutes"."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_rules"
    )
    contact_method = models.ForeignKey(
        ContactMethod, on_delete=models.CASCADE, related_name="rules"
    )
    delay_minutes = models.PositiveIntegerField(default=0)
    urgency = models.CharField(max_length=4, choices=RuleUrgency.choices, default=RuleUrgency.ANY)
    # Read by incidents.notifications.resolved: the "it's over" notice is opt-out per rule.
    notify_on_resolve = models.BooleanField(
        "Tell me when it resolves",
        default=True,
        help_text="When an incident you were paged for resolves, send a “resolved” notice "
        "through this rule's contact method (your earliest such rules for the incident's "
        "urgency are used). Off on every rule that applies: no resolved notice at all.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["user_id", "delay_minutes", "id"]

    def __str__(self) -> str:
        return f"{self.contact_method} after {self.delay_minutes} min ({self.urgency})"

    def applies_to(self, urgency: str) -> bool:
        return self.urgency == RuleUrgency.ANY or self.urgency == urgency


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"


class Delivery(models.Model):
    """One message to one destination: the outbox row, and its log once sent."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    channel = models.ForeignKey(
        NotificationChannel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    contact_method = models.ForeignKey(
        ContactMethod, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The kind used to send when neither channel nor contact method is set (email to the
    # account address of a user without rules).
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    # The same page for the same step is never enqueued twice (the constraint, not luck).
    dedup_key = models.CharField(max_length=255, unique=True)
    event_kind = models.CharField(max_length=32, default="trigger")
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # A page's acknowledge/resolve links (they act as the recipient without signing in), kept
    # encrypted and out of body/payload, which hold placeholders: only the sent copy has them
    # (incidents.notifications.render.seal). Never shown by the admin or the API.
    sealed_links = EncryptedJSONField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When the current attempt passed the point after which the destination may have the message
    # (an e-mail's end of data). Set only by senders that have such a point: a worker that stops
    # after it leaves a row that is settled as sent, never sent again (no duplicate e-mail).
    handed_over_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    MAX_ATTEMPTS = 6

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # send_due_deliveries: "pending rows whose next_attempt_at has come", oldest first.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=models.Q(status="pending"),
            ),
            # send_due_deliveries reclaims "sending rows whose lease expired".
            models.Index(
                fields=["claimed_until"],
                name="delivery_sending_lease",
                condition=models.Q(status="sending"),
            ),
            # Incident page and /api/v1/deliveries/?incident=: an incident's deliveries.
            models.Index(fields=["incident", "-id"], name="delivery_incident"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~(
                    models.Q(channel__isnull=False) & models.Q(contact_method__isnull=False)
                ),
                name="delivery_channel_xor_contact",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject[:60]} ({self.status})"

    @property
    def destination_label(self) -> str:
        if self.channel_id:
            return str(self.channel)
        if self.contact_method_id:
            return f"{self.recipient} via {self.contact_method}"
        return f"{self.recipient} (account email)"
