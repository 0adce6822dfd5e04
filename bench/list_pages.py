"""Benchmark the list pages a responder keeps open: alerts, incidents, the dashboard, their API.

Seeds a scratch database with ALERTS alerts and INCIDENTS incidents over WEEKS weeks, SERVICES
services in TEAMS teams (the responder belongs to all but one), then requests each page REPEAT
times in-process (Django's test client: the view, the ORM and the templates, without HTTP):
the newest page of each list with its common filters, and a deep page (the cursor the Older
links lead to, half-way down). Reports p50/p95 and the number of queries per page, which must
not grow with the data or the depth. Ends with one JSON line.

On PostgreSQL (DATABASE_URL, a database you can throw away) the rows are written by
``INSERT … SELECT generate_series`` — a million alerts in well under a minute — and the tables
are vacuumed and analysed, as autovacuum would leave them. The mix: 1 % of incidents open and
their alerts firing (10,000 at a million), the rest resolved; ten alerts per incident, stored in
batches that share a timestamp (ties the cursor must break); one event per alert. SQLite seeds
the same shape through the ORM (slower: keep it to a few tens of thousands).

    python bench/list_pages.py                                   # SQLite, 20,000 alerts
    DATABASE_URL=postgres://…/scratch ALERTS=100000 INCIDENTS=10000 python bench/list_pages.py
    DATABASE_URL=postgres://…/scratch ALERTS=1000000 INCIDENTS=100000 python bench/list_pages.py
    KEEP=1 DATABASE_URL=… ALERTS=1000000 INCIDENTS=100000 python bench/list_pages.py  # re-measure
"""

from __future__ import annotations

import gc
import json
import os
import time
import zlib
from datetime import timedelta

