"""Benchmark the operations dashboard (home after login) for a responder of many teams.

Seeds a scratch database with TEAMS teams, each with SERVICES_PER_TEAM services, an on-call
schedule, a backup plan with its last backup and drill, an SLO at risk and a watched database;
ALERTS firing alerts, INCIDENTS open incidents, CHECKS checks and HEARTBEATS heartbeats spread
over them. The responder belongs to every team. Then requests the dashboard REPEAT times
in-process (Django's test client: the view, the ORM and the templates, without HTTP) and each
tile's partial (what the page re-fetches on a live event). Reports p50/p95 and the number of
queries, which must not grow with the data. Ends with one JSON line.

    python bench/dashboard.py                                       # SQLite, 100 teams
    DATABASE_URL=postgres://…/scratch python bench/dashboard.py     # a database you can drop
"""

from __future__ import annotations

import gc
import json
import os
import time
from datetime import timedelta

TEAMS = int(os.environ.get("TEAMS", "100"))
SERVICES_PER_TEAM = int(os.environ.get("SERVICES_PER_TEAM", "3"))
ALERTS = int(os.environ.get("ALERTS", "10000"))
INCIDENTS = int(os.environ.get("INCIDENTS", "1000"))
CHECKS = int(os.environ.get("CHECKS", "5000"))
HEARTBEATS = int(os.environ.get("HEARTBEATS", str(max(1, CHECKS // 10))))
REPEAT = int(os.environ.get("REPEAT", "40"))
GOAL_P95_MS = 150

import _scratch  # noqa: E402  (first: Django on a scratch database)

# isort: split
from _pages import measure  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from backups.models import (  # noqa: E402
    BackupPlan,
    BackupRun,
    BackupStorage,
    BackupTarget,
    RunKind,
    RunStatus,
    StorageKind,
    TargetKind,
)
from incidents.models import (  # noqa: E402
    Incident,
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleLayerMember,
)
from monitoring.models import Alert, MonitoredDatabase, Service  # noqa: E402
from monitoring.models.slos import ServiceLevelObjective  # noqa: E402
from probes.checks.models import Check  # noqa: E402
from probes.heartbeats.models import Heartbeat  # noqa: E402
from tocsin.dashboard import tiles  # noqa: E402
from tocsin.models import Membership, Role, Team  # noqa: E402

SEVERITIES = ("critical", "error", "warning", "info")
CHECK_STATES = ("up", "up", "up", "down", "degraded", "unknown")


def seed() -> Client:
    _scratch.fresh_database()
    call_command("collectstatic", interactive=False, verbosity=0)
    now = timezone.now()
    stamp = time.time_ns()
    user = get_user_model().objects.create_user(username=f"bench-{stamp}")
    teams = Team.objects.bulk_create(
        Team(name=f"bench-{stamp}-{t}", slug=f"bench-{stamp}-{t}") for t in range(TEAMS)
    )
    Membership.objects.bulk_create(
        Membership(team=team, user=user, role=Role.RESPONDER) for team in teams
    )
    services = Service.objects.bulk_create(
        Service(team=teams[i % TEAMS], name=f"Service {i}", slug=f"service-{stamp}-{i}")
        for i in range(TEAMS * SERVICES_PER_TEAM)
    )
    Alert.objects.bulk_create(
        (
            Alert(
                team_id=services[i % len(services)].team_id,
                service=services[i % len(services)],
                source="bench",
                fingerprint=f"bench-{i}",
                status="firing",
                severity=SEVERITIES[i % 4],
                summary=f"HighLatency on web-{i % 50}",
                labels={"alertname": "HighLatency", "instance": f"web-{i % 50}"},
                content_hash=f"{i:064x}",
                starts_at=now - timedelta(seconds=i),
                suppression="silenced" if i % 10 == 0 else "",
            )
            for i in range(ALERTS)
        ),
        batch_size=2000,
    )
    Incident.objects.bulk_create(
        (
            Incident(
                team_id=services[j % len(services)].team_id,
                service=services[j % len(services)],
                title=f"Incident {j}: checkout latency above objective",
                status=("triggered", "acknowledged")[j % 2],
                priority=f"P{1 + j % 5}",
                created_at=now - timedelta(minutes=j),
                group_key=f"bench-{j}",
                assignee=user if j % 3 == 0 else None,
            )
            for j in range(INCIDENTS)
        ),
        batch_size=2000,
    )
    Check.objects.bulk_create(
        (
            Check(
                service=services[i % len(services)],
                name=f"check-{i}",
                kind="http",
                config={"url": f"https://example.org/{i}"},
                state=CHECK_STATES[i % len(CHECK_STATES)],
                state_changed_at=now - timedelta(seconds=i),
            )
            for i in range(CHECKS)
        ),
        batch_size=2000,
    )
    Heartbeat.objects.bulk_create(
        (
            Heartbeat(
                service=services[i % len(services)],
                name=f"heartbeat-{i}",
                slug=f"hb-{i}",
                status=("up", "down", "new")[i % 3],
                expected_at=now + timedelta(minutes=5 - i % 10),
            )
            for i in range(HEARTBEATS)
        ),
        batch_size=2000,
    )
    seed_per_team(teams, services, user, now)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def seed_per_team(teams: list[Team], services: list[Service], user, now) -> None:
    """A schedule, a backup plan with a backup and a drill, an SLO and a database per team."""
    schedules = Schedule.objects.bulk_create(
        Schedule(team=team, name=f"Primary {team.pk}") for team in teams
    )
    layers = ScheduleLayer.objects.bulk_create(
        ScheduleLayer(
            schedule=s, name="Days", rotation=Rotation.DAILY, starts_at=now - timedelta(days=3)
        )
        for s in schedules
    )
    ScheduleLayerMember.objects.bulk_create(
        ScheduleLayerMember(layer=layer, user=user, position=0) for layer in layers
    )
    first = {s.team_id: s for s in reversed(services)}
    targets = BackupTarget.objects.bulk_create(
        BackupTarget(team=t, name="db", kind=TargetKind.SQLITE, path="/tmp/db.sqlite3")
        for t in teams
    )
    storages = BackupStorage.objects.bulk_create(
        BackupStorage(team=t, name="local", kind=StorageKind.LOCAL, path="/tmp/r", encrypted=False)
        for t in teams
    )
    plans = BackupPlan.objects.bulk_create(
        BackupPlan(service=first[t.pk], name=f"Nightly {t.pk}", target=g, storage=s)
        for t, g, s in zip(teams, targets, storages, strict=True)
    )
    BackupRun.objects.bulk_create(
        BackupRun(
            plan=p, kind=kind, status=RunStatus.SUCCEEDED, created_at=now - timedelta(hours=h)
        )
        for p in plans
        for h in range(5)
        for kind in (RunKind.BACKUP, RunKind.DRILL)
    )
    ServiceLevelObjective.objects.bulk_create(
        ServiceLevelObjective(
            service=first[t.pk],
            name="Availability",
            slug="availability",
            sli_kind="probe_availability",
            objective="99",
            budget_remaining=(0.1, 0.5, -0.2)[i % 3],
            burn_rate=2.0,
            attainment=0.99,
        )
        for i, t in enumerate(teams)
    )
    MonitoredDatabase.objects.bulk_create(
        MonitoredDatabase(team=t, service=first[t.pk], name=f"db-{t.pk}", kind="postgresql")
        for t in teams
    )


def main() -> None:
    started = time.perf_counter()
    client = seed()
    seeded = time.perf_counter() - started
    gc.collect()  # the seeding's garbage is no part of what a page costs
    pages = {"dashboard": "/"} | {
        f"tile_{t.name.replace('-', '_')}": f"/dashboard/tiles/{t.name}/" for t in tiles()
    }
    figures = {name: measure(client, url, REPEAT) for name, url in pages.items()}
    for name, f in figures.items():
        print(
            f"{name:24} p50 {f['p50_ms']:7.1f} ms   p95 {f['p95_ms']:7.1f} ms   "
            f"cpu p50 {f['cpu_p50_ms']:6.1f} ms   {f['queries']} queries"
        )
    page = figures["dashboard"]
    print(
        json.dumps(
            {
                "bench": "dashboard",
                "database": connection.vendor,
                "teams": TEAMS,
                "alerts": ALERTS,
                "incidents": INCIDENTS,
                "checks": CHECKS,
                "heartbeats": HEARTBEATS,
                "seed_seconds": round(seeded, 1),
                "load_average": round(os.getloadavg()[0], 1),
                "p95_ms": page["p95_ms"],
                "queries": page["queries"],
                "goal_p95_ms": GOAL_P95_MS,
                "under_goal": page["p95_ms"] < GOAL_P95_MS,
                **{f"{name}_{k}": v for name, f in figures.items() for k, v in f.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
