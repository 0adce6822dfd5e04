"""The probes pages: the team-scoped status grid with uptime bars, a check's page (why, uptime,
latency, recent runs, locations), run now / pause / resume for responders, "test this
configuration" for managers, and a fixed number of queries per page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Service
from probes.checks import rollups, services
from probes.checks.choices import Period
from probes.checks.models import Check, CheckState, Result, ResultStatus, Rollup
from probes.checks.pages import redacted_config, restore_redacted, target_text, uptime_days
from probes.checks.points import Point
from tests.probes import test_check_target as support
from tests.probes.test_check_target import make_check
from tests.probes.test_heartbeat_page import _queries, client_for

target = support.target  # fixture


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Shop")


@pytest.fixture
def check(service, target) -> Check:
    return make_check(service, target)


def page(user: Any, url: str = "/probes/") -> str:
    response = client_for(user).get(url)
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def day_rollups(check: Check, days: int, down_on: set[int] = frozenset(), **extra: Any) -> None:
    """``days`` day rows ending today; the days in ``down_on`` (days ago) had 100 failures."""
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    Rollup.objects.bulk_create(
        Rollup(
            probe=check,
            day=(today - timedelta(days=ago)).date(),
            up=1440 - (100 if ago in down_on else 0),
            down=100 if ago in down_on else 0,
            p50=40 + ago,
            p95=90,
            p99=200,
            **extra,
        )
        for ago in range(days)
    )


def set_state(check: Check, state: str, **fields: Any) -> None:
    fields.setdefault("last_run_at", timezone.now() - timedelta(seconds=5))
    Check.objects.filter(pk=check.pk).update(state=state, **fields)


# --- the grid -----------------------------------------------------------------------------------


def test_the_grid_shows_the_checks_of_the_users_teams_only(crew, check, target):
    foreign = Service.objects.create(team=crew.other_team, name="Search")
    make_check(foreign, target, name="Search API")

    html = page(crew.viewer)

    assert "Shop front" in html and "Search API" not in html
    assert target.url("/") in html  # the target
    assert "HTTP(S)" in html  # the kind
    assert reverse("heartbeats") in html
    assert "Search API" in page(crew.outsider) and "Shop front" not in page(crew.outsider)


def test_the_probes_url_is_named_probes_and_needs_a_login(db):
    assert reverse("probes") == "/probes/"
    response = Client().get("/probes/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("state", "badge"),
    [
        ("up", "badge-ok"),
        ("degraded", "badge-warning"),
        ("down", "badge-firing"),
        ("paused", "badge-muted"),
        ("unknown", "badge-muted"),
    ],
)
def test_the_state_is_written_as_well_as_coloured(crew, check, state, badge):
    set_state(check, state, last_error="HTTP 503" if state == "down" else "")

    html = page(crew.viewer)

    assert f'<span class="badge {badge}">{state}</span>' in html
    assert ("HTTP 503" in html) == (state == "down")


def test_a_check_with_no_recent_run_reads_unknown_whatever_its_last_verdict(crew, check):
    set_state(check, "up", last_run_at=timezone.now() - timedelta(hours=2))

    html = page(crew.viewer)

    assert '<span class="badge badge-muted">unknown</span>' in html
    assert "(no recent run)" in html


def test_the_grid_lists_down_checks_first_and_filters(crew, service, target):
    make_check(service, target, name="A healthy one")
    broken = make_check(service, target, name="Z broken one")
    set_state(broken, "down")

    html = page(crew.viewer)

    assert html.index("Z broken one") < html.index("A healthy one")
    only_down = page(crew.viewer, "/probes/?state=down")
    assert "Z broken one" in only_down and "A healthy one" not in only_down
    assert "Z broken one" in page(crew.viewer, f"/probes/?team={crew.team.slug}")
    client = client_for(crew.viewer)
    assert client.get(f"/probes/?team={crew.other_team.slug}").status_code == 404
    assert client.get("/probes/?state=sideways").status_code == 404


def test_the_uptime_bars_come_from_the_day_rollups(crew, check):
    day_rollups(check, 30, down_on={3})

    html = page(crew.viewer)

    # days of the same tone in a row are one bar as wide as the run: 60 without rollups,
    # 26 up, the day that failed, and the last 3 up
    assert (
        '<li class="none" style="flex-grow: 60"></li><li class="ok" style="flex-grow: 26"></li>'
        '<li class="bad" style="flex-grow: 1"></li><li class="ok" style="flex-grow: 3"></li></ul>'
    ) in html
    assert "90-day uptime 99.77 %; 1 day below 99.9 %." in html


def test_uptime_days_reads_a_whole_page_in_one_query(crew, service, target):
    checks = [make_check(service, target, name=f"c{n}") for n in range(3)]
    for check in checks:
        day_rollups(check, 5)

    with CaptureQueriesContext(connection) as queries:
        bars = uptime_days([c.pk for c in checks], timezone.now())

    assert len(queries) == 1
    assert [len(bars[c.pk].days) for c in checks] == [90, 90, 90]
    assert all(bars[c.pk].ratio == 1.0 for c in checks)


def ran(check: Check, minutes_ago: int, latency_ms: float) -> Result:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Result.objects.create(
        probe=check, slot_at=at, started_at=at, status=ResultStatus.UP, latency_ms=latency_ms
    )


def test_the_grid_shows_the_last_runs_latency(crew, check):
    ran(check, 2, 812.4)
    ran(check, 1, 37.2)
    set_state(check, "up")

    html = page(crew.viewer)

    assert "37 ms" in html and "812 ms" not in html


def test_the_grid_refreshes_itself_on_live_events(crew, check):
    html = page(crew.viewer)

    assert 'ws-connect="/ws/live/"' in html
    # Alerts and checks' own events (state changes, pauses, edits): no polling needed.
    assert 'hx-trigger="tocsin:live-alert from:body delay:750ms' in html
    assert "tocsin:live-check from:body" in html and "every 30s" not in html
    grid = client_for(crew.viewer).get(reverse("checks_grid"))
    assert grid.status_code == 200
    assert grid.content.decode().lstrip().startswith('<section id="checks-grid"')


def test_viewers_get_no_buttons_and_responders_do(crew, check):
    assert "Pause" not in page(crew.viewer) and "Run now" not in page(crew.viewer)
    html = page(crew.responder)
    assert "Pause" in html and "Run now" in html


def _many(service: Service, target: Any, count: int, start: int = 0) -> list[Check]:
    made = []
    for number in range(start, start + count):
        check = make_check(service, target, name=f"check {number:03}")
        day_rollups(check, 10, down_on={number % 10})
        ran(check, 0, 10 + number)
        made.append(check)
    return made


def test_the_grid_costs_the_same_queries_for_5_and_50_checks(crew, service, target):
    _many(service, target, 5)
    five = _queries(crew.responder, "/probes/")
    grid_five = _queries(crew.responder, "/probes/grid/")
    _many(service, target, 45, start=5)

    assert _queries(crew.responder, "/probes/") == five
    assert _queries(crew.responder, "/probes/grid/") == grid_five
    # session, user, roles, teams, count, checks (with each last latency), day rollups, newest event
    assert (five, grid_five) == (8, 7)


# --- a check's page -----------------------------------------------------------------------------


def test_the_page_says_why_a_check_is_down(crew, check, target):
    check = Check.objects.get(pk=check.pk)
    services.update_check(check, failure_threshold=1)
    target.set(503, "maintenance in progress")
    services.run_now(Check.objects.get(pk=check.pk))

    html = page(crew.viewer, f"/probes/checks/{check.pk}/")

    assert '<span class="badge badge-firing">down</span>' in html
    assert "[STATUS] (503) in 200..299" in html  # the condition with its value
    assert "maintenance in progress" in html  # the response excerpt
    assert "Edit" not in html and "Test a configuration" not in html  # managers'


def test_a_failure_below_the_threshold_is_not_called_the_reason(crew, check, target):
    target.set(503)
    services.run_now(check)  # one failure of three

    html = page(crew.viewer, f"/probes/checks/{check.pk}/")

    assert "<h3>The last run</h3>" in html and "<h3>Why</h3>" not in html
    assert "not yet often enough to count as down" in html


def test_the_page_lists_recent_runs_with_their_failures(crew, check, target):
    services.run_now(check)
    target.set(500, "boom")
    services.run_now(Check.objects.get(pk=check.pk))

    html = page(crew.viewer, f"/probes/checks/{check.pk}/")

    assert html.count('<span class="badge badge-ok">up</span>') >= 1
    assert html.count('<span class="badge badge-firing">down</span>') >= 1
    assert "boom" in html


def test_the_page_draws_uptime_and_latency_from_rollups(crew, check):
    day_rollups(check, 3)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    rollups.store_hours({(check.pk, hour): Point(up=60, p50=41, p95=95, p99=180)})

    html = page(crew.viewer, f"/probes/checks/{check.pk}/")

    assert html.count('<li class="ok" title="') == 3  # each day says what it was
    assert 'id="check-latency"' in html and '"p99": [180]' in html
    assert "uPlot.iife.min" in html


def test_the_page_shows_each_locations_state(crew, service, target):
    check = make_check(service, target, locations=["eu", "us"], down_when_failing=2)

    html = page(crew.viewer, f"/probes/checks/{check.pk}/")

    assert "Locations" in html and ">eu<" in html and ">us<" in html
    assert "Down when 2 of them are down." in html


def test_one_location_shows_no_location_table(crew, check):
    assert "Locations" not in page(crew.viewer, f"/probes/checks/{check.pk}/")


def test_managers_get_the_edit_link_and_the_test_form(crew, check):
    html = page(crew.manager, f"/probes/checks/{check.pk}/")

    assert reverse("admin:probes_check_change", args=[check.pk]) in html
    assert "Test a configuration" in html and "Run this configuration" in html


@pytest.mark.parametrize("role", ["outsider"])
def test_a_check_of_another_team_is_a_404(crew, check, role):
    client = client_for(crew.by_role(role))
    base = f"/probes/checks/{check.pk}/"

    assert client.get(base).status_code == 404
    for action in ("run/", "pause/", "resume/", "test/"):
        assert client.post(base + action).status_code == 404
    assert not Result.objects.exists()
    assert Check.objects.get().paused is False


def _checks_queries(user: Any, check: Check) -> int:
    return _queries(user, f"/probes/checks/{check.pk}/")


def test_the_page_costs_the_same_queries_for_few_and_many_runs(crew, service, target):
    check = make_check(service, target, locations=["eu", "us"])
    day_rollups(check, 2)
    few = _checks_queries(crew.manager, check)
    Rollup.objects.filter(probe=check).delete()
    day_rollups(check, 90, down_on={4, 5})
    start = timezone.now() - timedelta(hours=10)
    rollups.store_hours(
        {
            (check.pk, rollups.floor(start + timedelta(hours=n), Period.HOUR)): Point(up=60)
            for n in range(10)
        }
    )
    Result.objects.bulk_create(
        Result(
            probe=check,
            location="eu",
            slot_at=start + timedelta(minutes=n),
            started_at=start + timedelta(minutes=n),
            status=ResultStatus.DOWN if n % 7 == 0 else ResultStatus.UP,
            latency_ms=n,
            error="HTTP 500" if n % 7 == 0 else "",
        )
        for n in range(120)
    )

    assert _checks_queries(crew.manager, check) == few == 8


# --- actions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "responder", "manager"])
def test_responders_and_up_run_pause_and_resume_viewers_only_see(crew, check, role):
    client = client_for(crew.by_role(role))
    base = f"/probes/checks/{check.pk}/"

    responses = [client.post(base + action) for action in ("run/", "pause/", "resume/")]

    if role == "viewer":
        assert [r.status_code for r in responses] == [403, 403, 403]
        assert not Result.objects.exists()
        assert Check.objects.get().paused is False
        return
    assert [r.status_code for r in responses] == [302, 302, 302]
    assert all(r["Location"] == base for r in responses)
    assert Result.objects.filter(probe=check, details__run_now=True).count() == 1
    assert Check.objects.get().state == CheckState.UNKNOWN  # resumed: unknown until it runs


def test_pausing_from_the_grid_swaps_the_row(crew, check):
    response = client_for(crew.responder).post(
        f"/probes/checks/{check.pk}/pause/",
        {"row": "1", "next": "/probes/"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="check-{check.pk}"')
    assert '<span class="badge badge-muted">paused</span>' in html
    assert "Resume" in html and "Shop front is paused." in html
    assert Check.objects.get().paused is True


def test_run_now_from_the_grid_reports_the_result(crew, check, target):
    target.set(503)

    response = client_for(crew.responder).post(
        f"/probes/checks/{check.pk}/run/", {"row": "1"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert "Shop front ran: down" in html and "503" in html
    assert Result.objects.get().status == ResultStatus.DOWN


def test_actions_need_post_and_go_back_only_to_this_site(crew, check):
    client = client_for(crew.manager)
    assert client.get(f"/probes/checks/{check.pk}/pause/").status_code == 405
    response = client.post(f"/probes/checks/{check.pk}/pause/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/probes/checks/{check.pk}/"


# --- test this configuration (managers) -----------------------------------------------------------


def test_form(target: Any, **changes: Any) -> dict[str, Any]:
    return {
        "kind": "http",
        "config": f'{{"url": "{target.url("/")}"}}',
        "conditions": "[BODY] == ok",
        "degraded_conditions": "",
        "timeout": "2",
    } | changes


test_form.__test__ = False  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_managers_test_a_configuration(crew, check, target, role):
    response = client_for(crew.by_role(role)).post(
        f"/probes/checks/{check.pk}/test/", test_form(target)
    )

    assert response.status_code == 403
    assert target.requests == 0


def test_a_manager_tests_an_unsaved_configuration_and_nothing_is_saved(crew, check, target):
    target.set(200, "nope")
    client = client_for(crew.manager)

    response = client.post(
        f"/probes/checks/{check.pk}/test/", test_form(target), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="check-test">')
    assert '<span class="badge badge-firing">down</span>' in html
    assert "[BODY] (&quot;nope&quot;) == ok" in html
    assert target.requests == 1
    assert not Result.objects.exists()
    saved = Check.objects.get()
    assert saved.conditions == [] and saved.state == CheckState.UNKNOWN

    full = client.post(f"/probes/checks/{check.pk}/test/", test_form(target, conditions=""))
    assert full.status_code == 200
    assert "Result:" in full.content.decode() and "Recent runs" in full.content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"conditions": "[STATUS] in 200.."}, "conditions", "at position"),
        ({"config": '{"url": "gopher://x"}'}, "config", "url: "),
        ({"config": "[1, 2]"}, "config", "JSON object"),
        ({"config": "{nope"}, "config", "valid JSON"),
        ({"kind": "carrier-pigeon"}, "kind", "valid choice"),
        ({"timeout": "600"}, "timeout", "less than or equal"),
    ],
)
def test_a_wrong_configuration_is_reported_on_its_field(
    crew, check, target, changes, field, message
):
    response = client_for(crew.manager).post(
        f"/probes/checks/{check.pk}/test/",
        test_form(target, **changes),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 400
    errors = response.context["test_form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert target.requests == 0


# --- display helpers ----------------------------------------------------------------------------


def test_targets_and_configs_never_show_secrets():
    dsn = "postgresql://app:s3cret@db.internal:5432/shop"
    assert target_text("sql", {"dsn": dsn}) == "postgresql://app:[redacted]@db.internal:5432/shop"
    assert target_text("tcp", {"host": "mail.example", "port": 25}) == "mail.example:25"
    assert target_text("dns", {"name": "example.org", "record_type": "MX"}) == "example.org MX"
    config = {
        "url": "https://api.example/v1?api_key=abc&x=1",
        "auth_type": "bearer",
        "token": "tkn",
        "headers": {"Authorization": "Bearer tkn", "Accept": "text/plain"},
    }
    shown = redacted_config(config)
    assert shown == {
        "url": "https://api.example/v1?api_key=[redacted]&x=1",
        "auth_type": "bearer",
        "token": "[redacted]",
        "headers": {"Authorization": "[redacted]", "Accept": "text/plain"},
    }
    sent_back = shown | {"headers": {**shown["headers"], "Accept": "application/json"}}
    assert restore_redacted(sent_back, config) == config | {
        "headers": {"Authorization": "Bearer tkn", "Accept": "application/json"}
    }


def test_a_day_is_a_utc_day(crew, check):
    Rollup.objects.create(probe=check, day=datetime.now(UTC).date(), up=10)

    bars = uptime_days([check.pk], timezone.now())[check.pk]

    assert bars.days[-1].seen and not bars.days[-2].seen
