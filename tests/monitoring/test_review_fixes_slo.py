"""Review fixes of the OpenSLO import: objectives that would be stored as 100 % (no error
budget), annotations of the wrong type, YAML alias bombs and huge documents are field errors
(400 / form errors), not 500s; a zero error budget left by an older row is guarded."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from monitoring.models import ServiceLevelObjective
from monitoring.slos import budget, openslo
from monitoring.slos.registry import Tally
from tests.monitoring.test_slo_support import T0, make_slo

URL = "/api/v1/slos/import/"


def document(service, *, target=0.99, annotations=None, **meta):
    return {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {
            "name": "quiet",
            "annotations": {"tocsin.io/indicator": "incidents", **(annotations or {})},
            **meta,
        },
        "spec": {
            "service": service.slug,
            "timeWindow": [{"duration": "7d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": target}],
        },
    }


def post(crew, api, text):
    return api(crew.manager).post(URL, {"team": crew.team.slug, "yaml": text}, format="json")


def errors_of(response):
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


# --- 1. objectives stored as 100 % ----------------------------------------------------------


@pytest.mark.parametrize("target", ["0.99999999", "0.999999999999", "0.9999999"])
def test_an_objective_with_more_than_four_decimals_in_percent_is_refused(
    crew, api, service, target
):
    text = yaml.safe_dump(document(service)).replace("0.99", target)
    fields = errors_of(post(crew, api, text))
    assert "decimal places" in fields["documents.0.spec.objectives.0.target"][0]
    assert not ServiceLevelObjective.objects.exists()


def test_an_objective_of_one_is_refused_and_four_decimals_are_kept(crew, api, service):
    fields = errors_of(post(crew, api, yaml.safe_dump(document(service, target=1))))
    assert "documents.0.spec.objectives.0.target" in fields
    response = post(crew, api, yaml.safe_dump(document(service, target=0.999999)))
    assert response.status_code == 200, response.content
    slo = ServiceLevelObjective.objects.get()
    assert str(slo.objective) == "99.9999"
    assert slo.error_budget > 0


def test_a_time_slice_target_with_too_many_decimals_is_refused(crew, api, service):
    doc = document(service)
    doc["spec"]["budgetingMethod"] = "Timeslices"
    doc["spec"]["objectives"] = [{"target": 0.99, "timeSliceTarget": 0.000000001}]
    fields = errors_of(post(crew, api, yaml.safe_dump(doc)))
    assert "documents.0.spec.objectives.0.timeSliceTarget" in fields


def test_a_zero_error_budget_from_an_older_row_is_guarded(crew, api, service):
    slo = make_slo(service, sli_kind="incidents", sli_config={})
    ServiceLevelObjective.objects.filter(pk=slo.pk).update(objective=100)
    slo.refresh_from_db()
    assert slo.error_budget == 0
    start, end = T0 - timedelta(days=7), T0
    assert budget.remaining(slo, Tally(good=9, total=10), start, end) == 0.0
    assert budget.remaining(slo, Tally(good=10, total=10), start, end) == 1.0
    ServiceLevelObjective.objects.filter(pk=slo.pk).update(budgeting="timeslices")
    slo.refresh_from_db()
    assert budget.remaining(slo, Tally(good=9, total=10), start, end) == 0.0
    assert api(crew.viewer).get(f"/api/v1/slos/{slo.pk}/budget/").status_code == 200


# --- 2. annotations and names of the wrong type ------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "meta", "field"),
    [
        ({"tocsin.io/config": {"priorities": ["P1"]}}, {}, "metadata.annotations.tocsin.io/config"),
        ({"tocsin.io/indicator": ["incidents"]}, {}, "metadata.annotations.tocsin.io/indicator"),
        ({"tocsin.io/indicator": {"a": 1}}, {}, "metadata.annotations.tocsin.io/indicator"),
        ({}, {"name": ["quiet"]}, "metadata.name"),
        ({}, {"displayName": {"a": 1}}, "metadata.displayName"),
        ({"tocsin.io/config": "[1, 2]"}, {}, "metadata.annotations.tocsin.io/config"),
    ],
)
def test_annotations_and_names_of_the_wrong_type_are_a_400(
    crew, api, service, annotations, meta, field
):
    doc = document(service, annotations=annotations, **meta)
    fields = errors_of(post(crew, api, yaml.safe_dump(doc)))
    assert f"documents.0.{field}" in fields
    assert not ServiceLevelObjective.objects.exists()


def test_a_description_of_the_wrong_type_is_a_400(crew, api, service):
    doc = document(service)
    doc["spec"]["description"] = ["a", "list"]
    assert "documents.0.spec.description" in errors_of(post(crew, api, yaml.safe_dump(doc)))


def test_an_indicator_of_the_wrong_type_in_the_spec_is_a_400(crew, api, service):
    doc = document(service, annotations={})
    del doc["metadata"]["annotations"]
    doc["spec"]["indicator"] = {
        "spec": {"thresholdMetric": {"metricSource": {"spec": {"indicator": ["incidents"]}}}}
    }
    assert "documents.0.spec.indicator" in errors_of(post(crew, api, yaml.safe_dump(doc)))


def test_the_admin_import_reports_a_mapping_config_as_a_form_error(crew, service):
    client = Client()
    client.force_login(crew.manager)
    url = reverse("admin:monitoring_servicelevelobjective_import")
    doc = document(service, annotations={"tocsin.io/config": {"priorities": ["P1"]}})
    response = client.post(url, {"team": crew.team.pk, "yaml_text": yaml.safe_dump(doc)})
    assert response.status_code == 200
    assert "metadata.annotations.tocsin.io/config" in response.content.decode()
    assert not ServiceLevelObjective.objects.exists()


# --- 3. alias bombs and huge documents -----------------------------------------------------------

BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "apiVersion: openslo/v1\nkind: SLO\n"
    "metadata: {name: bomb, displayName: *g}\n"
)


def test_anchors_and_aliases_are_refused(crew, api, service):
    fields = errors_of(post(crew, api, BOMB))
    assert "aliases" in fields["yaml"][0]
    # A lone anchor is refused too (nothing to expand, but no reason to accept it).
    text = yaml.safe_dump(document(service)).replace("kind: SLO", "kind: &k SLO")
    assert "yaml" in errors_of(post(crew, api, text))
    assert not ServiceLevelObjective.objects.exists()


def test_a_document_over_256_kb_is_refused(crew, api, service):
    text = yaml.safe_dump(document(service)) + "#" + "x" * openslo.MAX_BYTES + "\n"
    assert "KB" in errors_of(post(crew, api, text))["yaml"][0]
    with pytest.raises(openslo.ImportFailed):
        openslo.import_documents(text, crew.team)
    client = Client()
    client.force_login(crew.manager)
    url = reverse("admin:monitoring_servicelevelobjective_import")
    upload = SimpleUploadedFile("big.yaml", text.encode(), content_type="application/yaml")
    response = client.post(url, {"team": crew.team.pk, "yaml_file": upload})
    assert response.status_code == 200
    assert "at most 256 KB" in response.content.decode()
    response = client.post(url, {"team": crew.team.pk, "yaml_text": text})
    assert "at most 256 KB" in response.content.decode()
    response = client.post(url, {"team": crew.team.pk, "yaml_text": BOMB})
    assert "aliases" in response.content.decode()
    assert not ServiceLevelObjective.objects.exists()
