"""GET /api/v1/reports/incidents/: the Reports page's figures as JSON, same filters."""

from __future__ import annotations

import pytest

from tests.incidents.report_support import RANGE, build
from tests.tocsin.api_support import assert_error

URL = "/api/v1/reports/incidents/"

pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def data(crew):
    return build(crew)


@pytest.mark.parametrize("role", ["viewer", "responder", "manager"])
def test_every_member_reads_the_report_of_their_team(api, crew, data, role):
    response = api(crew.by_role(role)).get(URL, RANGE)
    assert response.status_code == 200
    body = response.json()
    assert body["since"] == "2025-01-13" and body["until"] == "2025-01-26"
    assert body["weeks"] == ["2025-01-13", "2025-01-20"]
    assert body["total"] == {
        "incidents": 4,
        "acknowledged": 3,
        "mtta_seconds": 320.0,
        "resolved": 3,
        "mttr_seconds": 2800.0,
        "ack_breaches": 1,
        "resolve_breaches": 1,
    }
    assert [w["incidents"] for w in body["by_week"]] == [3, 1]
    assert [t["team"]["slug"] for t in body["by_team"]] == [crew.team.slug]
    services = {s["service"]["name"]: s["total"]["mttr_seconds"] for s in body["by_service"]}
    assert services == {"Checkout API": 3600.0, "Ledger": 1200.0}
    checkout = next(s for s in body["by_service"] if s["service"]["name"] == "Checkout API")
    assert [w["incidents"] for w in checkout["weeks"]] == [2, 0]


def test_an_outsider_sees_only_their_own_team(api, crew, data):
    body = api(crew.outsider).get(URL, RANGE).json()
    assert [t["team"]["name"] for t in body["by_team"]] == ["Search"]
    assert body["total"]["incidents"] == 1


def test_anonymous_gets_401(api, crew, data):
    assert_error(api().get(URL, RANGE), 401)


def test_a_bad_date_is_a_400_naming_the_field(api, crew, data):
    error = assert_error(api(crew.viewer).get(URL, {"since": "last week"}), 400, "invalid")
    assert set(error["fields"]) == {"since"}


def test_an_end_before_the_start_is_a_400_on_until(api, crew, data):
    response = api(crew.viewer).get(URL, {"since": "2025-02-01", "until": "2025-01-01"})
    error = assert_error(response, 400, "invalid", {"until"})
    assert error["fields"]["until"] == ["must not be before since"]


def test_a_team_the_caller_may_not_view_is_a_400_on_team(api, crew, data):
    response = api(crew.viewer).get(URL, {"team": crew.other_team.slug, **RANGE})
    error = assert_error(response, 400, "invalid", {"team"})
    assert "no team with this id or slug that you can view" in error["fields"]["team"][0]


def test_a_service_the_caller_may_not_view_is_a_400_on_service(api, crew, data):
    response = api(crew.viewer).get(URL, {"service": data.search.pk, **RANGE})
    assert_error(response, 400, "invalid", {"service"})


def test_an_unknown_filter_is_a_400(api, crew, data):
    response = api(crew.viewer).get(URL, {"tema": "payments"})
    error = assert_error(response, 400, "invalid", {"tema"})
    assert "unknown filter" in error["fields"]["tema"][0]


def test_the_team_filter_takes_an_id_or_a_slug(api, crew, data):
    by_id = api(crew.admin).get(URL, {"team": crew.other_team.pk, **RANGE}).json()
    by_slug = api(crew.admin).get(URL, {"team": crew.other_team.slug, **RANGE}).json()
    assert by_id == by_slug
    assert by_id["total"]["incidents"] == 1


def test_the_report_takes_a_bounded_number_of_queries(
    api, crew, data, django_assert_max_num_queries
):
    """Session, user, roles, the team filter, the one aggregate."""
    client = api(crew.viewer)
    with django_assert_max_num_queries(5):
        response = client.get(URL, {"team": crew.team.slug, **RANGE})
    assert response.status_code == 200
