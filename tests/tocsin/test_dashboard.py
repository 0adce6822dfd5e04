"""The operations dashboard (home after login): every tile scoped to the user's teams, tiles
with nothing configured saying what to set up and linking there, the per-tile partials the
page re-fetches on live events, and who may see what."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backups.models import (
    BackupPlan,
    BackupRun,
    BackupStorage,
    BackupTarget,
    RunKind,
    RunStatus,
    StorageKind,
    TargetKind,
)
from incidents.models import ActionItem, Incident, Postmortem, Rotation
from incidents.oncall import services as oncall
from monitoring.metrics.host import system_team
from monitoring.models import Alert, MetricSample, MetricSeries, MonitoredDatabase, Service
from monitoring.models.slos import ServiceLevelObjective
from probes.checks.models import Check
from probes.heartbeats.models import Heartbeat
from tests.conftest import make_user
from tocsin.dashboard import tiles
from tocsin.events.registry import all_kinds
from tocsin.models import Membership, Role, Team
from tocsin.permissions import forget_roles

TILES = [
    "incidents",
    "alerts",
    "oncall",
    "action-items",
    "slos",
    "databases",
    "checks",
    "heartbeats",
    "backups",
    "host",
]


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def populate(team: Team, tag: str, *, member: Any, n: int = 1) -> Service:
    """One of everything the dashboard shows, for ``team``, each named after ``tag``
    (``n`` of the numerous things: alerts, incidents, checks, heartbeats)."""
    now = timezone.now()
    service = Service.objects.create(team=team, name=f"{tag}-service", slug=f"{tag}-service")
    Alert.objects.bulk_create(
        Alert(
            team=team,
            service=service,
            source="generic",
            fingerprint=f"{tag}-{i}",
            status="firing",
            severity=("critical", "warning")[i % 2],
            summary=f"{tag}-alert-{i}",
            content_hash=f"{i:064x}",
            starts_at=now,
        )
        for i in range(n)
    )
    Incident.objects.bulk_create(
        Incident(
            team=team,
            service=service,
            title=f"{tag}-incident-{i}",
            group_key=f"{tag}-{i}",
            status=("triggered", "acknowledged")[i % 2],
            priority=f"P{1 + i % 5}",
            assignee=member if i == 0 else None,
        )
        for i in range(n)
    )
    forget_roles(member)  # a membership added since the roles were read
    schedule = oncall.create_schedule(team, f"{tag}-schedule")
    oncall.add_layer(
        schedule,
        name="Days",
        participants=[member],
        rotation=Rotation.DAILY,
        starts_at=now - timedelta(days=1),
    )
    postmortem = Postmortem.objects.create(
        incident=Incident.objects.filter(team=team)[0], team=team
    )
    ActionItem.objects.create(
        postmortem=postmortem, title=f"{tag}-item", owner=member, due_date=date(2020, 1, 1)
    )
    ServiceLevelObjective.objects.create(
        service=service,
        name=f"{tag}-slo",
        sli_kind="probe_availability",
        objective="99",
        budget_remaining=0.1,
        burn_rate=3.0,
        attainment=0.98,
    )
    MonitoredDatabase.objects.create(
        team=team, service=service, name=f"{tag}-db", kind="postgresql", last_error="refused"
    )
    Check.objects.bulk_create(
        Check(
            service=service,
            name=f"{tag}-check-{i}",
            kind="http",
            config={"url": "http://127.0.0.1:9/"},
            state=("down", "up")[i % 2],
        )
        for i in range(n)
    )
    Heartbeat.objects.bulk_create(
        Heartbeat(service=service, name=f"{tag}-heartbeat-{i}", slug=f"{tag}-hb-{i}", status="down")
        for i in range(n)
    )
    target = BackupTarget.objects.create(
        team=team, name=f"{tag}-target", kind=TargetKind.SQLITE, path="/tmp/x.sqlite3"
    )
    storage = BackupStorage.objects.create(
        team=team, name=f"{tag}-storage", kind=StorageKind.LOCAL, path="/tmp/r", encrypted=False
    )
    plan = BackupPlan.objects.create(
        service=service, name=f"{tag}-plan", target=target, storage=storage
    )
    BackupRun.objects.create(plan=plan, kind=RunKind.BACKUP, status=RunStatus.SUCCEEDED)
    BackupRun.objects.create(plan=plan, kind=RunKind.DRILL, status=RunStatus.FAILED)
    return service


def tile_html(client: Client, name: str) -> str:
    response = client.get(reverse("dashboard_tile", args=[name]))
    assert response.status_code == 200, name
    return response.content.decode()


@pytest.fixture
def ops(crew) -> Team:
    """A second team of the responder's, beside Payments; Search (crew.other_team) is not his."""
    team = Team.objects.create(name="Ops")
    Membership.objects.create(team=team, user=crew.responder, role=Role.RESPONDER)
    populate(crew.team, "pay", member=crew.responder)
    populate(team, "ops", member=crew.responder)
    populate(crew.other_team, "search", member=crew.outsider)
    return team


def test_every_app_registered_its_tiles_in_order():
    assert [t.name for t in tiles()] == TILES


def test_every_live_area_of_a_tile_is_one_events_are_written_in():
    areas = {kind.name.split(".")[0] for kind in all_kinds()}
    for tile in tiles():
        assert set(tile.live) <= areas, tile.name


