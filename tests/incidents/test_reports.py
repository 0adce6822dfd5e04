"""The incident report: exact figures on a known data set, the Reports page and its CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.reports import queries as reports
from tests.incidents.report_support import RANGE, SINCE, UNTIL, WEEK1, WEEK2, WEEK2_NOON, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(crew):
    return build(crew)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(user, **params):
    return client_for(user).get(reverse("reports"), params)


# --- Figures -----------------------------------------------------------------------------------


def test_report_figures_on_a_known_data_set(crew, data):
    report = reports.build(crew.viewer, since=WEEK1, until=date(2025, 1, 26)).as_dict()
    assert report["weeks"] == [WEEK1.isoformat(), WEEK2.isoformat()]
    assert report["total"] == {
        "incidents": 4,
        "acknowledged": 3,
        "mtta_seconds": 320.0,  # (4 + 10 + 2) min / 3
        "resolved": 3,
        "mttr_seconds": 2800.0,  # (30 + 90 + 20) min / 3
        "ack_breaches": 1,
        "resolve_breaches": 1,
    }
    week1, week2 = report["by_week"]
    assert (week1["incidents"], week1["mtta_seconds"], week1["mttr_seconds"]) == (3, 420.0, 3600.0)
    assert (week1["ack_breaches"], week1["resolve_breaches"]) == (1, 1)
    assert (week2["incidents"], week2["mtta_seconds"], week2["mttr_seconds"]) == (1, 120.0, 1200.0)
    [team] = report["by_team"]
    assert team["team"]["name"] == "Payments" and team["total"] == report["total"]
    services = {s["service"]["name"]: s["total"] for s in report["by_service"]}
    assert services == {
        "Checkout API": {
            "incidents": 2,
            "acknowledged": 2,
            "mtta_seconds": 420.0,
            "resolved": 2,
            "mttr_seconds": 3600.0,
            "ack_breaches": 1,
            "resolve_breaches": 1,
        },
        "Ledger": {
            "incidents": 2,
            "acknowledged": 1,
            "mtta_seconds": 120.0,
            "resolved": 1,
            "mttr_seconds": 1200.0,
            "ack_breaches": 0,
            "resolve_breaches": 0,
        },
    }


def test_a_team_mean_is_over_its_incidents_not_a_mean_of_service_means(crew, data):
    """Checkout's MTTA is 7 min over 2 incidents, Ledger's 2 min over 1: the team's is 16/3 min,
    not (7 + 2) / 2."""
    report = reports.build(crew.viewer, since=WEEK1, until=date(2025, 1, 26)).as_dict()
    assert report["by_team"][0]["total"]["mtta_seconds"] == 320.0


def test_the_report_shows_only_teams_the_user_may_view(crew, data):
    outsider = reports.build(crew.outsider, since=WEEK1, until=date(2025, 1, 26)).as_dict()
    assert [t["team"]["name"] for t in outsider["by_team"]] == ["Search"]
    assert outsider["total"]["incidents"] == 1
    admin = reports.build(crew.admin, since=WEEK1, until=date(2025, 1, 26)).as_dict()
    assert [t["team"]["name"] for t in admin["by_team"]] == ["Payments", "Search"]
    assert admin["total"]["incidents"] == 5


def test_the_service_filter_narrows_the_report(crew, data):
    report = reports.build(
        crew.viewer, since=WEEK1, until=date(2025, 1, 26), service=data.ledger
    ).as_dict()
    assert report["total"]["incidents"] == 2
    assert [s["service"]["name"] for s in report["by_service"]] == ["Ledger"]


def test_the_default_range_is_the_last_twelve_weeks(crew):
    since, until = reports.default_range(date(2025, 3, 5))  # a Wednesday
    assert until == date(2025, 3, 5)
    assert since == date(2024, 12, 16)  # the Monday 11 weeks before this week's
    report = reports.build(crew.viewer, since=since, until=until)
    assert len(report.weeks) == 12


# --- The page ----------------------------------------------------------------------------------


def test_the_page_shows_the_figures_and_the_charts_data(crew, data):
    response = page(crew.viewer, **RANGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert '<dd style="margin: 0;" data-figure="incidents">4</dd>' in body
    assert "5.3 min" in body  # MTTA 320 s
    assert "46.7 min" in body  # MTTR 2800 s
    assert 'id="report-data"' in body
    assert "vendor/uplot/uPlot" in body and "cdn" not in body.lower()
    chart = response.context["chart"]
    assert chart["incidents"] == [3, 1]
    assert chart["breaches"] == [2, 0]
    assert chart["mtta"] == [7.0, 2.0]
    assert "Search" not in body  # the other team's name appears nowhere


def test_the_page_defaults_to_the_last_twelve_weeks(crew):
    response = page(crew.viewer)
    assert response.status_code == 200
    today = timezone.now().date()
    assert response.context["filters"]["until"] == today
    assert len(response.context["chart"]["weeks"]) == 12


def test_the_nav_links_to_reports(crew):
    body = client_for(crew.viewer).get(reverse("incidents")).content.decode()
    assert f'href="{reverse("reports")}"' in body


def test_a_bad_date_is_a_form_error(crew, data):
    response = page(crew.viewer, since="13/01/2025")
    assert response.status_code == 400
    assert "since: Enter a valid date." in response.content.decode()


def test_an_end_before_the_start_is_a_form_error(crew, data):
    response = page(crew.viewer, since=UNTIL, until=SINCE)
    assert response.status_code == 400
    assert "until: must not be before since" in response.content.decode()


def test_a_too_long_range_is_a_form_error(crew):
    response = page(crew.viewer, since="2020-01-01", until="2025-01-01")
    assert response.status_code == 400
    assert "at most 731 days" in response.content.decode()


def test_a_team_the_user_may_not_view_is_a_form_error_not_its_figures(crew, data):
    response = page(crew.viewer, team=crew.other_team.slug, **RANGE)
    assert response.status_code == 400
    body = response.content.decode()
    assert "no team with this id or slug that you can view" in body
    assert "Search API" not in body


def test_a_service_the_user_may_not_view_is_a_form_error(crew, data):
    response = page(crew.viewer, service=data.search.pk, **RANGE)
    assert response.status_code == 400
    assert "no service with this id that you can view" in response.content.decode()


def test_a_service_of_another_team_than_the_chosen_one_is_a_form_error(crew, data):
    response = page(crew.admin, team=crew.team.slug, service=data.search.pk, **RANGE)
    assert response.status_code == 400
    assert "this service belongs to another team" in response.content.decode()


def test_the_page_needs_a_login(db):
    response = Client().get(reverse("reports"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_page_query_count_does_not_grow_with_incidents(
    crew, data, django_assert_max_num_queries
):
    """Session, user, roles, team filter, the one aggregate, team and service choices."""
    client = client_for(crew.viewer)
    params = {"team": crew.team.slug, **RANGE}
    with django_assert_max_num_queries(7):
        assert client.get(reverse("reports"), params).status_code == 200
    build_more = [data.checkout, data.ledger] * 20
    for n, service in enumerate(build_more):
        service.incidents.create(
            team=crew.team, title=f"more {n}", created_at=WEEK2_NOON, group_key=f"more-{n}"
        )
    with django_assert_max_num_queries(7):
        response = client.get(reverse("reports"), params)
    assert response.context["total"]["incidents"] == 44


# --- CSV ---------------------------------------------------------------------------------------


def test_the_csv_has_one_row_per_week_team_and_service(crew, data):
    response = client_for(crew.viewer).get(reverse("reports_csv"), RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [
        (r["week"], r["team"], r["service"], r["incidents"], r["mtta_minutes"], r["mttr_minutes"])
        for r in rows
    ] == [
        ("2025-01-13", "Payments", "Checkout API", "2", "7.0", "60.0"),
        ("2025-01-13", "Payments", "Ledger", "1", "", ""),
        ("2025-01-20", "Payments", "Ledger", "1", "2.0", "20.0"),
    ]
    assert [(r["ack_breaches"], r["resolve_breaches"]) for r in rows] == [
        ("1", "1"),
        ("0", "0"),
        ("0", "0"),
    ]
    assert list(rows[0]) == reports.CSV_COLUMNS


def test_the_csv_takes_the_same_filters(crew, data):
    response = client_for(crew.viewer).get(
        reverse("reports_csv"), {"service": data.ledger.pk, **RANGE}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["service"] for r in rows} == {"Ledger"}


def test_the_csv_refuses_bad_filters(crew, data):
    response = client_for(crew.viewer).get(reverse("reports_csv"), {"since": "yesterday"})
    assert response.status_code == 400
    assert "since: Enter a valid date." in response.content.decode()


def test_the_csv_never_holds_another_teams_rows(crew, data):
    response = client_for(crew.outsider).get(reverse("reports_csv"), RANGE)
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["team"] for r in rows} == {"Search"}


def test_the_page_links_the_csv_with_the_same_filters(crew, data):
    body = page(crew.viewer, service=data.ledger.pk, **RANGE).content.decode()
    assert (
        f'href="{reverse("reports_csv")}?service={data.ledger.pk}&amp;since={SINCE}'
        f'&amp;until={UNTIL}"' in body
    )


def test_weeks_without_incidents_are_zero_rows(crew, data):
    report = reports.build(crew.viewer, since=WEEK1 - timedelta(weeks=2), until=date(2025, 1, 26))
    by_week = report.as_dict()["by_week"]
    assert [w["week"] for w in by_week] == ["2024-12-30", "2025-01-06", "2025-01-13", "2025-01-20"]
    assert by_week[0] == {
        "week": "2024-12-30",
        "incidents": 0,
        "acknowledged": 0,
        "mtta_seconds": None,
        "resolved": 0,
        "mttr_seconds": None,
        "ack_breaches": 0,
        "resolve_breaches": 0,
    }
    # Sunday 12 January, 23:59 UTC, belongs to the week of Monday 6 January.
    assert (by_week[1]["incidents"], by_week[1]["mtta_seconds"]) == (1, 60.0)
