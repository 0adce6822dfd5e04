"""The SLO API: team-scoped reads, manager-only writes, errors per field, events recorded,
live figures, OpenSLO export and import (all documents or none)."""

from __future__ import annotations

import pytest
import yaml

from monitoring.models import Service, ServiceLevelObjective
from tests.monitoring.test_slo_support import check, make_slo, service, target
from tocsin.models import Event

__all__ = ["check", "service", "target"]  # fixtures

URL = "/api/v1/slos/"


@pytest.fixture
def slo(service):
    return make_slo(service, name="No big incidents", sli_kind="incidents", objective="99.5")


@pytest.fixture
def foreign(crew):
    other = Service.objects.create(team=crew.other_team, name="Search API")
    return make_slo(other, name="Search uptime", sli_kind="incidents")


def body(service, **extra):
    data = {
        "service": service.pk,
        "name": "Checkout success",
        "sli_kind": "metric_ratio",
        "sli_config": {"good": 'http_requests_total{code!~"5.."}', "total": "http_requests_total"},
        "objective": "99.9",
        "window": "calendar_month",
        "time_zone": "Europe/Berlin",
    }
    data.update(extra)
    return data


def test_members_list_their_teams_slos_only(crew, api, slo, foreign):
    response = api(crew.viewer).get(URL)
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["id"], row["team"], row["service"]["id"]) == (slo.pk, crew.team.pk, slo.service_id)
    assert row["objective"] == "99.5000" and row["status"] == "no_data"
    assert api(crew.viewer).get(f"{URL}{foreign.pk}/").status_code == 404
    assert api(crew.outsider).get(f"{URL}{slo.pk}/").status_code == 404
    assert api().get(URL).status_code in (401, 403)


def test_the_list_costs_the_same_queries_for_more_slos(
    crew, api, service, django_assert_max_num_queries
):
    for n in range(3):
        make_slo(service, name=f"SLO {n}", sli_kind="incidents")
    client = api(crew.viewer)
    with django_assert_max_num_queries(8) as few:
        client.get(URL)
    for n in range(3, 12):
        make_slo(service, name=f"SLO {n}", sli_kind="incidents")
    with django_assert_max_num_queries(len(few)):
        assert len(client.get(URL).json()["results"]) == 12


