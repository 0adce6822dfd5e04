"""GET /api/v1/reports/sla/<team id>/: the SLA report's figures as JSON, the page's parameters."""

from __future__ import annotations

import pytest

from tests.incidents.test_sla_report_pages import MARCH, make_service
from tests.tocsin.api_support import assert_error

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def url(team) -> str:
    return f"/api/v1/reports/sla/{team.pk}/"


@pytest.fixture
def checkout(crew):
    return make_service(crew.team, "Checkout API")


@pytest.mark.parametrize("role", ["viewer", "responder", "manager", "admin"])
def test_every_member_reads_the_report_of_their_team(api, crew, checkout, role):
    response = api(crew.by_role(role)).get(url(crew.team), MARCH)
    assert response.status_code == 200
    body = response.json()
    assert (body["month"], body["time_zone"], body["complete"]) == ("2026-03", "UTC", True)
    assert body["team"] == {"id": crew.team.pk, "slug": "payments", "name": "Payments"}
    [service] = body["services"]
    assert service["service"] == {"id": checkout.pk, "name": "Checkout API"}
    assert (service["availability"], service["target"], service["met"]) == (50.0, 99.9, False)
    assert service["minutes"] == 44_640
    assert (service["measured_minutes"], service["downtime_minutes"]) == (10, 5)
    assert service["maintenance_minutes"] == 60
    assert service["maintenance"] == [
        {
            "title": "Upgrade",
            "starts_at": "2026-03-10T14:00:00+00:00",
            "ends_at": "2026-03-10T15:00:00+00:00",
            "minutes_in_month": 60,
        }
    ]
    assert (service["mtta_seconds"], service["mttr_seconds"]) == (240.0, 600.0)
    assert service["incidents"] == 1  # opened in the month
    [incident] = service["incident_list"]
    assert (incident["duration_minutes"], incident["in_month_minutes"]) == (10.0, 10.0)


def test_another_teams_report_is_a_404(api, crew, checkout):
    assert_error(api(crew.outsider).get(url(crew.team), MARCH), 404, "not_found")


def test_anonymous_gets_401(api, crew, checkout):
    assert_error(api().get(url(crew.team), MARCH), 401)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"month": "2026-3"}, "month"),
        ({"month": "0000-01"}, "month"),
        ({"tz": "Nowhere"}, "tz"),
        ({"target": "-1"}, "target"),
        ({"service": "0"}, "service"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(api, crew, checkout, params, field):
    response = api(crew.viewer).get(url(crew.team), {**MARCH, **params})
    assert set(assert_error(response, 400)["fields"]) == {field}


def test_a_service_of_another_team_is_a_400(api, crew, checkout):
    theirs = make_service(crew.other_team, "Search")
    response = api(crew.admin).get(url(crew.team), {**MARCH, "service": theirs.pk})
    assert set(assert_error(response, 400)["fields"]) == {"service"}


def test_a_huge_team_id_is_a_404(api, crew):
    assert_error(api(crew.admin).get("/api/v1/reports/sla/99999999999999999999/"), 404)
