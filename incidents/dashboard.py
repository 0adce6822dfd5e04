"""Incidents' dashboard tiles: open incidents by priority (age, state, assignee), who is on call
now and next in each schedule, and the user's open postmortem action items. Registered from
``IncidentsConfig.ready``; each costs a fixed number of queries whatever the data."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.urls import reverse

from incidents.lifecycle.models import OPEN_STATUSES, Incident, Priority
from incidents.oncall import rotations
from incidents.oncall.models import Schedule
from incidents.postmortems.models import ActionItem, ActionItemStatus
from monitoring.models import Service
from tocsin.dashboard import Tile, in_teams, register, setup

TOP_INCIDENTS = 10
TOP_SCHEDULES = 8
TOP_ITEMS = 10
LOOKAHEAD = timedelta(days=7)  # how far "next on call" looks


def incidents_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    open_incidents = in_teams(Incident.objects.filter(status__in=OPEN_STATUSES), team_ids)
    counts = dict(
        open_incidents.order_by()
        .values_list("priority")
        .annotate(n=Count("id"))
        .values_list("priority", "n")
    )
    if not counts and not in_teams(Service.objects.all(), team_ids).exists():
        return setup(
            "No services yet: incidents open from a service's alerts.",
            reverse("services"),
            "Create a service",
        )
    incidents = list(
        open_incidents.select_related("service", "assignee")
        .defer("summary", "policy_snapshot", "service__description", "service__tags")
        .order_by("priority", "-created_at")[:TOP_INCIDENTS]
    )
    priorities = [
        {"value": p.value, "label": p.label, "count": counts.get(p.value, 0)} for p in Priority
    ]
    return {"priorities": priorities, "total": sum(counts.values()), "incidents": incidents}


def _now_and_next(schedule: Schedule, now: datetime) -> tuple[list[Any], Any]:
    """Who is on call now, and the next shift that hands over to someone else (or None)."""
    track = rotations.shifts(schedule, now, now + LOOKAHEAD)
    current = [s.user for s in track if s.start <= now]
    following = next(
        (s for s in track if s.start > now and s.user.pk not in {u.pk for u in current}), None
    )
    return current, following


def oncall_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    schedules = in_teams(Schedule.objects.select_related("team"), team_ids)
    shown = list(
        rotations.with_window_overrides(
            rotations.schedules_with_layers(schedules), now, now + LOOKAHEAD
        ).order_by("team__name", "name")[:TOP_SCHEDULES]
    )
    if not shown:
        return setup(
            "No on-call schedules yet: add one so that escalation policies know whom to page.",
            reverse("admin:incidents_schedule_add"),
            "Add a schedule",
        )
    for schedule in shown:
        schedule.on_call, schedule.next_shift = _now_and_next(schedule, now)
    more = schedules.count() - len(shown)  # always asked: the same queries whatever the data
    return {"schedules": shown, "more": more, "user": user}


def action_items_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    mine = in_teams(
        ActionItem.objects.filter(owner=user, status=ActionItemStatus.OPEN),
        team_ids,
        "postmortem__team",
    )
    items = list(mine.select_related("postmortem__incident").order_by("due_date", "id")[:TOP_ITEMS])
    today = now.date()
    for item in items:
        item.overdue = item.due_date is not None and item.due_date < today
    total = mine.count()
    return {"items": items, "total": total}


def register_tiles() -> None:
    register(
        Tile(
            "incidents",
            "Open incidents",
            10,
            "tocsin/_tile_incidents.html",
            incidents_context,
            live=("incident",),
            refresh_seconds=60,  # ages move on
            link="incidents",
        )
    )
    register(
        Tile(
            "oncall",
            "On call",
            30,
            "tocsin/_tile_oncall.html",
            oncall_context,
            live=("schedule", "override", "swap"),
            refresh_seconds=300,  # hand-overs happen without an event
            link="schedules",
        )
    )
    register(
        Tile(
            "action-items",
            "My action items",
            40,
            "tocsin/_tile_action_items.html",
            action_items_context,
            live=("postmortem",),
            link="postmortems",
        )
    )
