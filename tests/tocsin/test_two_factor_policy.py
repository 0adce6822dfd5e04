"""Two-factor required for staff (TOCSIN_2FA_REQUIRED_FOR_STAFF) and per team; the admin login."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

from tests.conftest import PASSWORD
from tests.tocsin.two_factor_support import app_code, enrol, wrong_code
from tocsin import services


@pytest.fixture
def staff_rule(settings):
    settings.TOCSIN_2FA_REQUIRED_FOR_STAFF = True


def test_staff_without_a_device_are_sent_to_enrolment_on_every_page(client, crew, staff_rule):
    client.force_login(crew.admin)
    for path in ("/", "/teams/", "/account/tokens/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/account/two-factor/setup/"
    htmx = client.get("/teams/", headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == "/account/two-factor/setup/"
    api = client.get("/api/v1/teams/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"
    assert client.get("/account/two-factor/setup/").status_code == 200


def test_enrolling_lets_staff_in(client, crew, staff_rule):
    client.force_login(crew.admin)
    client.get("/account/two-factor/setup/")
    device = crew.admin.totpdevice_set.get()
    assert client.post("/account/two-factor/setup/", {"code": app_code(device)}).status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_api_tokens_are_not_asked_for_a_second_factor(api, crew, staff_rule):
    _, token = services.issue_token(crew.admin, "ci")
    response = api().get("/api/v1/teams/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_without_the_setting_staff_are_not_forced(client, crew, settings):
    settings.TOCSIN_2FA_REQUIRED_FOR_STAFF = False
    client.force_login(crew.admin)
    assert client.get("/").status_code == 200


def test_staff_cannot_turn_off_a_required_second_factor(client, crew, staff_rule):
    device, _ = enrol(crew.admin)
    client.post("/accounts/login/", {"username": "admin", "password": PASSWORD})
    client.post("/accounts/login/code/", {"code": app_code(device)})
    refused = client.post("/account/two-factor/disable/", {"code": app_code(device)})
    assert refused.status_code == 400 and "required" in refused.content.decode()
    assert crew.admin.totpdevice_set.exists()


def test_a_team_can_require_it_of_its_members(client, crew):
    crew.team.require_two_factor = True
    crew.team.save()
    client.force_login(crew.viewer)
    assert client.get("/")["Location"] == "/account/two-factor/setup/"
    client.force_login(crew.outsider)  # member of another team only
    assert client.get("/").status_code == 200


def test_a_team_switching_it_on_reaches_signed_in_members_within_a_minute(client, crew):
    client.force_login(crew.responder)
    assert client.get("/").status_code == 200
    crew.team.require_two_factor = True
    crew.team.save()
    session = client.session
    session["tocsin_2fa"]["at"] -= 61  # a minute later
    session.save()
    assert client.get("/")["Location"] == "/account/two-factor/setup/"


def test_the_team_setting_is_in_the_admin_for_its_managers(client, crew):
    client.force_login(crew.manager)
    page = client.get(f"/admin/tocsin/team/{crew.team.pk}/change/")
    assert page.status_code == 200 and "require_two_factor" in page.content.decode()


def test_the_admin_login_asks_for_the_code_too(client, crew):
    device, _ = enrol(crew.admin)
    first = client.post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD, "next": "/admin/"}
    )
    assert first.status_code == 302 and first["Location"] == "/accounts/login/code/"
    assert SESSION_KEY not in client.session
    assert client.get("/admin/")["Location"].startswith("/admin/login/")

    assert client.post("/accounts/login/code/", {"code": wrong_code(device)}).status_code == 400
    assert SESSION_KEY not in client.session
    right = client.post("/accounts/login/code/", {"code": app_code(device)})
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_still_refuses_people_who_may_not_use_the_admin(client, crew):
    device, _ = enrol(crew.viewer)
    response = client.post("/admin/login/", {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 200 and "tocsin_2fa_pending" not in client.session
    assert SESSION_KEY not in client.session
    assert device  # the code step is never reached


def test_single_sign_on_sessions_leave_the_second_factor_to_the_identity_provider(
    client, crew, staff_rule, settings
):
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "tocsin.oidc.OIDCBackend",
    ]
    enrol(crew.admin)
    client.force_login(crew.admin, backend="tocsin.oidc.OIDCBackend")
    assert client.get("/").status_code == 200  # neither signed out nor sent to enrolment
    client.force_login(crew.admin, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/").status_code == 302  # a password session needs the code step
