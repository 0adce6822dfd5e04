"""Escalation policies: created, changed and deleted by managers, steps and all, in one call
each."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tocsin.events import record
from tocsin.models import Membership
from tocsin.services import ServiceError

# --- Escalation policies (managers) ---------------------------------------------------------

POLICY_FIELDS = (
    "name",
    "description",
    "repeat_times",
    "repeat_after_minutes",
    "ack_timeout_minutes",
)


def _write_steps(policy: Any, steps: list[dict[str, Any]]) -> None:
    from django.core.exceptions import ValidationError

    from incidents.models import EscalationStep, Schedule

    member_ids = set(
        Membership.objects.filter(team_id=policy.team_id).values_list("user_id", flat=True)
    )
    policy.steps.all().delete()
    for position, data in enumerate(steps):
        data = dict(data)
        schedule = data.pop("schedule", None)
        if isinstance(schedule, int):
            schedule = Schedule.objects.filter(pk=schedule, team_id=policy.team_id).first()
            if schedule is None:
                raise ServiceError(
                    "no schedule with this id in the team", f"steps.{position}.schedule"
                )
        if schedule is not None and schedule.team_id != policy.team_id:
            raise ServiceError("the schedule belongs to another team", f"steps.{position}.schedule")
        user_ids = list(data.get("user_ids") or [])
        strangers = [u for u in user_ids if u not in member_ids]
        if strangers:
            raise ServiceError(
                f"not members of the team: {', '.join(map(str, strangers))}",
                f"steps.{position}.user_ids",
            )
        step = EscalationStep(policy=policy, position=position, schedule=schedule, **data)
        try:
            step.full_clean(exclude=["policy", "schedule"])
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            raise ServiceError(messages[0], f"steps.{position}.{field}") from None
        step.save()


def create_policy(
    team: Any, *, actor: Any, name: str, steps: list[dict[str, Any]] | None = None, **fields: Any
) -> Any:
    from incidents.models import EscalationPolicy

    name = (name or "").strip()
    if not name:
        raise ServiceError("give the policy a name", "name", "required")
    try:
        with transaction.atomic():
            policy = EscalationPolicy.objects.create(team=team, name=name, **fields)
            _write_steps(policy, steps or [])
            record(
                "escalation_policy.created",
                team=team,
                subject=policy,
                actor=actor,
                payload={"policy": policy.snapshot()},
            )
    except IntegrityError:
        raise ServiceError(
            "the team already has a policy with this name", "name", "duplicate"
        ) from None
    return policy


def update_policy(
    policy: Any, *, actor: Any, steps: list[dict[str, Any]] | None = None, **changes: Any
) -> Any:
    """Change a policy; incidents already escalating keep the snapshot they started with."""
    before = policy.snapshot()  # the audit trail keeps the previous state too
    try:
        with transaction.atomic():
            for key, value in changes.items():
                if key not in POLICY_FIELDS:
                    raise ServiceError("unknown field", key)
                setattr(policy, key, value)
            policy.updated_at = timezone.now()
            policy.save()
            if steps is not None:
                _write_steps(policy, steps)
            record(
                "escalation_policy.updated",
                team=policy.team_id,
                subject=policy,
                actor=actor,
                payload={"policy": policy.snapshot(), "before": before},
            )
    except IntegrityError:
        raise ServiceError(
            "the team already has a policy with this name", "name", "duplicate"
        ) from None
    return policy


def delete_policy(policy: Any, *, actor: Any) -> None:
    with transaction.atomic():
        record(
            "escalation_policy.deleted",
            team=policy.team_id,
            subject=policy,
            actor=actor,
            payload={"policy": policy.snapshot()},
        )
        policy.delete()
