"""The checks API: viewers read, responders pause/resume/run now, managers configure (validated
as the admin validates: config through the kind, conditions with the position of an error);
other teams' checks are 404s; results and rollups are read-only and keyset-paged; secrets in a
config never come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import Alert, AlertStatus, Service
from probes.checks import rollups, services
from probes.checks.choices import Period
from probes.checks.models import Check, CheckState, Result, ResultStatus, Rollup, Slot
from tests.probes import test_check_target as support
from tests.probes.test_check_target import make_check
from tests.tocsin.api_support import assert_error

URL = "/api/v1/checks/"
ROLES = ["viewer", "responder", "manager"]
target = support.target  # fixture


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Shop")


@pytest.fixture
def other_service(crew) -> Service:
    return Service.objects.create(team=crew.other_team, name="Search")


@pytest.fixture
def check(service, target) -> Check:
    return make_check(service, target)


def body(to: Service, target: Any, **changes: Any) -> dict[str, Any]:
    return {
        "service": to.pk,
        "name": "Checkout",
        "kind": "http",
        "config": {"url": target.url("/checkout")},
        "interval": 30,
        "timeout": 5,
    } | changes


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_its_teams_checks(api, crew, check, other_service, target, role):
    make_check(other_service, target, name="Search API")

    response = api(crew.by_role(role)).get(URL)

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == check.pk and row["team"] == crew.team.pk
    assert row["kind"] == "http" and row["state"] == "unknown"
    assert row["config"]["url"] == target.url("/")
    assert row["parents"] == [] and row["locations"] == []


def test_a_check_of_another_team_is_a_404(api, crew, check):
    client = api(crew.outsider)

    assert_error(client.get(f"{URL}{check.pk}/"), 404, "not_found")
    assert_error(client.patch(f"{URL}{check.pk}/", {"name": "x"}, format="json"), 404)
    for operation in ("pause", "resume", "run-now"):
        assert_error(client.post(f"{URL}{check.pk}/{operation}/"), 404)
    assert_error(client.delete(f"{URL}{check.pk}/"), 404)
    assert Check.objects.get().name == "Shop front" and not Result.objects.exists()


def test_anonymous_callers_are_refused(api, check):
    assert_error(api().get(URL), 401)
    assert_error(api().get("/api/v1/check-results/"), 401)


def test_a_down_check_says_why(api, crew, check, target):
    services.update_check(check, failure_threshold=1)
    target.set(503, "maintenance")
    services.run_now(Check.objects.get(pk=check.pk))

    row = api(crew.viewer).get(f"{URL}{check.pk}/").json()

    assert row["state"] == "down" and row["alerted"] is True
    assert row["last_explanation"] == "[STATUS] (503) in 200..299"
    assert row["last_excerpt"] == "maintenance"


def test_secrets_in_a_config_are_never_returned(api, crew, service, target):
    check = make_check(
        service,
        target,
        config={
            "url": target.url("/"),
            "auth_type": "basic",
            "username": "probe",
            "password": "hunter22",
            "headers": {"X-Api-Key": "k-123456"},
        },
    )

    text = api(crew.manager).get(f"{URL}{check.pk}/").content.decode()

    assert "hunter22" not in text and "k-123456" not in text
    assert '"password":"[redacted]"' in text.replace(" ", "")


def test_a_config_sent_back_redacted_keeps_its_secrets(api, crew, service, target):
    check = make_check(
        service,
        target,
        config={"url": target.url("/"), "auth_type": "bearer", "token": "tkn-secret"},
    )
    client = api(crew.manager)
    config = client.get(f"{URL}{check.pk}/").json()["config"]

    response = client.patch(
        f"{URL}{check.pk}/", {"config": config | {"method": "HEAD"}}, format="json"
    )

    assert response.status_code == 200, response.content
    check.refresh_from_db()
    assert check.config["token"] == "tkn-secret" and check.config["method"] == "HEAD"


def test_filters(api, crew, check, service, target):
    paused = make_check(service, target, name="Paused one")
    services.pause(paused)
    client = api(crew.viewer)

    assert [r["id"] for r in client.get(URL, {"state": "paused"}).json()["results"]] == [paused.pk]
    assert len(client.get(URL, {"team": crew.team.slug, "kind": "http"}).json()["results"]) == 2
    assert_error(client.get(URL, {"team": crew.other_team.slug}), 400, fields={"team"})
    assert_error(client.get(URL, {"stat": "up"}), 400, fields={"stat"})
    assert_error(client.get(URL, {"state": "sideways"}), 400, fields={"state"})
    assert_error(client.get(URL, {"kind": "carrier-pigeon"}), 400, fields={"kind"})


# --- configuring (managers) ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_create(api, crew, service, target, role):
    response = api(crew.by_role(role)).post(URL, body(service, target), format="json")

    if role == "manager":
        assert response.status_code == 201, response.content
        created = response.json()
        assert (created["name"], created["interval"], created["state"]) == (
            "Checkout",
            30,
            "unknown",
        )
        check = Check.objects.get()
        assert Slot.objects.filter(probe=check).count() == 1  # scheduled through the service
        assert check.config["method"] == "GET"  # normalised by the kind
    else:
        assert_error(response, 403)
        assert not Check.objects.exists()


def test_creating_in_another_teams_service_is_a_400(api, crew, other_service, target):
    response = api(crew.manager).post(URL, body(other_service, target), format="json")

    assert_error(response, 400, fields={"service"})
    assert not Check.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"conditions": ["[STATUS] == 200", "[STATUS] =="]}, "conditions", "Condition 2: "),
        ({"degraded_conditions": ["[RESPONSE_TIME] < "]}, "degraded_conditions", "at position"),
        ({"config": {"url": "ftp://x"}}, "config", "url: "),
        ({"config": []}, "config", ""),
        ({"kind": "carrier-pigeon"}, "kind", "carrier-pigeon"),
        ({"interval": 5}, "interval", "10"),
        ({"timeout": 120}, "timeout", ""),
        ({"timeout": 40, "interval": 30}, "timeout", "must not exceed the interval"),
        ({"window_failures": 3}, "window_size", "X of the last Y"),
        ({"window_failures": 5, "window_size": 3}, "window_failures", "X cannot be more"),
        ({"locations": ["eu", ""]}, "locations", "location names"),
        ({"locations": ["eu"], "down_when_failing": 2}, "down_when_failing", "Cannot exceed"),
        ({"failure_threshold": 0}, "failure_threshold", ""),
        ({"parents": [2**62]}, "parents", "no check"),
        ({"service": 2**63}, "service", ""),
        ({"name": ""}, "name", ""),
        ({"state": "up"}, "state", "unknown field"),
        ({"paused": True}, "paused", "unknown field"),
    ],
)
def test_bad_input_is_a_400_on_its_field(api, crew, service, target, changes, field, words):
    response = api(crew.manager).post(URL, body(service, target, **changes), format="json")

    error = assert_error(response, 400, "invalid")
    assert field in error["fields"], error
    assert words in " ".join(error["fields"][field]), error
    assert not Check.objects.exists()


def test_a_condition_error_names_the_position_as_the_admin_does(api, crew, service, target):
    response = api(crew.manager).post(
        URL, body(service, target, conditions=["[STATUS] in 200.."]), format="json"
    )

    [message] = assert_error(response, 400, fields={"conditions"})["fields"]["conditions"]
    assert message.startswith("Condition 1: ") and "at position " in message


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_change(api, crew, check, role):
    response = api(crew.by_role(role)).patch(
        f"{URL}{check.pk}/", {"interval": 120, "conditions": ["[STATUS] == 200"]}, format="json"
    )

    check.refresh_from_db()
    if role == "manager":
        assert response.status_code == 200, response.content
        assert (check.interval, check.conditions) == (120, ["[STATUS] == 200"])
    else:
        assert_error(response, 403)
        assert check.interval == 60


def test_a_change_is_checked_against_the_rest_of_the_configuration(api, crew, check, service):
    client = api(crew.manager)

    assert_error(client.patch(f"{URL}{check.pk}/", {"timeout": 90}, format="json"), 400)
    assert client.patch(f"{URL}{check.pk}/", {"interval": 30}, format="json").status_code == 200
    response = client.patch(f"{URL}{check.pk}/", {"timeout": 50}, format="json")
    assert_error(response, 400, fields={"timeout"})  # more than the 30 s interval
    moved = Service.objects.create(team=crew.team, name="Elsewhere")
    assert_error(
        client.patch(f"{URL}{check.pk}/", {"service": moved.pk}, format="json"),
        400,
        fields={"service"},
    )
    assert_error(
        client.patch(f"{URL}{check.pk}/", {"parents": [check.pk]}, format="json"),
        400,
        fields={"parents"},
    )
    assert client.patch(f"{URL}{check.pk}/", {"name": "Renamed"}, format="json").status_code == 200


def test_parents_are_checks_of_the_same_team(api, crew, check, service, other_service, target):
    client = api(crew.manager)
    foreign = make_check(other_service, target, name="Search API")

    assert_error(
        client.post(URL, body(service, target, parents=[foreign.pk]), format="json"),
        400,
        fields={"parents"},
    )
    response = client.post(URL, body(service, target, parents=[check.pk]), format="json")
    assert response.status_code == 201 and response.json()["parents"] == [check.pk]


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_delete_and_an_open_alert_resolves(api, crew, check, target, role):
    services.update_check(check, failure_threshold=1)
    target.set(500)
    services.run_now(Check.objects.get(pk=check.pk))
    assert Alert.objects.filter(status=AlertStatus.FIRING).count() == 1

    response = api(crew.by_role(role)).delete(f"{URL}{check.pk}/")

    if role == "manager":
        assert response.status_code == 204
        assert not Check.objects.exists()
        assert Alert.objects.filter(status=AlertStatus.FIRING).count() == 0
    else:
        assert_error(response, 403)
        assert Check.objects.exists()


# --- acting (responders) ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_responders_and_managers_pause_resume_and_run_now(api, crew, check, target, role):
    client = api(crew.by_role(role))

    paused = client.post(f"{URL}{check.pk}/pause/")

    if role == "viewer":
        assert_error(paused, 403)
        assert_error(client.post(f"{URL}{check.pk}/resume/"), 403)
        assert_error(client.post(f"{URL}{check.pk}/run-now/"), 403)
        assert Check.objects.get().paused is False and not Result.objects.exists()
        return
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    resumed = client.post(f"{URL}{check.pk}/resume/")
    assert resumed.status_code == 200 and resumed.json()["state"] == "unknown"
    ran = client.post(f"{URL}{check.pk}/run-now/")
    assert ran.status_code == 200, ran.content
    assert ran.json()["status"] == "up" and ran.json()["excerpt"] == "ok"
    assert ran.json()["details"]["run_now"] is True
    assert target.requests == 1


def test_actions_take_no_input(api, crew, check):
    response = api(crew.responder).post(f"{URL}{check.pk}/pause/", {"x": 1}, format="json")

    assert_error(response, 400, fields={"x"})
    assert Check.objects.get().state != CheckState.PAUSED


# --- results and rollups ------------------------------------------------------------------------


def _results(check: Check, count: int, start: Any = None) -> None:
    start = start or timezone.now() - timedelta(hours=1)
    Result.objects.bulk_create(
        Result(
            probe=check,
            slot_at=start + timedelta(minutes=n),
            started_at=start + timedelta(minutes=n),
            status=ResultStatus.DOWN if n % 2 else ResultStatus.UP,
            latency_ms=n,
            error="HTTP 500" if n % 2 else "",
            excerpt="body",
        )
        for n in range(count)
    )


def test_results_are_listed_newest_first_and_keyset_paged(api, crew, check, other_service, target):
    _results(check, 7)
    _results(make_check(other_service, target, name="Search API"), 3)
    client = api(crew.viewer)

    first = client.get("/api/v1/check-results/", {"page_size": 4}).json()
    second = client.get(first["next"]).json()

    rows = first["results"] + second["results"]
    assert [r["latency_ms"] for r in rows] == [6, 5, 4, 3, 2, 1, 0]
    assert first["count"] == 7 and "cursor=" in first["next"] and second["next"] is None
    assert "excerpt" not in rows[0]
    detail = client.get(f"/api/v1/check-results/{rows[0]['id']}/").json()
    assert detail["excerpt"] == "body" and detail["check"] == check.pk
    down = client.get("/api/v1/check-results/", {"check": check.pk, "status": "down"}).json()
    assert {r["status"] for r in down["results"]} == {"down"} and down["count"] == 3


def test_results_of_another_team_are_404s_and_read_only(api, crew, check):
    _results(check, 1)
    pk = Result.objects.get().pk

    assert_error(api(crew.outsider).get(f"/api/v1/check-results/{pk}/"), 404)
    assert api(crew.manager).delete(f"/api/v1/check-results/{pk}/").status_code == 405
    assert api(crew.manager).post("/api/v1/check-results/", {}, format="json").status_code == 405
    assert Result.objects.count() == 1


def test_days_filter_by_check_and_time(api, crew, check, service, target):
    other = make_check(service, target, name="Other")
    today = timezone.now().date()
    for probe in (check, other):
        Rollup.objects.create(probe=probe, day=today, up=99, down=1, p50=40, p95=90)
        Rollup.objects.create(probe=probe, day=today - timedelta(days=1), up=60)
    client = api(crew.viewer)

    rows = client.get("/api/v1/check-rollups/", {"check": check.pk}).json()["results"]

    assert [row["day"] for row in rows] == [str(today), str(today - timedelta(days=1))]
    row = rows[0]
    assert (row["check"], row["uptime"], row["p95"]) == (check.pk, 0.99, 90)
    assert len(row["histogram"]) == 12 and "hours" not in row
    assert client.get(f"/api/v1/check-rollups/{row['id']}/").json()["day"] == str(today)
    assert_error(client.get("/api/v1/check-rollups/", {"since": "tuesday"}), 400, fields={"since"})
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert (
        client.get("/api/v1/check-rollups/", {"since": tomorrow.isoformat()}).json()["results"]
        == []
    )
    assert (
        len(client.get("/api/v1/check-rollups/", {"until": tomorrow.isoformat()}).json()["results"])
        == 4
    )


def test_a_checks_minutes_hours_and_days_are_read_from_the_packed_rows(api, crew, check):
    start = rollups.floor(timezone.now() - timedelta(hours=3), Period.HOUR)
    for minute in (0, 1, 61):
        at = start + timedelta(minutes=minute)
        Result.objects.create(
            probe=check, slot_at=at, started_at=at, status=ResultStatus.UP, latency_ms=20 + minute
        )
    rollups.rollup(start + timedelta(minutes=2))
    rollups.rollup(start + timedelta(minutes=62))
    rollups.rollup(start + timedelta(hours=2, minutes=11))  # the first two hours packed
    client = api(crew.viewer)
    url = f"/api/v1/checks/{check.pk}/rollups/"

    minutes = client.get(url, {"period": "m", "since": start.isoformat()}).json()
    hours = client.get(url, {"period": "h"}).json()
    days = client.get(url, {"period": "d"}).json()

    assert [p["p50"] for p in minutes["points"]] == [20, 21, 81]
    assert minutes["points"][0]["histogram"] is None and minutes["period"] == "m"
    assert [p["up"] for p in hours["points"]] == [2, 1]
    assert sum(hours["points"][0]["histogram"]) == 2
    assert sum(p["up"] for p in days["points"]) == 3
    assert_error(client.get(url, {"period": "w"}), 400, fields={"period"})
    assert_error(
        client.get(url, {"period": "m", "since": (start - timedelta(days=2)).isoformat()}),
        400,
        fields={"since"},
    )
    assert_error(client.get(url, {"colour": "red"}), 400, fields={"colour"})
    assert_error(api(crew.outsider).get(url), 404)


def test_lists_cost_the_same_queries_for_5_and_50_checks(api, crew, service, target):
    def count(url: str) -> int:
        client = api(crew.viewer)
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    urls = (URL, "/api/v1/check-results/", "/api/v1/check-rollups/")

    def add(start: int, number: int) -> None:
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        for n in range(start, start + number):
            made = make_check(service, target, name=f"check {n:03}")
            _results(made, 1)
            Rollup.objects.create(probe=made, day=today.date(), up=1)

    add(0, 5)
    five = [count(url) for url in urls]
    add(5, 45)

    assert [count(url) for url in urls] == five
