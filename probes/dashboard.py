"""Probes' dashboard tiles: the state of the checks and of the heartbeats of the user's teams,
with the ones that need a look (down, degraded, late) listed. Registered from
``ProbesConfig.ready``; each costs a fixed number of queries whatever the number of probes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.urls import reverse

from probes.checks.choices import CheckState
from probes.checks.models import Check
from probes.heartbeats.choices import HeartbeatStatus
from probes.heartbeats.models import Heartbeat
from tocsin.dashboard import Tile, in_teams, register, setup

TOP_PROBLEMS = 8
CHECK_STATES = (CheckState.DOWN, CheckState.DEGRADED, CheckState.UNKNOWN, CheckState.UP)
BAD_CHECKS = (CheckState.DOWN, CheckState.DEGRADED)


def checks_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    checks = in_teams(Check.objects.all(), team_ids, "service__team")
    counts = checks.aggregate(
        n_total=Count("id"),
        n_paused=Count("id", filter=Q(paused=True)),
        **{
            f"n_{state.value}": Count("id", filter=Q(state=state, paused=False))
            for state in CHECK_STATES
        },
    )
    if not counts["n_total"]:
        return setup(
            "No checks yet: add an HTTP, TCP, DNS, TLS or database check to a service.",
            reverse("admin:probes_check_add"),
            "Add a check",
        )
    problems = list(
        checks.filter(state__in=BAD_CHECKS, paused=False)
        .select_related("service")
        .only("name", "state", "last_error", "service__name")
        .order_by("state", "-state_changed_at", "id")[:TOP_PROBLEMS]
    )
    states = [
        {"value": s.value, "label": s.label, "count": counts[f"n_{s.value}"]} for s in CHECK_STATES
    ]
    return {"states": states, "paused": counts["n_paused"], "problems": problems}


def heartbeats_context(user: Any, team_ids: set[int] | None, now: datetime) -> dict[str, Any]:
    heartbeats = in_teams(Heartbeat.objects.all(), team_ids, "service__team")
    late = Q(status=HeartbeatStatus.UP, expected_at__lte=now)
    counts = heartbeats.aggregate(
        n_total=Count("id"),
        n_down=Count("id", filter=Q(status=HeartbeatStatus.DOWN)),
        n_late=Count("id", filter=late),
        n_up=Count("id", filter=Q(status=HeartbeatStatus.UP) & ~late),
        n_new=Count("id", filter=Q(status=HeartbeatStatus.NEW)),
        n_paused=Count("id", filter=Q(status=HeartbeatStatus.PAUSED)),
    )
    if not counts["n_total"]:
        return setup(
            "No heartbeats yet: a cron job or worker pings its heartbeat; a missed ping alerts.",
            reverse("admin:probes_heartbeat_add"),
            "Add a heartbeat",
        )
    problems = list(
        heartbeats.filter(Q(status=HeartbeatStatus.DOWN) | late)
        .select_related("service")
        .only("name", "status", "expected_at", "last_ping_at", "service__name")
        .order_by("status", "expected_at", "id")[:TOP_PROBLEMS]
    )
    for heartbeat in problems:
        heartbeat.shown_status = heartbeat.get_status(now)
    states = [
        {"value": value, "label": value, "count": counts[f"n_{value}"]}
        for value in ("down", "late", "up", "new", "paused")
    ]
    return {"states": states, "problems": problems}


def register_tiles() -> None:
    register(
        Tile(
            "checks",
            "Checks",
            70,
            "tocsin/_tile_checks.html",
            checks_context,
            live=("check", "alert"),
            link="probes",
        )
    )
    register(
        Tile(
            "heartbeats",
            "Heartbeats",
            75,
            "tocsin/_tile_heartbeats.html",
            heartbeats_context,
            live=("alert",),
            refresh_seconds=60,  # "late" comes with time, not with an event
            link="heartbeats",
        )
    )