EXPECTED = {
    "incidents": "incident-0",
    "alerts": "service",  # by service
    "oncall": "schedule",
    "action-items": "item",
    "slos": "slo",
    "databases": "db",
    "checks": "check-0",
    "heartbeats": "heartbeat-0",
    "backups": "plan",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_tile_shows_the_users_teams_and_nothing_of_others(crew, ops, name):
    html = tile_html(logged_in(crew.responder), name)
    assert f"pay-{EXPECTED[name]}" in html
    assert f"ops-{EXPECTED[name]}" in html
    assert "search-" not in html
    # The outsider sees Search's, not Payments' nor Ops'.
    html = tile_html(logged_in(crew.outsider), name)
    assert f"search-{EXPECTED[name]}" in html and "pay-" not in html and "ops-" not in html


def test_the_page_holds_every_tile_with_its_live_trigger(crew, ops):
    html = logged_in(crew.responder).get(reverse("dashboard")).content.decode()
    for name in TILES:
        assert f'id="tile-{name}"' in html
    assert "pay-incident-0" in html and "search-" not in html
    tile = re.search(r'<section id="tile-alerts".*?>', html, re.S).group(0)
    assert 'hx-get="/dashboard/tiles/alerts/"' in tile
    assert "tocsin:live-alert from:body" in tile
    assert 'ws-connect="/ws/live/"' in html and 'id="live-status"' in html


def test_counts_and_details(crew, ops):
    client = logged_in(crew.responder)
    html = tile_html(client, "alerts")
    # One critical alert in each of Payments and Ops.
    assert re.search(r"<strong>2</strong> <a href=\"/alerts/\?severity=critical\"", html)
    html = tile_html(client, "incidents")
    assert "responder" in html  # the assignee
    assert re.search(r'<strong>2</strong> <a href="/incidents/\?priority=P1"', html)
    html = tile_html(client, "oncall")
    assert "Now: <strong>responder</strong> (you)" in html
    assert "overdue" in tile_html(client, "action-items")
    html = tile_html(client, "backups")
    assert "succeeded" in html and "failed" in html


def test_action_items_are_the_users_own(crew, ops):
    html = tile_html(logged_in(crew.manager), "action-items")
    assert "pay-item" not in html and "No open action items" in html


@pytest.mark.parametrize("name", [n for n in TILES if n != "action-items"])
def test_a_tile_with_nothing_configured_links_to_its_setup(crew, name):
    html = tile_html(logged_in(crew.manager), name)
    assert "dash-setup" in html
    link = re.search(r'class="empty-state dash-setup">.*?<a href="([^"]+)"', html, re.S).group(1)
    assert link.startswith(("/admin/", "/services/", "/teams/"))
    assert logged_in(crew.admin).get(link).status_code == 200


def test_before_the_first_host_reading_an_administrator_is_told_to_run_the_worker(crew):
    html = tile_html(logged_in(crew.admin), "host")
    assert "manage.py worker" in html and 'href="/health"' in html


def test_setup_links_into_the_admin_say_who_does_it_for_those_without_it(crew):
    html = tile_html(logged_in(crew.viewer), "checks")
    assert "a manager of your team does this" in html
    assert "a manager of your team does this" not in tile_html(logged_in(crew.manager), "checks")


def test_host_charts_for_those_who_see_the_system_team(crew):
    system = system_team()
    series = MetricSeries.objects.create(
        team=system, name="host_cpu_percent", labels={"host": "box"}, key="k", last_value=42.0
    )
    MetricSample.objects.create(series=series, time=timezone.now() - timedelta(minutes=3), value=42)
    html = tile_html(logged_in(crew.admin), "host")
    assert "CPU (%): now 42.0" in html and 'data-host-chart="host_cpu_percent"' in html
    html = tile_html(logged_in(crew.viewer), "host")
    assert "Tocsin (system)" in html and "dash-setup" in html and "42.0" not in html


def test_anonymous_is_sent_to_login(db):
    for url in (reverse("dashboard"), reverse("dashboard_tile", args=["alerts"])):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_viewer_sees_the_dashboard(crew, ops):
    html = logged_in(crew.viewer).get(reverse("dashboard")).content.decode()
    assert "pay-incident-0" in html and "ops-" not in html and "search-" not in html


def test_a_user_without_teams_is_told_why_the_page_is_empty(db):
    client = logged_in(make_user("loner"))
    html = client.get(reverse("dashboard")).content.decode()
    assert "not a member of any team" in html and "tile-" not in html
    assert client.get(reverse("dashboard_tile", args=["alerts"])).status_code == 404


def test_an_unknown_tile_is_a_404(crew):
    assert logged_in(crew.viewer).get("/dashboard/tiles/nope/").status_code == 404


def test_a_superuser_sees_every_team(crew, ops):
    html = logged_in(crew.admin).get(reverse("dashboard")).content.decode()
    assert "pay-incident-0" in html and "search-incident-0" in html


def test_tiles_stack_on_a_phone(crew):
    html = logged_in(crew.viewer).get(reverse("dashboard")).content.decode()
    assert "@media (max-width: 759px) { .dash-grid { grid-template-columns: 1fr; }" in html
