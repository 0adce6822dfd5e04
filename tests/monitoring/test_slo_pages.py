"""The SLO pages: the list (stored figures, status in colour and words, sparkline, a flat number
of queries), an SLO's page (figures now, burn-down data for uPlot, the alert windows), their
htmx partials, and team scoping (404 outside the team; the edit link for managers only)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.lifecycle.models import Incident
from monitoring.models import Service
from monitoring.slos.evaluation import evaluate
from tests.monitoring.test_slo_support import make_slo, service

__all__ = ["service"]  # fixture


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def slo(service):
    # An open P1 incident for the last half hour: a budget being spent.
    now = timezone.now()
    Incident.objects.create(
        team=service.team,
        service=service,
        title="Checkout down",
        priority="P1",
        created_at=now - timedelta(minutes=30),
    )
    slo = make_slo(
        service, name="Checkout up", sli_kind="incidents", objective="99.9", window="rolling_7d"
    )
    evaluate(slo, now)
    return slo


@pytest.fixture
def foreign(crew):
    other = Service.objects.create(team=crew.other_team, name="Search API")
    return make_slo(other, name="Search up", sli_kind="incidents")


def test_the_list_shows_budgets_with_status_in_words(crew, slo, foreign):
    html = client_for(crew.viewer).get(reverse("slos")).content.decode()
    assert "Checkout up" in html and "Search up" not in html
    assert "badge-firing" in html and "Budget spent" in html  # 30 minutes of a 10-minute budget
    assert "<polyline points=" in html
    assert "1h/5m" in html  # the page pair fires
    assert 'aria-current="page"' in html and 'hx-get="/slos/rows/"' in html


def test_the_list_costs_the_same_queries_for_more_slos(
    crew, service, slo, django_assert_max_num_queries
):
    client = client_for(crew.viewer)
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("slos"))
    for n in range(10):
        make_slo(service, name=f"SLO {n}", sli_kind="incidents")
    with django_assert_max_num_queries(len(few)):
        html = client.get(reverse("slos")).content.decode()
    assert html.count("No data yet") == 10


def test_an_slos_page_computes_its_figures_and_chart(crew, slo):
    response = client_for(crew.viewer).get(reverse("slo", args=[slo.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('id="slo-burn-down"')
    chart = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert len(chart["t"]) == len(chart["budget"]) > 0 and chart["budget"][-1] < 0
    for pair in ("1h/5m", "6h/30m", "1d/2h", "3d/6h"):
        assert pair in html
    assert "/admin/monitoring/servicelevelobjective/" not in html  # viewers do not edit
    assert reverse("api-slo-export", args=[slo.pk]) in html


def test_managers_get_the_edit_link(crew, slo):
    html = client_for(crew.manager).get(reverse("slo", args=[slo.pk])).content.decode()
    assert reverse("admin:monitoring_servicelevelobjective_change", args=[slo.pk]) in html


def test_the_partials_refresh_alone(crew, slo):
    client = client_for(crew.viewer)
    rows = client.get(reverse("slo_rows")).content.decode()
    assert rows.lstrip().startswith('<section id="slo-rows"') and "Checkout up" in rows
    figures = client.get(reverse("slo_figures", args=[slo.pk])).content.decode()
    assert figures.lstrip().startswith('<section id="slo-figures"')


def test_other_teams_slos_are_404_and_strangers_sign_in(crew, slo, foreign):
    client = client_for(crew.viewer)
    assert client.get(reverse("slo", args=[foreign.pk])).status_code == 404
    assert client.get(reverse("slo_figures", args=[foreign.pk])).status_code == 404
    assert client_for(crew.outsider).get(reverse("slo", args=[slo.pk])).status_code == 404
    assert client.get(reverse("slos") + "?team=nope").status_code == 404
    assert Client().get(reverse("slos")).status_code == 302
