"""Who is on call: the final schedule, and the services that change schedules.

The final schedule of a schedule is one track: at any instant at most one person is on call.
It is built from the layers (each a rotation; higher ``priority`` wins where layers overlap),
with overrides above every layer (the most recently created override wins among overlapping
ones). Rotations are computed in the schedule's time zone on wall-clock time, so a daily 09:00
handoff happens at 09:00 local time on both sides of a DST change and the shift across the
change lasts 23 or 25 hours. Custom rotations count real hours.

Views, the API, the admin and escalation call these functions; they never build schedules
themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from incidents.notifications import outbox as notify
from incidents.oncall.models import (
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleLayerMember,
    ScheduleOverride,
    ShiftSwapRequest,
    SwapStatus,
    _available_time_zones,
)
from tocsin.events import record
from tocsin.models import Team
from tocsin.permissions import Action, can
from tocsin.services import ServiceError

__all__ = [
    "MAX_RANGE",
    "Shift",
    "accept_swap",
    "add_layer",
    "cancel_swap",
    "create_override",
    "create_schedule",
    "decline_swap",
    "delete_layer",
    "delete_override",
    "delete_schedule",
    "layer_shifts",
    "may_override_for",
    "on_call_now",
    "on_call_users",
    "request_swap",
    "schedules_with_layers",
    "shifts",
    "update_layer",
    "update_schedule",
    "with_window_overrides",
]

OVERRIDE = "override"
SOURCE_JOIN = " + "
# The longest window shifts() is asked for by pages and the API (the function itself has no cap).
MAX_RANGE = timedelta(days=90)


@dataclass(frozen=True)
class Shift:
    user: Any
    start: datetime
    end: datetime
    source: str  # the layer's name, or "override"

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


# --- computing ----------------------------------------------------------------------------------


def schedules_with_layers(queryset: QuerySet[Schedule] | None = None) -> QuerySet[Schedule]:
    """Schedules with everything ``shifts`` reads prefetched (layers, members, users)."""
    queryset = Schedule.objects.all() if queryset is None else queryset
    return queryset.prefetch_related(
        Prefetch(
            "layers",
            queryset=ScheduleLayer.objects.prefetch_related(
                Prefetch("members", queryset=ScheduleLayerMember.objects.select_related("user"))
            ),
        )
    )


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time; a time skipped by DST maps to the instant after
    the gap starts (02:30 on a spring-forward day is 03:30), so handoffs never go backwards."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _rotation_slots(
    layer: ScheduleLayer, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterable[tuple[int, datetime, datetime]]:
    """(shift index, slot start, slot end) of every rotation slot overlapping [start, end)."""
    anchor = layer.starts_at.astimezone(UTC)
    if layer.rotation == Rotation.CUSTOM:
        length = timedelta(hours=layer.shift_length_hours or 24)
        k = max(0, int((start - anchor) / length))
        while True:
            slot_start = anchor + k * length
            if slot_start >= end:
                return
            yield k, slot_start, slot_start + length
            k += 1
    step = 7 if layer.rotation == Rotation.WEEKLY else 1
    handoff = layer.handoff_time
    first_day = anchor.astimezone(zone).date()
    if step == 7:
        first_day -= timedelta(days=(first_day.weekday() - layer.handoff_weekday) % 7)
    if _local(first_day, handoff, zone) > anchor:
        first_day -= timedelta(days=step)
    # Jump close to ``start`` instead of walking from the rotation's beginning.
    start_day = start.astimezone(zone).date()
    k = max(0, (start_day - first_day).days // step - 1)
    while True:
        slot_start = _local(first_day + timedelta(days=k * step), handoff, zone)
        if slot_start >= end:
            return
        slot_end = _local(first_day + timedelta(days=(k + 1) * step), handoff, zone)
        if slot_end > start:
            yield k, slot_start, slot_end
        k += 1


def _restricted(
    layer: ScheduleLayer, zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Parts of [start, end) inside the layer's daily time-of-day restriction."""
    if layer.restrict_start is None or layer.restrict_end is None:
        return [(start, end)]
    parts = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        window_start = _local(day, layer.restrict_start, zone)
        next_day = day if layer.restrict_end > layer.restrict_start else day + timedelta(days=1)
        window_end = _local(next_day, layer.restrict_end, zone)
        lo, hi = max(start, window_start), min(end, window_end)
        if lo < hi:
            parts.append((lo, hi))
        day += timedelta(days=1)
    return parts


