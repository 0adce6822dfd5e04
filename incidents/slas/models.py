"""Response targets: how fast a team means to acknowledge and resolve incidents, per priority.

A target belongs to a team and a priority; a target naming a service overrides the team's for
that service (as a whole: a blank number there means "no target" for the service). Incidents
copy the numbers into due times when their clocks start (see ``incidents.slas.services``), so
editing a
target changes what new incidents are held to, not the ones already running.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from incidents.lifecycle.models import Priority
from monitoring.models import Service
from tocsin.models import Team, Timestamped

__all__ = ["MAX_TARGET_MINUTES", "ResponseTarget"]

MAX_TARGET_MINUTES = 90 * 24 * 60  # a quarter: anything longer is not a response target

_MINUTES = [MinValueValidator(1), MaxValueValidator(MAX_TARGET_MINUTES)]


class ResponseTarget(Timestamped):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="response_targets")
    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="response_targets",
        help_text="Blank: every service of the team that has no target of its own.",
    )
    priority = models.CharField(max_length=2, choices=Priority.choices)
    ack_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=_MINUTES,
        help_text="Acknowledge within this many minutes of triggering; blank = no target.",
    )
    resolve_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=_MINUTES,
        help_text="Resolve within this many minutes of opening; blank = no target.",
    )

    class Meta:
        ordering = ["team", F("service").asc(nulls_first=True), "priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "priority"],
                condition=Q(service__isnull=True),
                name="response_target_unique_team_priority",
                violation_error_message="The team already has a target for this priority.",
                violation_error_code="duplicate",
            ),
            models.UniqueConstraint(
                fields=["service", "priority"],
                condition=Q(service__isnull=False),
                name="response_target_unique_service_priority",
                violation_error_message="The service already has a target for this priority.",
                violation_error_code="duplicate",
            ),
            models.CheckConstraint(
                condition=Q(ack_minutes__isnull=True) | Q(ack_minutes__gte=1),
                name="response_target_ack_positive",
            ),
            models.CheckConstraint(
                condition=Q(resolve_minutes__isnull=True) | Q(resolve_minutes__gte=1),
                name="response_target_resolve_positive",
            ),
        ]

    def __str__(self) -> str:
        where = self.service.name if self.service_id else "all services"
        return f"{self.priority} target of {self.team} ({where})"

    def clean(self) -> None:
        if self.service_id and self.team_id and self.service.team_id != self.team_id:
            raise ValidationError({"service": "Choose a service of the target's team."})
