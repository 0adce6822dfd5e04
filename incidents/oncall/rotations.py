"""Who is on call: the final schedule of a schedule, computed from its layers and overrides.

The final schedule is one track: at any instant at most one person is on call. It is built from
the layers (each a rotation; higher ``priority`` wins where layers overlap), with overrides above
every layer (the most recently created override wins among overlapping ones). Rotations are
computed in the schedule's time zone on wall-clock time, so a daily 09:00 handoff happens at
09:00 local time on both sides of a DST change and the shift across the change lasts 23 or 25
hours. Custom rotations count real hours.

Views, the API, the admin and escalation call these functions; they never build schedules
themselves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from incidents.oncall.models import (
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleLayerMember,
    ScheduleOverride,
)
from tocsin.models import Team

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