def layer_shifts(
    layer: ScheduleLayer, start: datetime, end: datetime, zone: ZoneInfo | None = None
) -> list[Shift]:
    """The layer's own shifts clipped to [start, end), before other layers and overrides."""
    users = layer.ordered_users()
    zone = zone or layer.schedule.zone
    # All arithmetic in UTC: Python compares and subtracts two datetimes of the *same* zone on
    # wall-clock time, which is wrong across a DST change.
    start = max(start.astimezone(UTC), layer.starts_at.astimezone(UTC))
    end = end.astimezone(UTC)
    if layer.ends_at is not None:
        end = min(end, layer.ends_at.astimezone(UTC))
    if not users or start >= end:
        return []
    out = []
    for k, slot_start, slot_end in _rotation_slots(layer, zone, start, end):
        lo, hi = max(start, slot_start), min(end, slot_end)
        if lo >= hi:
            continue
        for part_start, part_end in _restricted(layer, zone, lo, hi):
            out.append(Shift(users[k % len(users)], part_start, part_end, layer.name))
    return out


def _window_overrides(schedule: Schedule, start: datetime, end: datetime) -> list[Any]:
    prefetched = getattr(schedule, "window_overrides", None)
    if prefetched is not None:
        return [o for o in prefetched if o.start < end and o.end > start]
    return list(
        schedule.overrides.filter(start__lt=end, end__gt=start)
        .select_related("user")
        .order_by("created_at", "id")
    )


def shifts(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    *,
    merge_sources: bool = False,
) -> list[Shift]:
    """The final schedule over [start, end): one track, gaps left empty (nobody on call).

    Adjacent pieces of the same user from the same source are merged (a one-person rotation is
    one long shift). With ``merge_sources`` adjacent pieces of the same user merge whatever
    their source, which then reads "Days + override" (calendar feeds want one event per
    continuous stretch on call).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("shifts() needs timezone-aware datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        return []
    zone = schedule.zone
    # Lowest priority first, so later candidates override earlier ones.
    layers = sorted(schedule.layers.all(), key=lambda la: (la.priority, -la.pk))
    candidates: list[list[Shift]] = [layer_shifts(la, start, end, zone) for la in layers]
    overrides = sorted(_window_overrides(schedule, start, end), key=lambda o: (o.created_at, o.pk))
    candidates.append(
        [
            Shift(
                o.user,
                max(o.start.astimezone(UTC), start),
                min(o.end.astimezone(UTC), end),
                OVERRIDE,
            )
            for o in overrides
        ]
    )
    points = {start, end}
    for group in candidates:
        for shift in group:
            points.add(shift.start)
            points.add(shift.end)
    bounds = sorted(points)
    out: list[Shift] = []
    for lo, hi in pairwise(bounds):
        winner = None
        for group in candidates:  # priority order; the last one covering [lo, hi) wins
            for shift in group:
                if shift.start <= lo and shift.end >= hi:
                    winner = shift
        if winner is None:
            continue
        last = out[-1] if out else None
        if (
            last is not None
            and last.end == lo
            and last.user.pk == winner.user.pk
            and (merge_sources or last.source == winner.source)
        ):
            source = last.source
            if winner.source not in source.split(SOURCE_JOIN):
                source = f"{source}{SOURCE_JOIN}{winner.source}"
            out[-1] = Shift(last.user, last.start, hi, source)
        else:
            out.append(Shift(winner.user, lo, hi, winner.source))
    return out


def on_call_users(schedule: Schedule, at: datetime | None = None) -> list[Any]:
    """Who is on call at ``at`` (default now): escalation policies page these people."""
    at = (at or timezone.now()).astimezone(UTC)
    return [s.user for s in shifts(schedule, at, at + timedelta(seconds=1)) if s.start <= at]


def on_call_now(team: Team | int, at: datetime | None = None) -> dict[Schedule, list[Any]]:
    """Each of the team's schedules (by name) with who is on call in it now (or at ``at``)."""
    at = at or timezone.now()
    team_id = team.pk if isinstance(team, Team) else team
    queryset = schedules_with_layers(Schedule.objects.filter(team_id=team_id).order_by("name"))
    queryset = with_window_overrides(queryset, at, at + timedelta(seconds=1))
    return {schedule: on_call_users(schedule, at) for schedule in queryset}