def test_a_manager_creates_and_the_event_log_says_so(crew, api, service):
    response = api(crew.manager).post(URL, body(service), format="json")
    assert response.status_code == 201, response.json()
    created = ServiceLevelObjective.objects.get(pk=response.json()["id"])
    assert (created.slug, created.window, created.time_zone) == (
        "checkout-success",
        "calendar_month",
        "Europe/Berlin",
    )
    event = Event.objects.get(kind="slo.created")
    assert event.payload["objective"] == "99.9" and event.actor_id == crew.manager.pk


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_managers_write(crew, api, service, slo, role):
    client = api(crew.by_role(role))
    assert client.post(URL, body(service), format="json").status_code == 403
    assert client.patch(f"{URL}{slo.pk}/", {"objective": "99"}, format="json").status_code == 403
    assert client.delete(f"{URL}{slo.pk}/").status_code == 403
    assert api(crew.outsider).post(URL, body(service), format="json").status_code == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sli_config": {"good": "ok{", "total": "all"}}, "sli_config.good"),
        ({"sli_kind": "probe_latency", "sli_config": {"threshold_ms": 333}}, "sli_config"),
        ({"objective": "100"}, "objective"),
        ({"window": "rolling_1y"}, "window"),
        ({"time_zone": "Moon/Tranquility"}, "time_zone"),
        ({"timeslice_minutes": 7}, "timeslice_minutes"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_400_naming_the_field(crew, api, service, change, field):
    response = api(crew.manager).post(URL, body(service, **change), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert any(name.startswith(field) for name in error["fields"]), error
    assert not ServiceLevelObjective.objects.exists()


def test_a_change_is_recorded_with_what_changed_and_deletes_too(crew, api, slo):
    client = api(crew.manager)
    response = client.patch(
        f"{URL}{slo.pk}/", {"objective": "99.95", "alerting": False}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["objective"] == "99.9500"
    changes = Event.objects.get(kind="slo.updated").payload["changes"]
    assert changes == {"objective": ["99.5", "99.95"], "alerting": [True, False]}
    assert client.delete(f"{URL}{slo.pk}/").status_code == 204
    assert Event.objects.filter(kind="slo.deleted").count() == 1
    assert not ServiceLevelObjective.objects.exists()


def test_budget_shows_the_figures_and_every_alert_window(crew, api, slo):
    response = api(crew.viewer).get(f"{URL}{slo.pk}/budget/")
    assert response.status_code == 200
    data = response.json()
    assert data["budget_remaining"] == 1.0 and data["attainment"] == 1.0
    assert [w["pair"] for w in data["windows"]] == ["1h/5m", "6h/30m", "1d/2h", "3d/6h"]
    assert data["burn_down"] and data["burn_down"][-1]["budget_remaining"] == 1.0


def test_openslo_export_imports_back_unchanged(crew, api, service):
    client = api(crew.manager)
    created = client.post(
        URL, body(service, budgeting="timeslices", timeslice_target="95"), format="json"
    ).json()
    exported = client.get(f"{URL}{created['id']}/openslo/")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/yaml")
    [doc] = list(yaml.safe_load_all(exported.content))
    assert doc["apiVersion"] == "openslo/v1" and doc["kind"] == "SLO"
    assert doc["spec"]["budgetingMethod"] == "Timeslices"
    assert doc["spec"]["timeWindow"][0]["duration"] == "1M"
    assert doc["spec"]["objectives"][0]["target"] == 0.999
    ratio = doc["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["good"]["metricSource"]["spec"]["query"] == 'http_requests_total{code!~"5.."}'

    # Imported elsewhere (a new name): the same SLO.
    doc["metadata"]["name"] = "checkout-success-copy"
    response = client.post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": yaml.safe_dump(doc)}, format="json"
    )
    assert response.status_code == 200, response.json()
    copy = ServiceLevelObjective.objects.get(slug="checkout-success-copy")
    original = ServiceLevelObjective.objects.get(pk=created["id"])
    for name in (
        "sli_kind",
        "sli_config",
        "objective",
        "window",
        "time_zone",
        "budgeting",
        "timeslice_target",
        "timeslice_minutes",
        "alerting",
        "service_id",
    ):
        assert getattr(copy, name) == getattr(original, name), name


def test_a_document_written_elsewhere_imports_and_updates_by_name(crew, api, service):
    text = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-success
  displayName: API success
spec:
  service: checkout-api
  indicator:
    metadata: {name: api-success-ratio}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: prometheus, spec: {query: 'requests_total{code="200"}'}}}
        total: {metricSource: {type: prometheus, spec: {query: requests_total}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.995}]
"""
    client = api(crew.manager)
    assert (
        client.post(
            f"{URL}import/", {"team": crew.team.pk, "yaml": text}, format="json"
        ).status_code
        == 200
    )
    slo = ServiceLevelObjective.objects.get(slug="api-success")
    assert (slo.sli_kind, str(slo.objective), slo.window) == (
        "metric_ratio",
        "99.5000",
        "rolling_28d",
    )
    again = text.replace("0.995", "0.99")
    assert (
        client.post(
            f"{URL}import/", {"team": crew.team.pk, "yaml": again}, format="json"
        ).status_code
        == 200
    )
    slo.refresh_from_db()
    assert str(slo.objective) == "99.0000"
    assert ServiceLevelObjective.objects.count() == 1


def test_import_reports_every_error_per_document_and_field_and_saves_nothing(crew, api, service):
    good = {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": "fine", "annotations": {"tocsin.io/indicator": "incidents"}},
        "spec": {
            "service": service.slug,
            "timeWindow": [{"duration": "30d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": 0.99}],
        },
    }
    bad = {
        "apiVersion": "openslo/v2",
        "kind": "SLO",
        "metadata": {"name": "broken"},
        "spec": {
            "service": "nope",
            "timeWindow": [{"duration": "5d", "isRolling": True}],
            "budgetingMethod": "Sometimes",
            "objectives": [{"target": 1.5}],
        },
    }
    text = yaml.safe_dump_all([good, bad])
    response = api(crew.manager).post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": text}, format="json"
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {
        "documents.1.apiVersion",
        "documents.1.spec.service",
        "documents.1.spec.indicator",
        "documents.1.spec.timeWindow",
        "documents.1.spec.budgetingMethod",
    }
    assert not ServiceLevelObjective.objects.exists()
    out_of_range = yaml.safe_dump(
        {**good, "spec": {**good["spec"], "objectives": [{"target": 1.5}]}}
    )
    response = api(crew.manager).post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": out_of_range}, format="json"
    )
    assert list(response.json()["error"]["fields"]) == ["documents.0.spec.objectives.0.target"]
    response = api(crew.manager).post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": "a: [b"}, format="json"
    )
    assert response.status_code == 400 and "yaml" in response.json()["error"]["fields"]


def test_only_managers_import(crew, api, service):
    response = api(crew.responder).post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": "kind: SLO"}, format="json"
    )
    assert response.status_code == 403
    response = api(crew.outsider).post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": "kind: SLO"}, format="json"
    )
    # A team they cannot see: as if it did not exist.
    assert response.status_code == 400 and "team" in response.json()["error"]["fields"]


def test_a_latency_slo_exports_as_a_threshold_metric_and_back(crew, api, check):
    slo = make_slo(
        check.service,
        name="Fast checkout",
        sli_kind="probe_latency",
        sli_config={"threshold_ms": 500, "checks": [check.pk]},
    )
    client = api(crew.manager)
    [doc] = list(yaml.safe_load_all(client.get(f"{URL}{slo.pk}/openslo/").content))
    source = doc["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"]
    assert source["spec"] == {
        "indicator": "probe_latency",
        "threshold_ms": 500,
        "checks": [check.pk],
    }
    doc["metadata"]["name"] = "fast-checkout-2"
    del doc["metadata"]["annotations"]  # read from the spec alone
    response = client.post(
        f"{URL}import/", {"team": crew.team.slug, "yaml": yaml.safe_dump(doc)}, format="json"
    )
    assert response.status_code == 200, response.json()
    copy = ServiceLevelObjective.objects.get(slug="fast-checkout-2")
    assert (copy.sli_kind, copy.sli_config) == ("probe_latency", slo.sli_config)
