"""/api/v1/alerts/: read-only, team-scoped, filtered, paginated, a flat number of queries."""

from __future__ import annotations

import pytest

from monitoring.models import AlertStatus, Severity
from monitoring.pipeline import AlertInput, process
from tests.tocsin.api_support import assert_error

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def fire(service, name, severity=Severity.ERROR, status=AlertStatus.FIRING, **labels):
    item = AlertInput(labels={"alertname": name, **labels}, severity=severity, status=status)
    return process(service, [item], source="alertmanager")[0].alert


@pytest.fixture
def alerts(service, other_service):
    a = fire(service, "HighLatency", Severity.CRITICAL, env="prod", instance="api-1")
    b = fire(service, "DiskFull", Severity.WARNING, env="prod", instance="db-1")
    c = fire(service, "Canary", Severity.INFO, env="staging")
    fire(service, "Canary", Severity.INFO, status=AlertStatus.RESOLVED, env="staging")
    d = fire(other_service, "Elsewhere", Severity.CRITICAL)
    return {"latency": a, "disk": b, "canary": c, "other": d}


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_list_shows_only_visible_alerts_newest_change_first(crew, api, alerts):
    response = api(crew.viewer).get("/api/v1/alerts/")
    rows = response.json()["results"]
    assert [r["summary"] for r in rows] == ["Canary", "DiskFull", "HighLatency"]
    row = rows[-1]
    assert row["service"]["name"] == "Checkout API" and row["team"]["slug"] == "payments"
    assert row["labels"]["instance"] == "api-1" and row["flapping"] is False
    assert row["status"] == "firing" and row["occurrences"] == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=firing", {"latency", "disk"}),
        ("status=resolved", {"canary"}),
        ("severity=critical", {"latency"}),
        ("severity=critical&severity=warning", {"latency", "disk"}),
        ("label=env=prod", {"latency", "disk"}),
        ("label=env=prod&label=instance=db-1", {"disk"}),
        ("label=env=", set()),
        ("search=latency", {"latency"}),
        ("search=db-1", {"disk"}),
        ("suppressed=false", {"latency", "disk", "canary"}),
        ("suppressed=true", set()),
        ("flapping=false", {"latency", "disk", "canary"}),
        ("team=payments", {"latency", "disk", "canary"}),
    ],
)
def test_filters(crew, api, alerts, query, expected):
    got = ids(api(crew.viewer).get(f"/api/v1/alerts/?{query}"))
    assert got == {alerts[name].pk for name in expected}


def test_service_filter(crew, api, alerts, service):
    got = ids(api(crew.admin).get(f"/api/v1/alerts/?service={service.pk}"))
    assert got == {alerts[n].pk for n in ("latency", "disk", "canary")}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=burning", "status"),
        ("severity=apocalyptic", "severity"),
        ("label=noequals", "label"),
        ("label=bad name=x", "label"),
        ("suppressed=maybe", "suppressed"),
        ("team=search", "team"),
        ("servce=1", "servce"),
        ("page_size=0", "page_size"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(crew, api, alerts, query, field):
    assert_error(api(crew.viewer).get(f"/api/v1/alerts/?{query}"), 400, None, {field})


def test_detail_is_404_outside_the_team(crew, api, alerts):
    other = alerts["other"]
    assert_error(api(crew.viewer).get(f"/api/v1/alerts/{other.pk}/"), 404, "not_found")
    assert api(crew.outsider).get(f"/api/v1/alerts/{other.pk}/").status_code == 200


def test_alerts_are_read_only(crew, api, alerts):
    client = api(crew.admin)
    pk = alerts["latency"].pk
    assert client.post("/api/v1/alerts/", {}, format="json").status_code == 405
    assert client.patch(f"/api/v1/alerts/{pk}/", {}, format="json").status_code == 405
    assert client.delete(f"/api/v1/alerts/{pk}/").status_code == 405


def test_list_is_paginated_with_a_flat_query_count(
    crew, api, service, django_assert_max_num_queries
):
    process(
        service,
        [AlertInput(labels={"alertname": f"A{i}"}, severity=Severity.WARNING) for i in range(120)],
        source="alertmanager",
    )
    client = api(crew.viewer)
    # session, user, roles, count, page: nothing per alert.
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/alerts/?page_size=100&label=alertname=A7")
    assert response.json()["count"] == 1
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/alerts/?page_size=100")
    body = response.json()
    assert body["count"] == 120 and len(body["results"]) == 100 and body["next"]
