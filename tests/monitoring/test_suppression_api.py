"""/api/v1/silences/, /inhibition-rules/, /maintenance-windows/: roles, scoping, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, InhibitionRule, MaintenanceWindow, Silence, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import create_inhibition_rule, create_silence
from tests.tocsin.api_support import assert_error
from tocsin.models import Event

pytestmark = pytest.mark.usefixtures("fresh_throttles")
ROLES = ("anonymous", "viewer", "responder", "manager", "outsider", "admin")


def client(api, crew, role):
    return api(None if role == "anonymous" else crew.by_role(role))


def state():
    return (
        list(Silence.objects.values_list("pk", "ends_at")),
        InhibitionRule.objects.count(),
        MaintenanceWindow.objects.count(),
        Event.objects.count(),
    )


@pytest.mark.parametrize("role", ROLES)
def test_creating_a_silence_per_role(api, crew, service, role):
    body = {"team": crew.team.pk, "matchers": "alertname=X,env=~prod.*", "duration": "2h"}
    response = client(api, crew, role).post("/api/v1/silences/", body, format="json")
    expected = {"anonymous": 401, "viewer": 403, "outsider": 400}.get(role, 201)
    assert response.status_code == expected, response.content
    if expected == 201:
        data = response.json()
        assert data["matchers"] == [
            {"name": "alertname", "op": "=", "value": "X"},
            {"name": "env", "op": "=~", "value": "prod.*"},
        ]
        assert data["state"] == "active" and data["created_by"] == role
        assert Event.objects.filter(kind="silence.created").count() == 1
    else:
        error = assert_error(response, expected)
        if role == "outsider":  # cannot see the team: as if it did not exist
            assert set(error["fields"]) == {"team"}
        assert not Silence.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_listing_silences_per_role(api, crew, role):
    create_silence(team=crew.team, matchers="a=b", duration=timedelta(hours=1))
    create_silence(team=crew.other_team, matchers="a=b", duration=timedelta(hours=1))
    response = client(api, crew, role).get("/api/v1/silences/")
    if role == "anonymous":
        assert_error(response, 401)
        return
    teams = sorted(row["team"] for row in response.json()["results"])
    expected = {
        "admin": sorted([crew.team.pk, crew.other_team.pk]),
        "outsider": [crew.other_team.pk],
    }.get(role, [crew.team.pk])
    assert teams == expected


@pytest.mark.parametrize("role", ROLES)
def test_expiring_a_silence_per_role(api, crew, service, role):
    process(service, [AlertInput(labels={"a": "b"})], source="test")
    silence = create_silence(team=crew.team, matchers="a=b", duration=timedelta(hours=1))
    response = client(api, crew, role).post(f"/api/v1/silences/{silence.pk}/expire/")
    expected = {"anonymous": 401, "viewer": 403, "outsider": 404}.get(role, 200)
    assert response.status_code == expected, response.content
    silence.refresh_from_db()
    assert (silence.expired_at is not None) == (expected == 200)
    suppression = Alert.objects.get().suppression
    assert suppression == ("" if expected == 200 else Suppression.SILENCED)


def test_delete_ends_a_silence_and_keeps_it(api, crew):
    silence = create_silence(team=crew.team, matchers="a=b", duration=timedelta(hours=1))
    response = api(crew.responder).delete(f"/api/v1/silences/{silence.pk}/")
    assert response.status_code == 204
    silence.refresh_from_db()
    assert silence.state() == "expired" and silence.expired_by == crew.responder
    again = api(crew.responder).delete(f"/api/v1/silences/{silence.pk}/")
    assert_error(again, 400, "already_ended")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"matchers": 'severity=~"crit("', "duration": "1h"}, {"matchers"}),
        ({"matchers": "severity", "duration": "1h"}, {"matchers"}),
        ({"matchers": [{"name": "a", "op": "==", "value": "b"}], "duration": "1h"}, {"matchers"}),
        ({"matchers": "a=b"}, {"ends_at", "duration"}),
        ({"matchers": "a=b", "duration": "soon"}, {"duration"}),
        ({"matchers": "a=b", "ends_at": "2001-01-01T00:00:00Z"}, {"ends_at"}),
        ({"matchers": 'a=~".*"', "duration": "1h"}, {"matchers"}),
        ({"matchers": "a=b", "duration": "1h", "colour": "red"}, {"colour"}),
    ],
)
def test_bad_silence_input_is_a_400_that_changes_nothing(api, crew, body, fields):
    before = state()
    response = api(crew.responder).post(
        "/api/v1/silences/", {"team": crew.team.pk, **body}, format="json"
    )
    error = assert_error(response, 400, fields=fields)
    assert error["message"]
    assert state() == before


def test_a_silence_on_another_teams_service_is_refused(api, crew, other_service):
    body = {"team": crew.team.pk, "matchers": "a=b", "duration": "1h", "service": other_service.pk}
    assert_error(api(crew.responder).post("/api/v1/silences/", body, format="json"), 400)
    assert not Silence.objects.exists()


def test_state_filter(api, crew):
    now = timezone.now()
    create_silence(team=crew.team, matchers="a=b", duration=timedelta(hours=1))
    create_silence(
        team=crew.team, matchers="a=c", starts_at=now + timedelta(hours=1), duration=timedelta(1)
    )
    response = api(crew.viewer).get("/api/v1/silences/?state=pending")
    assert [row["matchers_text"] for row in response.json()["results"]] == ['{a="c"}']


RULE = {"name": "r", "source_matchers": "severity=critical", "target_matchers": "severity=warning"}


@pytest.mark.parametrize("role", ROLES)
def test_creating_an_inhibition_rule_per_role(api, crew, role):
    body = {"team": crew.team.pk, "equal": ["cluster"], **RULE}
    response = client(api, crew, role).post("/api/v1/inhibition-rules/", body, format="json")
    expected = {
        "anonymous": 401,
        "viewer": 403,
        "responder": 403,
        "outsider": 400,
    }.get(role, 201)
    assert response.status_code == expected, response.content
    assert InhibitionRule.objects.exists() == (expected == 201)


@pytest.mark.parametrize("role", ROLES)
def test_changing_and_deleting_a_rule_per_role(api, crew, role):
    rule = create_inhibition_rule(team=crew.team, **RULE)
    c = client(api, crew, role)
    response = c.patch(f"/api/v1/inhibition-rules/{rule.pk}/", {"enabled": False}, format="json")
    expected = {"anonymous": 401, "viewer": 403, "responder": 403, "outsider": 404}.get(role, 200)
    assert response.status_code == expected, response.content
    rule.refresh_from_db()
    assert rule.enabled == (expected != 200)
    response = c.delete(f"/api/v1/inhibition-rules/{rule.pk}/")
    assert response.status_code == (204 if expected == 200 else expected)


def test_bad_rule_input(api, crew):
    before = state()
    body = {"team": crew.team.pk, **RULE, "target_matchers": 'x=~"["', "equal": ["no spaces"]}
    response = api(crew.manager).post("/api/v1/inhibition-rules/", body, format="json")
    assert_error(response, 400, fields={"target_matchers"})
    body = {"team": crew.team.pk, **RULE, "equal": ["no spaces"]}
    response = api(crew.manager).post("/api/v1/inhibition-rules/", body, format="json")
    assert_error(response, 400, fields={"equal"})
    assert state() == before


WINDOW = {"title": "nightly", "weekdays": [0, 1], "start_time": "23:00", "duration": "3h"}


@pytest.mark.parametrize("role", ROLES)
def test_creating_a_maintenance_window_per_role(api, crew, service, role):
    body = {"service": service.pk, "time_zone": "Europe/Berlin", **WINDOW}
    response = client(api, crew, role).post("/api/v1/maintenance-windows/", body, format="json")
    expected = {
        "anonymous": 401,
        "viewer": 403,
        "responder": 403,
        "outsider": 400,
    }.get(role, 201)
    assert response.status_code == expected, response.content
    if expected == 201:
        data = response.json()
        assert data["duration"] == 3 * 3600 and data["team"] == crew.team.pk
    assert MaintenanceWindow.objects.exists() == (expected == 201)


def test_viewers_read_windows_and_outsiders_do_not(api, crew, service):
    body = {"service": service.pk, **WINDOW}
    window_id = (
        api(crew.manager).post("/api/v1/maintenance-windows/", body, format="json").json()["id"]
    )
    assert api(crew.viewer).get(f"/api/v1/maintenance-windows/{window_id}/").status_code == 200
    assert_error(api(crew.outsider).get(f"/api/v1/maintenance-windows/{window_id}/"), 404)
    response = api(crew.manager).patch(
        f"/api/v1/maintenance-windows/{window_id}/", {"time_zone": "Nowhere/Land"}, format="json"
    )
    assert_error(response, 400, fields={"time_zone"})
    response = api(crew.manager).patch(
        f"/api/v1/maintenance-windows/{window_id}/", {"title": "weekly"}, format="json"
    )
    assert response.json()["title"] == "weekly"
