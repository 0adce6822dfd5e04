"""Changing schedules: schedules, layers and overrides, each checked and recorded as events.

Who is on call is computed in ``incidents.oncall.rotations``; swaps live in
``incidents.oncall.swaps``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.oncall.models import (
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleLayerMember,
    ScheduleOverride,
    _available_time_zones,
)
from tocsin.events import record
from tocsin.models import Team
from tocsin.permissions import Action, can
from tocsin.services import ServiceError

# --- rules --------------------------------------------------------------------------------------


def _require_responder(schedule: Schedule, user: Any, field: str) -> None:
    """Who goes on call must be able to respond in the team (a viewer cannot acknowledge)."""
    if user is None or not user.is_active or not can(user, Action.RESPOND, schedule.team_id):
        raise ServiceError(
            f"{user and user.get_username()} is not a responder or manager in this team",
            field,
        )


def may_override_for(actor: Any, schedule: Schedule, user: Any) -> bool:
    """Responders may put themselves on call; managers may put anyone on call."""
    if can(actor, Action.MANAGE, schedule.team_id):
        return True
    return user is not None and actor.pk == user.pk and can(actor, Action.RESPOND, schedule.team_id)


def _check_window(start: Any, end: Any) -> None:
    if start is None or end is None:
        raise ServiceError("give both a start and an end", "start" if start is None else "end")
    if start.tzinfo is None or end.tzinfo is None:
        raise ServiceError("times need a time zone (e.g. a trailing Z for UTC)", "start")
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # compare instants, not wall clocks
    if end <= start:
        raise ServiceError("the end must be after the start", "end")
    if end - start > timedelta(days=366):
        raise ServiceError("a window may last a year at most", "end")


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError("give it a name", "name")
    if len(name) > 100:
        raise ServiceError("100 characters at most", "name")
    return name


def _check_zone(time_zone: str) -> None:
    if time_zone not in _available_time_zones():
        raise ServiceError(
            f'unknown time zone "{time_zone}"; use an IANA name like Europe/Berlin', "time_zone"
        )


# --- schedules ----------------------------------------------------------------------------------

_NAME_TAKEN = "this team already has a schedule with this name"


def create_schedule(
    team: Team,
    name: str,
    *,
    time_zone: str = "UTC",
    description: str = "",
    actor: Any = None,
) -> Schedule:
    name = _clean_name(name)
    _check_zone(time_zone)
    try:
        with transaction.atomic():
            schedule = Schedule.objects.create(
                team=team, name=name, time_zone=time_zone, description=description or ""
            )
            record(
                "schedule.created",
                team=team,
                subject=schedule,
                actor=actor,
                payload={"time_zone": time_zone},
            )
    except IntegrityError:
        raise ServiceError(_NAME_TAKEN, "name", "duplicate") from None
    return schedule


SCHEDULE_FIELDS = ("name", "time_zone", "description")


def update_schedule(schedule: Schedule, *, actor: Any = None, **changes: Any) -> Schedule:
    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    if "name" in changes:
        changes["name"] = _clean_name(changes["name"])
    if "time_zone" in changes:
        _check_zone(changes["time_zone"])
    changed = {k: v for k, v in changes.items() if getattr(schedule, k) != v}
    if not changed:
        return schedule
    before = {k: getattr(schedule, k) for k in changed}
    try:
        with transaction.atomic():
            for key, value in changed.items():
                setattr(schedule, key, value)
            schedule.save(update_fields=list(changed))
            record(
                "schedule.updated",
                team=schedule.team_id,
                subject=schedule,
                actor=actor,
                payload={"changes": {k: [before[k], changed[k]] for k in changed}},
            )
    except IntegrityError:
        for key, value in before.items():
            setattr(schedule, key, value)
        raise ServiceError(_NAME_TAKEN, "name", "duplicate") from None
    schedule.__dict__.pop("zone", None)
    return schedule


def delete_schedule(schedule: Schedule, *, actor: Any = None) -> None:
    with transaction.atomic():
        record("schedule.deleted", team=schedule.team_id, subject=schedule, actor=actor)
        schedule.delete()


# --- layers -------------------------------------------------------------------------------------

# A layer's editable settings, in the order forms and the API show them.
LAYER_FIELDS = (
    "name",
    "priority",
    "rotation",
    "shift_length_hours",
    "handoff_time",
    "handoff_weekday",
    "starts_at",
    "ends_at",
    "restrict_start",
    "restrict_end",
)


def _validate_layer(layer: ScheduleLayer) -> None:
    layer.name = _clean_name(layer.name)
    if layer.rotation not in Rotation.values:
        raise ServiceError(
            f'unknown rotation "{layer.rotation}"; use daily, weekly or custom', "rotation"
        )
    if layer.rotation == Rotation.CUSTOM:
        if not layer.shift_length_hours or layer.shift_length_hours < 1:
            raise ServiceError(
                "custom rotations need a shift length in hours", "shift_length_hours"
            )
        if layer.shift_length_hours > 24 * 366:
            raise ServiceError("a shift may last a year at most", "shift_length_hours")
    if not 0 <= int(layer.handoff_weekday) <= 6:
        raise ServiceError("0 (Monday) to 6 (Sunday)", "handoff_weekday")
    if layer.starts_at is None or layer.starts_at.tzinfo is None:
        raise ServiceError("give the rotation start with a time zone", "starts_at")
    if layer.ends_at is not None and layer.ends_at.astimezone(UTC) <= layer.starts_at.astimezone(
        UTC
    ):
        raise ServiceError("the end must be after the rotation start", "ends_at")
    if (layer.restrict_start is None) != (layer.restrict_end is None):
        field = "restrict_end" if layer.restrict_end is None else "restrict_start"
        raise ServiceError("give both ends of the restriction, or neither", field)
    if layer.restrict_start is not None and layer.restrict_start == layer.restrict_end:
        raise ServiceError("the restriction must not be empty", "restrict_end")


def _set_participants(layer: ScheduleLayer, participants: list[Any]) -> None:
    layer.members.all().delete()
    ScheduleLayerMember.objects.bulk_create(
        ScheduleLayerMember(layer=layer, user=user, position=index)
        for index, user in enumerate(participants)
    )
    layer._prefetched_objects_cache = {}


def add_layer(
    schedule: Schedule,
    *,
    name: str,
    participants: list[Any],
    rotation: str = Rotation.WEEKLY,
    actor: Any = None,
    **options: Any,
) -> ScheduleLayer:
    """Add a rotation. ``options`` are the other ScheduleLayer fields (``priority`` defaults to
    one above the current top layer, so a new layer wins until reordered)."""
    unknown = set(options) - set(LAYER_FIELDS)
    if unknown:
        raise ServiceError(f"unknown layer setting {sorted(unknown)[0]}", sorted(unknown)[0])
    for user in participants:
        _require_responder(schedule, user, "participants")
    if "priority" not in options or options["priority"] is None:
        top = max((la.priority for la in schedule.layers.all()), default=-1)
        options["priority"] = top + 1
    layer = ScheduleLayer(schedule=schedule, name=name, rotation=rotation, **options)
    if layer.starts_at is None:
        layer.starts_at = timezone.now()
    _validate_layer(layer)
    with transaction.atomic():
        layer.save()
        _set_participants(layer, participants)
        record(
            "schedule.layer_added",
            team=schedule.team_id,
            subject=schedule,
            actor=actor,
            payload={
                "layer_id": layer.pk,
                "layer": layer.name,
                "rotation": layer.rotation,
                "participants": [u.get_username() for u in participants],
            },
        )
    schedule._prefetched_objects_cache = {}
    return layer


def update_layer(
    layer: ScheduleLayer,
    *,
    actor: Any = None,
    participants: list[Any] | None = None,
    **changes: Any,
) -> ScheduleLayer:
    unknown = set(changes) - set(LAYER_FIELDS)
    if unknown:
        raise ServiceError(f"unknown layer setting {sorted(unknown)[0]}", sorted(unknown)[0])
    schedule = layer.schedule
    if participants is not None:
        for user in participants:
            _require_responder(schedule, user, "participants")
    changed = {k: v for k, v in changes.items() if getattr(layer, k) != v}
    before = {k: getattr(layer, k) for k in changed}
    for key, value in changed.items():
        setattr(layer, key, value)
    try:
        _validate_layer(layer)
    except ServiceError:
        for key, value in before.items():
            setattr(layer, key, value)
        raise
    old_users = [u.get_username() for u in layer.ordered_users()]
    new_users = None if participants is None else [u.get_username() for u in participants]
    if not changed and (new_users is None or new_users == old_users):
        return layer
    payload: dict[str, Any] = {"layer_id": layer.pk, "layer": layer.name}
    if changed:
        payload["changes"] = {k: [str(before[k]), str(changed[k])] for k in changed}
    with transaction.atomic():
        if changed:
            layer.save(update_fields=list(changed))
        if participants is not None and new_users != old_users:
            _set_participants(layer, participants)
            payload["participants"] = [old_users, new_users]
        record(
            "schedule.layer_updated",
            team=schedule.team_id,
            subject=schedule,
            actor=actor,
            payload=payload,
        )
    return layer


def delete_layer(layer: ScheduleLayer, *, actor: Any = None) -> None:
    schedule = layer.schedule
    with transaction.atomic():
        record(
            "schedule.layer_removed",
            team=schedule.team_id,
            subject=schedule,
            actor=actor,
            payload={"layer_id": layer.pk, "layer": layer.name},
        )
        layer.delete()
    schedule._prefetched_objects_cache = {}


# --- overrides ----------------------------------------------------------------------------------


def _override_payload(override: ScheduleOverride) -> dict[str, Any]:
    return {
        "override_id": override.pk,
        "user_id": override.user_id,
        "username": override.user.get_username(),
        "start": override.start.isoformat(),
        "end": override.end.isoformat(),
        "reason": override.reason,
    }


def create_override(
    schedule: Schedule,
    user: Any,
    start: datetime,
    end: datetime,
    *,
    actor: Any,
    reason: str = "",
) -> ScheduleOverride:
    """Put ``user`` on call over [start, end), above every layer.

    Raises PermissionDenied when a responder tries to put someone else on call.
    """
    if actor is not None and not may_override_for(actor, schedule, user):
        raise PermissionDenied("responders may add overrides for themselves only")
    _check_window(start, end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    _require_responder(schedule, user, "user")
    with transaction.atomic():
        override = _write_override(schedule, user, start, end, actor=actor, reason=reason)
    return override


def _write_override(
    schedule: Schedule, user: Any, start: datetime, end: datetime, *, actor: Any, reason: str
) -> ScheduleOverride:
    override = ScheduleOverride.objects.create(
        schedule=schedule,
        user=user,
        start=start,
        end=end,
        reason=(reason or "")[:200],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record(
        "override.created",
        team=schedule.team_id,
        subject=schedule,
        actor=actor,
        payload=_override_payload(override),
    )
    return override


def delete_override(override: ScheduleOverride, *, actor: Any) -> None:
    """Managers remove any override; responders remove their own (or ones they created)."""
    schedule = override.schedule
    own = actor is not None and actor.pk in (override.user_id, override.created_by_id)
    if not (
        can(actor, Action.MANAGE, schedule.team_id)
        or (own and can(actor, Action.RESPOND, schedule.team_id))
    ):
        raise PermissionDenied("responders may remove their own overrides only")
    with transaction.atomic():
        record(
            "override.deleted",
            team=schedule.team_id,
            subject=schedule,
            actor=actor,
            payload=_override_payload(override),
        )
        override.delete()
