"""The heartbeats API: viewers read, responders pause/resume/snooze, managers configure; other
teams' heartbeats are 404s; bad input is a 400 naming the field, never a 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import Alert, AlertStatus, Service
from probes.heartbeats import services, snippets
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, PingKey, PingKind
from tests.tocsin.api_support import assert_error

URL = "/api/v1/heartbeats/"
ROLES = ["viewer", "responder", "manager"]


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


@pytest.fixture
def other_service(crew) -> Service:
    return Service.objects.create(team=crew.other_team, name="Search jobs")


@pytest.fixture
def heartbeat(service) -> Heartbeat:
    return Heartbeat.objects.create(service=service, name="DB backup", cron="30 2 * * *")


def ping(heartbeat: Heartbeat, kind: str = PingKind.SUCCESS, **data: Any) -> None:
    services.record_ping(heartbeat, services.PingData(kind=kind, **data))
    heartbeat.refresh_from_db()


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_its_teams_heartbeats(api, crew, heartbeat, other_service, role):
    Heartbeat.objects.create(service=other_service, name="Reindex")

    response = api(crew.by_role(role)).get(URL)

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == heartbeat.pk and row["team"] == crew.team.pk
    assert row["status"] == "new" and row["cron"] == "30 2 * * *"
    assert row["curl"] == snippets.curl_line(heartbeat)
    assert row["crontab"] == snippets.crontab_line(heartbeat)
    assert row["ping_url"].endswith(f"/ping/{heartbeat.uuid}")


def test_a_heartbeat_of_another_team_is_a_404(api, crew, heartbeat):
    client = api(crew.outsider)

    assert_error(client.get(f"{URL}{heartbeat.pk}/"), 404, "not_found")
    assert_error(client.patch(f"{URL}{heartbeat.pk}/", {"name": "x"}, format="json"), 404)
    assert_error(client.post(f"{URL}{heartbeat.pk}/pause/"), 404)
    assert_error(client.delete(f"{URL}{heartbeat.pk}/"), 404)
    assert Heartbeat.objects.get().name == "DB backup"


def test_anonymous_callers_are_refused(api, heartbeat):
    assert_error(api().get(URL), 401)


def test_a_down_heartbeat_says_why(api, crew, heartbeat):
    ping(heartbeat, exit_status=2)

    row = api(crew.viewer).get(f"{URL}{heartbeat.pk}/").json()

    assert row["status"] == "down" and row["last_exit_status"] == 2
    assert row["problems"] == {"failed": "DB backup failed with exit status 2."}


def test_filters(api, crew, heartbeat, service):
    paused = Heartbeat.objects.create(service=service, name="Cleanup")
    services.pause(paused)
    client = api(crew.viewer)

    assert [r["id"] for r in client.get(URL, {"status": "paused"}).json()["results"]] == [paused.pk]
    assert len(client.get(URL, {"team": crew.team.slug}).json()["results"]) == 2
    assert_error(client.get(URL, {"team": crew.other_team.slug}), 400, fields={"team"})
    assert_error(client.get(URL, {"stauts": "up"}), 400, fields={"stauts"})


# --- configuring (managers) ---------------------------------------------------------------------


def body(to: Service, **changes: Any) -> dict[str, Any]:
    return {"service": to.pk, "name": "Nightly export", "period": 3600, "grace": 600} | changes


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_create(api, crew, service, role):
    response = api(crew.by_role(role)).post(URL, body(service), format="json")

    if role == "manager":
        assert response.status_code == 201, response.content
        created = response.json()
        assert (created["slug"], created["status"]) == ("nightly-export", "new")
        assert PingKey.objects.filter(service=service).exists()
    else:
        assert_error(response, 403)
        assert not Heartbeat.objects.exists()


def test_creating_in_another_teams_service_is_a_400(api, crew, other_service):
    response = api(crew.manager).post(URL, body(other_service), format="json")

    assert_error(response, 400, fields={"service"})
    assert not Heartbeat.objects.exists()


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"cron": "every night"}, {"cron"}),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, {"timezone"}),
        ({"period": None}, {"period"}),
        ({"period": 5}, {"period"}),
        ({"period": 10**12}, {"period"}),
        ({"period": 10**9}, {"period"}),  # 31 years: past the year a schedule may span
        ({"grace": -1}, {"grace"}),
        ({"grace": 10**9}, {"grace"}),
        ({"max_runtime": 10**9}, {"max_runtime"}),
        ({"too_often": 10**9}, {"too_often"}),
        ({"min_runtime": 8 * 86400}, {"min_runtime"}),  # run times are measured up to 7 days
        ({"min_runtime": 60, "max_runtime": 30}, {"min_runtime"}),
        ({"failure_percent": 101}, {"failure_percent"}),
        ({"failure_window": 1}, {"failure_window"}),
        ({"slug": "Not A Slug"}, {"slug"}),
        ({"service": 2**63}, {"service"}),
        ({"name": ""}, {"name"}),
        ({"status": "up"}, {"status"}),
        ({"uuid": "x"}, {"uuid"}),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, crew, service, changes, fields):
    response = api(crew.manager).post(URL, body(service, **changes), format="json")

    assert_error(response, 400, "invalid", fields)
    assert not Heartbeat.objects.exists()


def test_a_slug_the_service_already_uses_is_a_409(api, crew, service, heartbeat):
    response = api(crew.manager).post(URL, body(service, slug="db-backup"), format="json")

    assert_error(response, 409, "duplicate", {"slug"})
    assert Heartbeat.objects.count() == 1


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_change(api, crew, heartbeat, role):
    response = api(crew.by_role(role)).patch(
        f"{URL}{heartbeat.pk}/", {"grace": 120, "cron": "0 * * * *"}, format="json"
    )

    heartbeat.refresh_from_db()
    if role == "manager":
        assert response.status_code == 200, response.content
        assert response.json()["grace"] == 120
        assert (heartbeat.grace, heartbeat.cron) == (120, "0 * * * *")
    else:
        assert_error(response, 403)
        assert heartbeat.grace == 3600


def test_a_change_is_checked_against_the_rest_of_the_configuration(api, crew, heartbeat, service):
    client = api(crew.manager)
    client.patch(f"{URL}{heartbeat.pk}/", {"max_runtime": 60}, format="json")

    response = client.patch(f"{URL}{heartbeat.pk}/", {"min_runtime": 90}, format="json")

    assert_error(response, 400, fields={"min_runtime"})
    moved = Service.objects.create(team=crew.team, name="Elsewhere")
    response = client.patch(f"{URL}{heartbeat.pk}/", {"service": moved.pk}, format="json")
    assert_error(response, 400, fields={"service"})
    same = client.patch(f"{URL}{heartbeat.pk}/", {"service": service.pk}, format="json")
    assert same.status_code == 200


def test_a_shorter_grace_takes_effect_at_once(api, crew, heartbeat):
    Heartbeat.objects.filter(pk=heartbeat.pk).update(period=3600, cron="")
    heartbeat.refresh_from_db()
    ping(heartbeat)
    Heartbeat.objects.filter(pk=heartbeat.pk).update(
        last_success_at=timezone.now() - timedelta(hours=2)
    )

    response = api(crew.manager).patch(f"{URL}{heartbeat.pk}/", {"grace": 60}, format="json")

    assert response.json()["status"] == "down"
    assert "missing" in response.json()["problems"]


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_delete_and_open_alerts_resolve(api, crew, heartbeat, role):
    ping(heartbeat, exit_status=1)
    assert Alert.objects.filter(status=AlertStatus.FIRING).count() == 1

    response = api(crew.by_role(role)).delete(f"{URL}{heartbeat.pk}/")

    if role == "manager":
        assert response.status_code == 204
        assert not Heartbeat.objects.exists()
        assert Alert.objects.filter(status=AlertStatus.FIRING).count() == 0
    else:
        assert_error(response, 403)
        assert Heartbeat.objects.exists()


# --- acting (responders) ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_responders_and_managers_pause_and_resume(api, crew, heartbeat, role):
    client = api(crew.by_role(role))

    response = client.post(f"{URL}{heartbeat.pk}/pause/")

    if role == "viewer":
        assert_error(response, 403)
        assert Heartbeat.objects.get().status == HeartbeatStatus.NEW
        return
    assert response.status_code == 200 and response.json()["status"] == "paused"
    response = client.post(f"{URL}{heartbeat.pk}/resume/")
    assert response.status_code == 200 and response.json()["status"] == "new"


def test_pause_takes_no_input(api, crew, heartbeat):
    response = api(crew.responder).post(f"{URL}{heartbeat.pk}/pause/", {"x": 1}, format="json")

    assert_error(response, 400, fields={"x"})


@pytest.mark.parametrize("role", ROLES)
def test_responders_snooze(api, crew, heartbeat, role):
    response = api(crew.by_role(role)).post(
        f"{URL}{heartbeat.pk}/snooze/", {"duration": "2h"}, format="json"
    )

    if role == "viewer":
        assert_error(response, 403)
        return
    assert response.status_code == 200
    assert Heartbeat.objects.get().snoozed_until > timezone.now() + timedelta(minutes=119)


@pytest.mark.parametrize("duration", ["soon", "", "31d", -5, True, None])
def test_a_bad_snooze_is_a_400_on_duration(api, crew, heartbeat, duration):
    response = api(crew.responder).post(
        f"{URL}{heartbeat.pk}/snooze/", {"duration": duration}, format="json"
    )

    assert_error(response, 400, fields={"duration"})
    assert Heartbeat.objects.get().snoozed_until is None


# --- pings --------------------------------------------------------------------------------------


def test_pings_are_listed_newest_first_per_heartbeat(api, crew, heartbeat, other_service):
    ping(heartbeat, PingKind.START)
    ping(heartbeat, body="all good", body_size=8)
    foreign = Heartbeat.objects.create(service=other_service, name="Reindex")
    ping(foreign)

    client = api(crew.viewer)
    rows = client.get("/api/v1/heartbeat-pings/").json()["results"]

    assert [r["kind"] for r in rows] == ["success", "start"]
    assert rows[0]["duration"] is not None and "body" not in rows[0]
    detail = client.get(f"/api/v1/heartbeat-pings/{rows[0]['id']}/").json()
    assert detail["body"] == "all good" and detail["body_truncated"] is False
    filtered = client.get("/api/v1/heartbeat-pings/", {"heartbeat": heartbeat.pk, "kind": "start"})
    assert [r["kind"] for r in filtered.json()["results"]] == ["start"]
    other_id = foreign.pings.get().pk
    assert_error(client.get(f"/api/v1/heartbeat-pings/{other_id}/"), 404)


def test_pings_are_read_only(api, crew, heartbeat):
    ping(heartbeat)
    client = api(crew.manager)
    pk = heartbeat.pings.get().pk

    assert client.delete(f"/api/v1/heartbeat-pings/{pk}/").status_code == 405
    assert client.post("/api/v1/heartbeat-pings/", {}, format="json").status_code == 405
    assert heartbeat.pings.count() == 1


def test_lists_cost_the_same_queries_for_1_and_20_heartbeats(api, crew, service):
    def count(url: str) -> int:
        client = api(crew.viewer)
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    ping(Heartbeat.objects.create(service=service, name="job 0"))
    one = (count(URL), count("/api/v1/heartbeat-pings/"))
    for number in range(1, 20):
        ping(Heartbeat.objects.create(service=service, name=f"job {number}"))

    assert (count(URL), count("/api/v1/heartbeat-pings/")) == one