def with_window_overrides(
    queryset: QuerySet[Schedule], start: datetime, end: datetime
) -> QuerySet[Schedule]:
    """Prefetch the overrides overlapping [start, end) (one query for any number of schedules)."""
    return queryset.prefetch_related(
        Prefetch(
            "overrides",
            queryset=ScheduleOverride.objects.filter(start__lt=end, end__gt=start)
            .select_related("user")
            .order_by("created_at", "id"),
            to_attr="window_overrides",
        )
    )


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


_SCHEDULE_FIELDS = {"name", "time_zone", "description"}


def update_schedule(schedule: Schedule, *, actor: Any = None, **changes: Any) -> Schedule:
    unknown = set(changes) - _SCHEDULE_FIELDS
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

_LAYER_FIELDS = {
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
}


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
    unknown = set(options) - _LAYER_FIELDS
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
    unknown = set(changes) - _LAYER_FIELDS
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


# --- shift swaps --------------------------------------------------------------------------------


def _swap_payload(swap: ShiftSwapRequest) -> dict[str, Any]:
    return {
        "swap_id": swap.pk,
        "schedule_id": swap.schedule_id,
        "requester": swap.requester.get_username(),
        "proposed_taker": swap.proposed_taker and swap.proposed_taker.get_username(),
        "taker": swap.taker and swap.taker.get_username(),
        "start": swap.start.isoformat(),
        "end": swap.end.isoformat(),
        "status": swap.status,
    }


def _swap_text(swap: ShiftSwapRequest) -> str:
    tz = swap.schedule.zone
    start, end = swap.start.astimezone(tz), swap.end.astimezone(tz)
    return (
        f"{swap.schedule.name}: {start:%a %d %b %H:%M} to {end:%a %d %b %H:%M} "
        f"({swap.schedule.time_zone})"
    )


def _tell_about_swap(swap: ShiftSwapRequest, recipients: Iterable[Any], what: str) -> None:
    """Let the people a swap concerns know, in the transaction that changed it.

    ``what`` is the event kind (``swap.requested``, ``swap.accepted``…); one message per person
    and event, so a retried transition never tells anyone twice.
    """
    verbs = {
        "swap.requested": f"{swap.requester.get_username()} asks you to take a shift",
        "swap.accepted": f"{swap.taker and swap.taker.get_username()} took your shift",
        "swap.declined": "Your shift swap request was declined",
        "swap.cancelled": f"{swap.requester.get_username()} withdrew a shift swap request",
    }
    subject = f"[Tocsin] {verbs[what]}"
    body = "\n".join(
        line
        for line in (
            f"{verbs[what]}.",
            _swap_text(swap),
            f"Note: {swap.note}" if swap.note else "",
        )
        if line
    )
    link = settings.TOCSIN_BASE_URL + reverse("schedule", args=[swap.schedule_id])
    for user in {u.pk: u for u in recipients if u is not None and u.is_active}.values():
        notify.message_user(
            user,
            team_id=swap.schedule.team_id,
            dedup_key=f"swap-{swap.pk}:{what}:user-{user.pk}",
            event_kind=what,
            subject=subject,
            body=body,
            links={"schedule": link},
        )


def _swap_candidates(swap: ShiftSwapRequest) -> list[Any]:
    """Who is asked: the proposed taker, or else everyone else in the schedule's rotations
    who may take a shift."""
    if swap.proposed_taker_id is not None:
        return [swap.proposed_taker]
    members = ScheduleLayerMember.objects.filter(layer__schedule=swap.schedule_id).select_related(
        "user"
    )
    return [
        m.user
        for m in members
        if m.user_id != swap.requester_id and can(m.user, Action.RESPOND, swap.schedule.team_id)
    ]


