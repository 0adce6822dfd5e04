"""The SLA report's page, print view and CSV: who may read them, bad parameters, what they
show and what they cost in queries (the figures themselves: test_sla_report_month.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.models import Incident
from incidents.reports import sla
from monitoring.models import MaintenanceWindow, Service, ServiceLevelObjective
from probes.checks import rollups, services
from probes.checks.models import Result, ResultStatus

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
MARCH = {"month": "2026-03", "tz": "UTC"}


def make_service(team, name: str, *, down: int = 5, up: int = 5) -> Service:
    """A service whose one check ran ``down`` minutes down then ``up`` minutes up from T0, a
    maintenance window just after, and an incident acknowledged after 4 and resolved after
    10 minutes."""
    service = Service.objects.create(team=team, name=name)
    check = services.create_check(
        service=service,
        now=T0,
        name=f"{name} front",
        kind="http",
        config={"url": "http://127.0.0.1:9/"},
        interval=60,
        timeout=2.0,
    )
    rows = []
    for i in range(down + up):
        at = T0 + timedelta(minutes=i, seconds=5)
        status = ResultStatus.DOWN if i < down else ResultStatus.UP
        rows.append(Result(probe=check, slot_at=at, started_at=at, status=status, latency_ms=9.0))
    Result.objects.bulk_create(rows)
    rollups.rollup(T0 + timedelta(minutes=down + up + 2), lookback=timedelta(minutes=30))
    MaintenanceWindow.objects.create(
        service=service,
        title="Upgrade",
        starts_at=T0 + timedelta(hours=1),
        ends_at=T0 + timedelta(hours=2),
    )
    Incident.objects.create(
        team=team,
        service=service,
        title=f"{name} is down",
        created_at=T0,
        acknowledged_at=T0 + timedelta(minutes=4),
        resolved_at=T0 + timedelta(minutes=10),
        status="resolved",
    )
    return service


@pytest.fixture
def checkout(crew) -> Service:
    return make_service(crew.team, "Checkout API")


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def get(user, name, team, params=MARCH):
    return client_for(user).get(reverse(name, args=[team.slug]), params)


# --- who may read ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "responder", "manager", "admin"])
def test_members_of_every_role_read_the_page(crew, checkout, role):
    response = get(crew.by_role(role), "sla_report", crew.team)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-service-id="{checkout.pk}"' in body
    assert "March 2026" in body


@pytest.mark.parametrize("name", ["sla_report", "sla_report_print", "sla_report_csv"])
def test_another_teams_report_is_not_found(crew, checkout, name):
    assert get(crew.outsider, name, crew.team).status_code == 404


@pytest.mark.parametrize("name", ["sla_report", "sla_report_print", "sla_report_csv"])
def test_anonymous_visitors_are_sent_to_log_in(crew, checkout, name):
    response = get(None, name, crew.team)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_unknown_team_is_not_found(crew):
    response = client_for(crew.admin).get(reverse("sla_report", args=["nope"]), MARCH)
    assert response.status_code == 404


def test_the_index_sends_a_one_team_member_to_their_team(crew):
    response = client_for(crew.viewer).get(reverse("sla_reports"))
    assert response.status_code == 302
    assert response["Location"] == reverse("sla_report", args=[crew.team.slug])


def test_the_index_lists_the_teams_of_someone_in_several(crew):
    response = client_for(crew.admin).get(reverse("sla_reports"))
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("sla_report", args=[crew.team.slug]) in body
    assert reverse("sla_report", args=[crew.other_team.slug]) in body


def test_the_weekly_reports_page_links_to_the_sla_reports(crew):
    body = client_for(crew.viewer).get(reverse("reports")).content.decode()
    assert f'href="{reverse("sla_reports")}"' in body


# --- what they show ----------------------------------------------------------------------------


def test_the_page_shows_the_figures_maintenance_and_incidents(crew, checkout):
    body = get(crew.viewer, "sla_report", crew.team).content.decode()
    assert '<td class="num" data-figure="availability">50.0000</td>' in body
    assert '<td class="num" data-figure="downtime">5</td>' in body
    assert '<td class="num" data-figure="maintenance">60</td>' in body
    assert '<td class="num" data-figure="mtta">4.0</td>' in body
    assert '<td class="num" data-figure="mttr">10.0</td>' in body
    assert "2026-03-10 14:00 UTC" in body  # the maintenance window, in the report's zone
    assert "Checkout API is down" in body
    assert 'href="/reports/sla/payments/print/?month=2026-03&amp;tz=UTC"' in body
    assert 'href="/reports/sla/payments/sla.csv?month=2026-03&amp;tz=UTC"' in body


def test_times_are_shown_in_the_chosen_time_zone(crew, checkout):
    params = {"month": "2026-03", "tz": "Europe/Berlin"}
    body = get(crew.viewer, "sla_report", crew.team, params).content.decode()
    assert "2026-03-10 15:00 CET" in body
    assert "2026-03-01 00:00 CET to 2026-04-01 00:00 CEST · 743 hours" in body


def test_the_page_defaults_to_last_month(crew, checkout):
    body = client_for(crew.viewer).get(reverse("sla_report", args=["payments"])).content
    label = sla.last_month(timezone.localdate()).strftime("%B %Y")
    assert label in body.decode()


def test_a_target_parameter_sets_the_verdict(crew, checkout):
    body = get(crew.viewer, "sla_report", crew.team, {**MARCH, "target": "40"}).content
    assert '<span class="badge badge-ok">met</span>' in body.decode()
    body = get(crew.viewer, "sla_report", crew.team, MARCH).content
    assert '<span class="badge badge-critical">missed</span>' in body.decode()


def test_the_service_parameter_narrows_the_report(crew, checkout):
    other = make_service(crew.team, "Ledger")
    body = get(crew.viewer, "sla_report", crew.team, {**MARCH, "service": other.pk}).content
    assert f'data-service-id="{other.pk}"' in body.decode()
    assert f'data-service-id="{checkout.pk}"' not in body.decode()


def test_the_print_view_has_print_css_and_no_script(crew, checkout):
    response = get(crew.viewer, "sla_report_print", crew.team)
    body = response.content.decode()
    assert response.status_code == 200
    assert "@media print" in body and "@page" in body
    assert "<script" not in body
    assert '<td class="num" data-figure="availability">50.0000</td>' in body


def test_the_csv_has_one_row_per_service(crew, checkout):
    response = get(crew.viewer, "sla_report_csv", crew.team)
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="tocsin-sla-payments-2026-03.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == sla.CSV_COLUMNS
    assert rows[1] == [
        "2026-03",
        "UTC",
        "Payments",
        "Checkout API",
        "99.9",
        "50.0000",
        "no",
        "44640",
        "10",
        "5",
        "0.0",
        "60",
        "0",
        "44570",
        "0",
        "1",
        "1",
        "4.0",
        "1",
        "10.0",
    ]


# --- bad parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, field",
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "March"}, "month"),
        ({"month": "1999-12"}, "month"),
        ({"month": "2999-01"}, "month"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"target": "101"}, "target"),
        ({"target": "lots"}, "target"),
        ({"service": "x"}, "service"),
    ],
)
def test_bad_parameters_are_form_errors(crew, checkout, params, field):
    response = get(crew.viewer, "sla_report", crew.team, {**MARCH, **params})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    csv_response = get(crew.viewer, "sla_report_csv", crew.team, {**MARCH, **params})
    assert csv_response.status_code == 400
    assert csv_response.content.decode().startswith(f"{field}: ")
    assert get(crew.viewer, "sla_report_print", crew.team, {**MARCH, **params}).status_code == 400


def test_a_service_of_another_team_is_a_form_error_not_its_figures(crew, checkout):
    theirs = make_service(crew.other_team, "Search")
    response = get(crew.admin, "sla_report", crew.team, {**MARCH, "service": theirs.pk})
    assert response.status_code == 400
    assert f'data-service-id="{theirs.pk}"' not in response.content.decode()


# --- cost --------------------------------------------------------------------------------------


def test_the_page_query_count_does_not_grow_with_services(
    crew, checkout, django_assert_max_num_queries
):
    client = client_for(crew.viewer)
    path = reverse("sla_report", args=[crew.team.slug])
    with django_assert_max_num_queries(13):
        assert client.get(path, MARCH).status_code == 200
    for n in range(4):
        make_service(crew.team, f"Extra {n}")
    with django_assert_max_num_queries(13):
        body = client.get(path, MARCH).content.decode()
    assert body.count("data-service-id=") == 5


def test_a_services_probe_availability_slo_sets_its_target(crew, checkout):
    ledger = make_service(crew.team, "Ledger")
    for name, window, objective in (
        ("Rolling", "rolling_30d", "99.99"),
        ("Monthly", "calendar_month", "40"),  # a calendar month wins: an SLA is monthly
    ):
        ServiceLevelObjective.objects.create(
            service=checkout,
            name=name,
            sli_kind="probe_availability",
            objective=objective,
            window=window,
        )
    ServiceLevelObjective.objects.create(
        service=ledger, name="Latency", sli_kind="probe_latency", objective="10"
    )
    report = sla.build(crew.team, date(2026, 3, 1), time_zone="UTC")
    targets = {s.service.name: (s.target, s.met) for s in report.services}
    assert targets == {"Checkout API": (40.0, True), "Ledger": (99.9, False)}
    given = sla.build(crew.team, date(2026, 3, 1), time_zone="UTC", target=45)
    assert [s.target for s in given.services] == [45.0, 45.0]
