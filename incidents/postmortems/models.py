"""Postmortems: one per incident, with its action items.

The postmortem's ``timeline`` is a curated copy of the incident's timeline (the event log), not
a second history: it is prefilled from the events once, then the team trims and annotates it for
readers. The event log itself stays untouched and complete. Writes go through
``incidents.postmortems.services``, which records a ``postmortem.*`` event about the incident for
each.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from incidents.lifecycle.models import Incident
from tocsin.models import Team

__all__ = [
    "ActionItem",
    "ActionItemStatus",
    "Postmortem",
    "PostmortemStatus",
]


class PostmortemStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"


class Postmortem(models.Model):
    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    # The incident's team, denormalised: permission scoping and the postmortem list filter on it.
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="postmortems")
    status = models.CharField(
        max_length=12, choices=PostmortemStatus.choices, default=PostmortemStatus.DRAFT
    )
    # Markdown, as the team writes it.
    summary = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    contributing_factors = models.TextField(blank=True)
    # Rows {"at": ISO 8601 UTC, "text": str, "event_id": int | None, "kind": str}, oldest first.
    # Structured rather than one Markdown blob so each row keeps its time (sorting, the export's
    # table, time zones in the browser) and where it came from, while text stays editable.
    timeline = models.JSONField(default=list, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Postmortem list: "postmortems of these teams, most recently changed first".
            models.Index(fields=["team", "-updated_at"], name="postmortem_team_updated"),
        ]

    def __str__(self) -> str:
        return f"Postmortem of #{self.incident_id}"

    def get_absolute_url(self) -> str:
        return reverse("postmortem", args=[self.incident_id])

    @property
    def is_published(self) -> bool:
        return self.status == PostmortemStatus.PUBLISHED

    # Which status may follow which. Publishing locks the narrative; reopening (back to draft)
    # unlocks it. Action items stay workable throughout: follow-up work outlives publication.
    TRANSITIONS: dict[str, frozenset[str]] = {
        PostmortemStatus.DRAFT: frozenset({PostmortemStatus.IN_REVIEW, PostmortemStatus.PUBLISHED}),
        PostmortemStatus.IN_REVIEW: frozenset({PostmortemStatus.DRAFT, PostmortemStatus.PUBLISHED}),
        PostmortemStatus.PUBLISHED: frozenset({PostmortemStatus.DRAFT}),
    }

    def may_become(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, frozenset())


class ActionItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"


class ActionItem(models.Model):
    postmortem = models.ForeignKey(
        Postmortem, on_delete=models.CASCADE, related_name="action_items"
    )
    title = models.CharField(max_length=300)
    # A member of the incident's team (checked by the service); blank until someone takes it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="postmortem_action_items",
    )
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=4, choices=ActionItemStatus.choices, default=ActionItemStatus.OPEN
    )
    tracker_url = models.URLField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["postmortem", "position", "id"]
        indexes = [
            # "My open action items", soonest due first (the postmortem list's filter).
            models.Index(
                fields=["owner", "due_date"],
                name="action_item_open_owner",
                condition=Q(status="open"),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def team_id(self) -> int:
        return self.postmortem.team_id

    @property
    def is_open(self) -> bool:
        return self.status == ActionItemStatus.OPEN

    def is_overdue(self, today: date | None = None) -> bool:
        today = today or timezone.now().date()
        return self.is_open and self.due_date is not None and self.due_date < today

    def snapshot(self) -> dict[str, Any]:
        """What the ``postmortem.action_item_*`` events carry."""
        return {
            "action_item_id": self.pk,
            "title": self.title,
            "owner_id": self.owner_id,
            "owner": self.owner.get_username() if self.owner_id and self.owner else "",
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "status": self.status,
            "tracker_url": self.tracker_url,
        }
