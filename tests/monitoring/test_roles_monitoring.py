"""Who may do what to services, integrations and alerts: UI, API and admin, role by role.

Anonymous: login (UI, admin) or 401 (API). Outsiders (a manager of another team): 404, the team's
objects are not confirmed to exist. Viewers read; responders also silence; managers configure.
A refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from monitoring.models import Alert, Integration, Service
from monitoring.pipeline import AlertInput, process
from tocsin.models import Event

pytestmark = pytest.mark.usefixtures("fresh_throttles")

PEOPLE = ["anonymous", "viewer", "responder", "manager", "outsider", "admin"]
LOGIN = "login"
ADMIN_LOGIN = "admin-login"
MISSING = "missing"


def client_for(crew: Any, who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(crew.by_role(who))
    return client


def outcome(response: Any) -> int | str:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login")):
            return ADMIN_LOGIN
        if location.startswith(reverse("login") + "?next="):
            return LOGIN
        if location == reverse("admin:index"):
            return MISSING
    return response.status_code


def state() -> dict[str, Any]:
    return {
        "services": sorted(Service.objects.values_list("pk", "name", "description")),
        "integrations": sorted(
            Integration.objects.values_list("pk", "name", "key_hash", "revoked_at")
        ),
        "events": Event.objects.exclude(kind__startswith="user.").count(),
    }


@pytest.fixture
def world(crew, service, other_service, doors):
    alert = process(service, [AlertInput(labels={"alertname": "A"})], source="generic")[0].alert
    return {"service": service, "door": doors["generic"].integration, "alert": alert}


def who_reads(outsider: int | str = 404, anonymous: int | str = LOGIN) -> dict[str, Any]:
    return {"anonymous": anonymous, "outsider": outsider} | dict.fromkeys(
        ["viewer", "responder", "manager", "admin"], 200
    )


def managers(ok: int, anonymous: int | str = LOGIN) -> dict[str, Any]:
    return {
        "anonymous": anonymous,
        "viewer": 403,
        "responder": 403,
        "manager": ok,
        "outsider": 404,
        "admin": ok,
    }


# -- UI ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", PEOPLE)
def test_ui_reading(crew, world, who):
    client = client_for(crew, who)
    got = {
        "alerts": outcome(client.get(reverse("alerts"))),
        "alerts?team": outcome(client.get(reverse("alerts") + "?team=payments")),
        "table": outcome(client.get(reverse("alerts_table"))),
        "services": outcome(client.get(reverse("services"))),
        "service": outcome(client.get(reverse("service", args=["payments", "checkout-api"]))),
    }
    everyone = LOGIN if who == "anonymous" else 200
    team_page = who_reads()[who]
    assert got == {
        "alerts": everyone,
        "alerts?team": team_page,
        "table": everyone,
        "services": everyone,
        "service": team_page,
    }


@pytest.mark.parametrize("who", PEOPLE)
def test_ui_alert_list_shows_only_visible_alerts(crew, world, other_service, who):
    process(other_service, [AlertInput(labels={"alertname": "Other"})], source="generic")
    if who == "anonymous":
        return
    html = client_for(crew, who).get(reverse("alerts")).content.decode()
    sees = (f'data-alert-id="{world["alert"].pk}"' in html, "Other" in html)
    expected = {"outsider": (False, True), "admin": (True, True)}.get(who, (True, False))
    assert sees == expected


UI_WRITES = {
    "service_create": lambda crew, w: (
        reverse("service_create"),
        {"team": crew.team.pk, "name": "New"},
    ),
    "service_update": lambda crew, w: (
        reverse("service_update", args=["payments", "checkout-api"]),
        {"name": "Renamed"},
    ),
    "integration_create": lambda crew, w: (
        reverse("integration_create", args=["payments", "checkout-api"]),
        {"kind": "generic"},
    ),
    "integration_rotate": lambda crew, w: (
        reverse("integration_rotate", args=["payments", "checkout-api", w["door"].pk]),
        {},
    ),
    "integration_revoke": lambda crew, w: (
        reverse("integration_revoke", args=["payments", "checkout-api", w["door"].pk]),
        {},
    ),
}
UI_OK = {
    "service_create": 302,
    "service_update": 302,
    "integration_create": 302,
    "integration_rotate": 302,
    "integration_revoke": 302,
}


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("what", list(UI_WRITES))
def test_ui_configuring_needs_the_manager_role(crew, world, who, what):
    url, data = UI_WRITES[what](crew, world)
    before = state()
    got = outcome(client_for(crew, who).post(url, data))
    expected = managers(UI_OK[what])[who]
    if what == "service_create" and who == "outsider":
        expected = 404  # Payments is not visible to them
    assert got == expected
    if got != UI_OK[what]:
        assert state() == before


@pytest.mark.parametrize("who", PEOPLE)
def test_ui_silencing_needs_the_responder_role(crew, world, who):
    from monitoring.models import Silence

    got = outcome(client_for(crew, who).post(reverse("alert_silence", args=[world["alert"].pk])))
    expected = {
        "anonymous": LOGIN,
        "viewer": 403,
        "responder": 302,
        "manager": 302,
        "outsider": 404,
        "admin": 302,
    }[who]
    assert got == expected
    assert Silence.objects.exists() == (expected == 302)


# -- API ---------------------------------------------------------------------------------------
def api_calls(crew: Any, w: dict[str, Any]) -> dict[str, tuple[str, str, Any, dict[str, int]]]:
    s, d, a = w["service"].pk, w["door"].pk, w["alert"].pk
    read = {"anonymous": 401, "outsider": 404} | dict.fromkeys(
        ["viewer", "responder", "manager", "admin"], 200
    )
    listing = {"anonymous": 401} | dict.fromkeys(PEOPLE[1:], 200)

    def manage(ok: int) -> dict[str, int]:
        return managers(ok, anonymous=401)

    return {
        "services.list": ("get", "/api/v1/services/", None, listing),
        "services.retrieve": ("get", f"/api/v1/services/{s}/", None, read),
        "services.create": (
            "post",
            "/api/v1/services/",
            {"team": "payments", "name": "New"},
            manage(201) | {"outsider": 400},  # the team is not one they can see
        ),
        "services.update": ("patch", f"/api/v1/services/{s}/", {"name": "X"}, manage(200)),
        "services.delete": ("delete", f"/api/v1/services/{s}/", None, manage(400)),  # has alerts
        "integrations.list": ("get", "/api/v1/integrations/", None, listing),
        "integrations.retrieve": ("get", f"/api/v1/integrations/{d}/", None, read),
        "integrations.create": (
            "post",
            "/api/v1/integrations/",
            {"service": s, "kind": "generic"},
            manage(201) | {"outsider": 400},
        ),
        "integrations.update": ("patch", f"/api/v1/integrations/{d}/", {"name": "x"}, manage(200)),
        "integrations.rotate": ("post", f"/api/v1/integrations/{d}/rotate-key/", None, manage(200)),
        "integrations.revoke": ("delete", f"/api/v1/integrations/{d}/", None, manage(204)),
        "alerts.list": ("get", "/api/v1/alerts/", None, listing),
        "alerts.retrieve": ("get", f"/api/v1/alerts/{a}/", None, read),
    }


API_NAMES = [
    "services.list",
    "services.retrieve",
    "services.create",
    "services.update",
    "services.delete",
    "integrations.list",
    "integrations.retrieve",
    "integrations.create",
    "integrations.update",
    "integrations.rotate",
    "integrations.revoke",
    "alerts.list",
    "alerts.retrieve",
]


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("name", API_NAMES)
def test_api(crew, world, api, who, name):
    method, url, body, expected = api_calls(crew, world)[name]
    client = api(None if who == "anonymous" else crew.by_role(who))
    before = state()
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == expected[who], response.content[:300]
    if response.status_code >= 400 or method == "get":
        assert state() == before


@pytest.mark.parametrize("who", PEOPLE)
def test_api_lists_only_visible_rows(crew, world, api, other_service, who):
    if who == "anonymous":
        return
    process(other_service, [AlertInput(labels={"alertname": "O"})], source="generic")
    client = api(crew.by_role(who))
    teams = {
        path: {
            row["team"]["slug"] if isinstance(row["team"], dict) else row["team"]
            for row in client.get(path).json()["results"]
        }
        for path in ("/api/v1/services/", "/api/v1/alerts/")
    }
    expected = {"outsider": {"search"}, "admin": {"payments", "search"}}.get(who, {"payments"})
    assert teams == {"/api/v1/services/": expected, "/api/v1/alerts/": expected}


# -- admin -------------------------------------------------------------------------------------
def admin_pages(w: dict[str, Any]) -> dict[str, str]:
    return {
        "service list": reverse("admin:monitoring_service_changelist"),
        "service": reverse("admin:monitoring_service_change", args=[w["service"].pk]),
        "service add": reverse("admin:monitoring_service_add"),
        "integration list": reverse("admin:monitoring_integration_changelist"),
        "integration": reverse("admin:monitoring_integration_change", args=[w["door"].pk]),
        "integration add": reverse("admin:monitoring_integration_add"),
        "alert list": reverse("admin:monitoring_alert_changelist"),
        "alert": reverse("admin:monitoring_alert_change", args=[w["alert"].pk]),
    }


@pytest.mark.parametrize("who", PEOPLE)
def test_admin_pages(crew, world, who):
    client = client_for(crew, who)
    got = {page: outcome(client.get(url)) for page, url in admin_pages(world).items()}
    if who in ("anonymous", "viewer", "responder"):
        expected = dict.fromkeys(got, ADMIN_LOGIN)
    elif who == "outsider":
        expected = dict.fromkeys(got, 200) | dict.fromkeys(
            ["service", "integration", "alert"], MISSING
        )
    else:
        expected = dict.fromkeys(got, 200)
    assert got == expected


@pytest.mark.parametrize("who", ["manager", "outsider", "admin"])
def test_admin_lists_show_only_visible_rows(crew, world, other_service, who):
    process(other_service, [AlertInput(labels={"alertname": "O"})], source="generic")
    client = client_for(crew, who)
    expected = {"manager": {"Payments"}, "outsider": {"Search"}}.get(who, {"Payments", "Search"})
    for name in ("service", "alert"):
        cl = client.get(reverse(f"admin:monitoring_{name}_changelist")).context["cl"]
        assert {row.team.name for row in cl.result_list} == expected
    cl = client.get(reverse("admin:monitoring_integration_changelist")).context["cl"]
    assert {row.service.team.name for row in cl.result_list} <= expected


def test_outsider_cannot_rotate_another_teams_key_through_the_admin(crew, world):
    door = world["door"]
    before = state()
    client_for(crew, "outsider").post(
        reverse("admin:monitoring_integration_changelist"),
        {"action": "rotate_keys", "_selected_action": [door.pk]},
    )
    assert state() == before
    assert Alert.objects.count() == 1