def request_swap(
    schedule: Schedule,
    requester: Any,
    start: datetime,
    end: datetime,
    *,
    proposed_taker: Any = None,
    note: str = "",
) -> ShiftSwapRequest:
    """Ask for someone to take [start, end), which the requester must be on call for."""
    if not can(requester, Action.RESPOND, schedule.team_id):
        raise PermissionDenied("only responders and managers of the team may swap shifts")
    _check_window(start, end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start < timezone.now() - timedelta(minutes=5):
        raise ServiceError("the shift must not have started yet", "start")
    if proposed_taker is not None:
        if proposed_taker.pk == requester.pk:
            raise ServiceError("propose someone other than yourself", "proposed_taker")
        _require_responder(schedule, proposed_taker, "proposed_taker")
    covered = sum(
        (s.duration for s in shifts(schedule, start, end) if s.user.pk == requester.pk),
        timedelta(),
    )
    if covered < end - start:
        raise ServiceError("you are not on call for the whole of this window", "start")
    with transaction.atomic():
        swap = ShiftSwapRequest.objects.create(
            schedule=schedule,
            requester=requester,
            start=start,
            end=end,
            proposed_taker=proposed_taker,
            note=(note or "")[:200],
        )
        record(
            "swap.requested",
            team=schedule.team_id,
            subject=schedule,
            actor=requester,
            payload=_swap_payload(swap),
        )
        _tell_about_swap(swap, _swap_candidates(swap), "swap.requested")
    return swap


def _lock_open(swap: ShiftSwapRequest) -> ShiftSwapRequest:
    """Re-read the swap under a row lock: two people accepting at once must not both win."""
    locked = (
        ShiftSwapRequest.objects.select_for_update(of=("self",))
        .select_related("schedule", "requester", "proposed_taker")
        .get(pk=swap.pk)
    )
    if locked.status != SwapStatus.OPEN:
        raise ServiceError(f"this swap request is already {locked.status}", None, "conflict")
    return locked


def _sync(target: ShiftSwapRequest, source: ShiftSwapRequest) -> ShiftSwapRequest:
    for field in ("status", "taker_id", "override_id", "decided_at", "decided_by_id"):
        setattr(target, field, getattr(source, field))
    for cached in ("taker", "override", "decided_by"):
        target._state.fields_cache.pop(cached, None)
    return target


def accept_swap(swap: ShiftSwapRequest, taker: Any) -> ShiftSwapRequest:
    """``taker`` takes the shift: an override for them is written in the same transaction."""
    schedule = swap.schedule
    if not can(taker, Action.RESPOND, schedule.team_id):
        raise PermissionDenied("only responders and managers of the team may take shifts")
    with transaction.atomic():
        locked = _lock_open(swap)
        if locked.requester_id == taker.pk:
            raise ServiceError("you cannot take your own shift; cancel the request instead")
        if locked.proposed_taker_id is not None and locked.proposed_taker_id != taker.pk:
            raise PermissionDenied("this request was made to someone else")
        _require_responder(schedule, taker, "taker")
        override = _write_override(
            schedule,
            taker,
            locked.start,
            locked.end,
            actor=taker,
            reason=f"shift swap #{locked.pk} from {locked.requester.get_username()}",
        )
        locked.status = SwapStatus.ACCEPTED
        locked.taker = taker
        locked.override = override
        locked.decided_at = timezone.now()
        locked.decided_by = taker
        locked.save(update_fields=["status", "taker", "override", "decided_at", "decided_by"])
        record(
            "swap.accepted",
            team=schedule.team_id,
            subject=schedule,
            actor=taker,
            payload=_swap_payload(locked),
        )
        _tell_about_swap(locked, [locked.requester], "swap.accepted")
    return _sync(swap, locked)


def decline_swap(swap: ShiftSwapRequest, actor: Any) -> ShiftSwapRequest:
    """The proposed taker says no (managers may decline any open request)."""
    schedule = swap.schedule
    asked = swap.proposed_taker_id is not None and swap.proposed_taker_id == actor.pk
    if not (asked or can(actor, Action.MANAGE, schedule.team_id)):
        raise PermissionDenied("only the person asked, or a manager, may decline")
    return _close(swap, actor, SwapStatus.DECLINED, "swap.declined")


def cancel_swap(swap: ShiftSwapRequest, actor: Any) -> ShiftSwapRequest:
    """The requester withdraws the request (managers may too)."""
    if actor.pk != swap.requester_id and not can(actor, Action.MANAGE, swap.schedule.team_id):
        raise PermissionDenied("only the requester, or a manager, may cancel")
    return _close(swap, actor, SwapStatus.CANCELLED, "swap.cancelled")


def _close(swap: ShiftSwapRequest, actor: Any, status: str, kind: str) -> ShiftSwapRequest:
    with transaction.atomic():
        locked = _lock_open(swap)
        locked.status = status
        locked.decided_at = timezone.now()
        locked.decided_by = actor
        locked.save(update_fields=["status", "decided_at", "decided_by"])
        record(
            kind,
            team=locked.schedule.team_id,
            subject=locked.schedule,
            actor=actor,
            payload=_swap_payload(locked),
        )
        # Declined: the requester hears it. Cancelled: whoever was asked by name does.
        told = [locked.requester] if kind == "swap.declined" else [locked.proposed_taker]
        _tell_about_swap(locked, [u for u in told if u is not None and u.pk != actor.pk], kind)
    return _sync(swap, locked)