ALERTS = int(os.environ.get("ALERTS", "20000"))
INCIDENTS = int(os.environ.get("INCIDENTS", str(max(1, ALERTS // 10))))
EVENTS = int(os.environ.get("EVENTS", str(ALERTS)))
TEAMS = int(os.environ.get("TEAMS", "4"))
SERVICES = int(os.environ.get("SERVICES", "20"))
WEEKS = int(os.environ.get("WEEKS", "26"))
# 40 samples: p95 is the 38th, not the slowest one (a full garbage collection of the process
# lands in about one request in 40 and costs ~100 ms of CPU on a shared 2-core machine).
REPEAT = int(os.environ.get("REPEAT", "40"))
OPEN_EVERY = 100  # one incident in a hundred is open (spread by a hash); its alerts fire
BATCH = 10  # alerts stored together share a timestamp
GOAL_P95_MS = 150

import _scratch  # noqa: E402, F401  (first: Django on a scratch database)

# isort: split
from _pages import measure  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Model  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents.models import Incident, IncidentAlert  # noqa: E402
from monitoring.models import Alert, Service  # noqa: E402
from tocsin.api.pagination import PAGE_NUMBER_ROWS  # noqa: E402
from tocsin.keyset import Cursor  # noqa: E402
from tocsin.models import Event, Membership, Role, Team  # noqa: E402


# -- seeding -------------------------------------------------------------------------------------
def _insert_select(model: type[Model], count: int, columns: dict[str, str]) -> None:
    """``INSERT INTO model SELECT … FROM generate_series(1, count) AS i``: ``columns`` maps
    column → SQL over ``i``; every other column gets its field's default (so columns added by
    later migrations need no change here)."""
    names, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        names.append(connection.ops.quote_name(f.column))
        if f.column in columns:
            exprs.append(columns[f.column].replace("%", "%%"))  # SQL modulo, not a parameter
        else:
            exprs.append("%s")
            params.append(f.get_db_prep_save(f.get_default(), connection))
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "
        f"SELECT {', '.join(exprs)} FROM generate_series(1, {count}) AS i"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), "
            f"(SELECT max(id) FROM {model._meta.db_table}))"
        )


def seed_postgresql(teams: list[Team], services: list[Service]) -> None:
    span = int(timedelta(weeks=WEEKS).total_seconds())
    service_team = ", ".join(f"({i}, {s.pk}, {s.team_id})" for i, s in enumerate(services))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_service (n int, id bigint, team bigint)")
        cursor.execute(f"INSERT INTO bench_service VALUES {service_team}")
    # Incident j (1 = newest) of service j % SERVICES; one in OPEN_EVERY is open, picked by a
    # hash so that open incidents spread over the services (every half acknowledged).
    svc = f"(SELECT {{}} FROM bench_service WHERE n = i % {SERVICES})"
    created = f"(now() - make_interval(secs => {span}.0 * i / {INCIDENTS}))"
    is_open = f"(abs(hashtext(i::text)) % {OPEN_EVERY} = 0)"
    _insert_select(
        Incident,
        INCIDENTS,
        {
            "id": "i",
            "team_id": svc.format("team"),
            "service_id": svc.format("id"),
            "title": "'Incident ' || i || ': checkout latency above objective'",
            "status": f"CASE WHEN {is_open} THEN "
            "(CASE WHEN i % 2 = 0 THEN 'acknowledged' ELSE 'triggered' END) ELSE 'resolved' END",
            "priority": "'P' || (1 + i % 5)",
            "created_at": created,
            "acknowledged_at": f"CASE WHEN NOT {is_open} OR i % 2 = 0 "
            f"THEN {created} + interval '3 min' END",
            "resolved_at": f"CASE WHEN NOT {is_open} THEN {created} + interval '40 min' END",
            "group_key": "'bench-' || i",
        },
    )
    # Alert i belongs to incident j = ceil(i * INCIDENTS / ALERTS); it fires when j is open.
    j = f"(((i - 1)::bigint * {INCIDENTS}) / {ALERTS} + 1)"
    asvc = f"(SELECT {{}} FROM bench_service WHERE n = {j} % {SERVICES})"
    batch = f"(now() - make_interval(secs => {span}.0 * (i / {BATCH} * {BATCH}) / {ALERTS}))"
    firing = f"(abs(hashtext({j}::text)) % {OPEN_EVERY} = 0)"
    _insert_select(
        Alert,
        ALERTS,
        {
            "id": "i",
            "team_id": asvc.format("team"),
            "service_id": asvc.format("id"),
            "source": "'bench'",
            "fingerprint": "'bench-' || i",
            "status": f"CASE WHEN {firing} THEN 'firing' ELSE 'resolved' END",
            "severity": "(ARRAY['critical','error','warning','info'])[1 + i % 4]",
            "summary": "'HighLatency on web-' || (i % 50)",
            "labels": "jsonb_build_object('alertname', 'HighLatency', 'instance', "
            "'web-' || (i % 50), 'job', 'checkout')",
            "content_hash": "md5(i::text)",
            "starts_at": batch,
            "ends_at": f"CASE WHEN NOT {firing} THEN {batch} + interval '15 min' END",
            "first_seen_at": batch,
            "last_seen_at": batch,
            "last_change_at": f"CASE WHEN {firing} THEN {batch} "
            f"ELSE {batch} + interval '15 min' END",
        },
    )
    _insert_select(
        IncidentAlert,
        ALERTS,
        {"id": "i", "incident_id": j, "alert_id": "i", "added_at": batch},
    )
    _insert_select(
        Event,
        EVENTS,
        {
            "id": "i",
            "created_at": f"(now() - make_interval(secs => {span}.0 * i / {EVENTS}))",
            "team_id": f"(SELECT team FROM bench_service WHERE n = i % {SERVICES})",
            "kind": "'alert.firing'",
            "subject_type": "'alert'",
            "subject_id": "i::text",
            "subject_label": "'HighLatency on web-' || (i % 50)",
        },
    )
    with connection.cursor() as cursor:
        for model in (Incident, Alert, IncidentAlert, Event):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def seed_orm(teams: list[Team], services: list[Service]) -> None:
    now = timezone.now()
    span = timedelta(weeks=WEEKS).total_seconds()
    incidents = []
    for j in range(1, INCIDENTS + 1):
        created = now - timedelta(seconds=span * j / INCIDENTS)
        is_open = zlib.crc32(str(j).encode()) % OPEN_EVERY == 0
        service = services[j % SERVICES]
        incidents.append(
            Incident(
                id=j,
                team_id=service.team_id,
                service=service,
                title=f"Incident {j}: checkout latency above objective",
                status=("acknowledged" if j % 2 == 0 else "triggered") if is_open else "resolved",
                priority=f"P{1 + j % 5}",
                created_at=created,
                resolved_at=None if is_open else created + timedelta(minutes=40),
                group_key=f"bench-{j}",
            )
        )
    Incident.objects.bulk_create(incidents, batch_size=2000)
    alerts, links = [], []
    for i in range(1, ALERTS + 1):
        j = (i - 1) * INCIDENTS // ALERTS + 1
        at = now - timedelta(seconds=span * (i // BATCH * BATCH) / ALERTS)
        firing = zlib.crc32(str(j).encode()) % OPEN_EVERY == 0
        service = services[j % SERVICES]
        alerts.append(
            Alert(
                id=i,
                team_id=service.team_id,
                service=service,
                source="bench",
                fingerprint=f"bench-{i}",
                status="firing" if firing else "resolved",
                severity=("critical", "error", "warning", "info")[i % 4],
                summary=f"HighLatency on web-{i % 50}",
                labels={"alertname": "HighLatency", "instance": f"web-{i % 50}"},
                content_hash=f"{i:064x}",
                starts_at=at,
                ends_at=None if firing else at + timedelta(minutes=15),
                first_seen_at=at,
                last_seen_at=at,
                last_change_at=at if firing else at + timedelta(minutes=15),
            )
        )
        links.append(IncidentAlert(incident_id=j, alert_id=i, added_at=at))
    Alert.objects.bulk_create(alerts, batch_size=2000)
    IncidentAlert.objects.bulk_create(links, batch_size=2000)


def reuse() -> tuple[Client, dict[str, str]] | None:
    """KEEP=1 on PostgreSQL: measure the rows an earlier run seeded (same ALERTS and
    INCIDENTS) instead of seeding them again — minutes at a million."""
    user = get_user_model().objects.filter(username__startswith="bench-").first()
    if user is None or Alert.objects.count() != ALERTS or Incident.objects.count() != INCIDENTS:
        return None
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client, deep_cursors(list(Team.objects.filter(memberships__user=user)))


def seed() -> tuple[Client, dict[str, str]]:
    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql" and os.environ.get("KEEP") == "1":
        call_command("collectstatic", interactive=False, verbosity=0)
        if (kept := reuse()) is not None:
            return kept
    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)  # a scratch database, reused
    call_command("collectstatic", interactive=False, verbosity=0)
    stamp = time.time_ns()
    teams = [Team.objects.create(name=f"bench-{stamp}-{t}") for t in range(TEAMS)]
    services = Service.objects.bulk_create(
        Service(team=teams[i % TEAMS], name=f"Service {i}", slug=f"service-{stamp}-{i}")
        for i in range(SERVICES)
    )
    if connection.vendor == "postgresql":
        seed_postgresql(teams, services)
    else:
        seed_orm(teams, services)
    user = get_user_model().objects.create_user(username=f"bench-{stamp}")
    for team in teams[: max(1, TEAMS - 1)]:
        Membership.objects.create(team=team, user=user, role=Role.RESPONDER)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client, deep_cursors(teams[: max(1, TEAMS - 1)])


def deep_cursors(visible: list[Team]) -> dict[str, str]:
    """Where the Older links lead half-way down each full list (what a reader who paged that
    far would hold): the row at the middle of the user's alerts and incidents."""
    alerts = Alert.objects.filter(team__in=visible).order_by("-last_change_at", "-id")
    incidents = Incident.objects.filter(team__in=visible).order_by("-created_at", "-id")
    count = alerts.count()
    alert = alerts[count // 2]
    incident = incidents[incidents.count() // 2]
    return {
        "alert": Cursor(alert.last_change_at, alert.pk).encode(),
        "incident": Cursor(incident.created_at, incident.pk).encode(),
        # The deepest page number the API offers (page=N reaches PAGE_NUMBER_ROWS), or less.
        "alert_page": str(max(1, min(PAGE_NUMBER_ROWS, count) // 50)),
    }


def pages(deep: dict[str, str]) -> dict[str, str]:
    service = Service.objects.filter(team__memberships__isnull=False).order_by("pk").first()
    return {
        "dashboard": "/",
        "alerts_firing": "/alerts/",
        "alerts_all": "/alerts/?status=all",
        "alerts_resolved_service": f"/alerts/?status=resolved&service={service.pk}",
        "alerts_critical": "/alerts/?status=all&severity=critical",
        "alerts_deep": f"/alerts/?status=all&cursor={deep['alert']}",
        "alerts_live_table": "/alerts/table/",
        "incidents_open": "/incidents/",
        "incidents_all": "/incidents/?status=all",
        "incidents_resolved_p1": "/incidents/?status=resolved&priority=P1",
        "incidents_deep": f"/incidents/?status=all&cursor={deep['incident']}",
        "api_alerts": "/api/v1/alerts/",
        "api_alerts_firing": "/api/v1/alerts/?status=firing",
        "api_alerts_last_numbered_page": f"/api/v1/alerts/?page={deep['alert_page']}",
        "api_alerts_deep": f"/api/v1/alerts/?cursor={deep['alert']}",
        "api_incidents": "/api/v1/incidents/",
        "api_incidents_open": "/api/v1/incidents/?status=triggered&status=acknowledged",
        "api_incidents_deep": f"/api/v1/incidents/?cursor={deep['incident']}",
        # Not a list page (one aggregate over 12 weeks of incidents): shown, not held to the goal.
        "reports_12_weeks": "/reports/",
    }


OUTSIDE_GOAL = {"reports_12_weeks"}


def main() -> None:
    started = time.perf_counter()
    client, deep = seed()
    seeded = time.perf_counter() - started
    gc.collect()  # the seeding's garbage is no part of what a page costs
    figures = {name: measure(client, url, REPEAT) for name, url in pages(deep).items()}
    for name, f in figures.items():
        p50, p95, cpu, queries = f["p50_ms"], f["p95_ms"], f["cpu_p50_ms"], f["queries"]
        print(
            f"{name:30} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   "
            f"cpu p50 {cpu:6.1f} ms   {queries} queries"
        )
    worst = max(f["p95_ms"] for name, f in figures.items() if name not in OUTSIDE_GOAL)
    print(
        json.dumps(
            {
                "bench": "list_pages",
                "database": connection.vendor,
                "alerts": ALERTS,
                "incidents": INCIDENTS,
                "events": EVENTS if connection.vendor == "postgresql" else 0,
                "seed_seconds": round(seeded, 1),
                "load_average": round(os.getloadavg()[0], 1),
                "worst_p95_ms": worst,
                "goal_p95_ms": GOAL_P95_MS,
                "all_under_goal": worst < GOAL_P95_MS,
                **{f"{name}_{k}": v for name, f in figures.items() for k, v in f.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
