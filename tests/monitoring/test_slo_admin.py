"""SLO admin and the ``openslo`` command: roles, form errors per field, changes through the
service (events), the OpenSLO import page and actions."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from monitoring.models import Service, ServiceLevelObjective
from tests.monitoring.test_slo_support import make_slo, service
from tocsin.models import Event

__all__ = ["service"]  # fixture

ROLES = ("anonymous", "viewer", "responder", "manager", "outsider", "admin")


def client_for(crew, role):
    client = Client()
    if role != "anonymous":
        client.force_login(crew.by_role(role))
    return client


def form(service, **extra):
    data = {
        "service": service.pk,
        "name": "Checkout minutes",
        "slug": "",
        "description": "",
        "sli_kind": "incidents",
        "sli_config": "{}",
        "objective": "99.9",
        "window": "calendar_month",
        "time_zone": "Europe/Berlin",
        "budgeting": "timeslices",
        "timeslice_target": "",
        "timeslice_minutes": "1",
        "alerting": "on",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("role", ROLES)
def test_the_changelist_per_role(crew, service, role):
    make_slo(service, name="Checkout up", sli_kind="incidents")
    response = client_for(crew, role).get(
        reverse("admin:monitoring_servicelevelobjective_changelist")
    )
    if role in ("anonymous", "viewer", "responder"):
        assert response.status_code == 302 and "login" in response["Location"]
        return
    assert response.status_code == 200
    assert ("Checkout up" in response.content.decode()) == (role in ("manager", "admin"))


def test_a_manager_creates_through_the_service(crew, service):
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_servicelevelobjective_add"), form(service)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    slo = ServiceLevelObjective.objects.get()
    assert (slo.slug, slo.budgeting, slo.time_zone) == (
        "checkout-minutes",
        "timeslices",
        "Europe/Berlin",
    )
    assert Event.objects.get(kind="slo.created").actor_id == crew.manager.pk


def test_config_errors_show_next_to_their_field(crew, service):
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_servicelevelobjective_add"),
        form(service, sli_kind="metric_ratio", sli_config='{"good": "ok{"}', objective="100"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "sli_config" in errors and "objective" in errors
    assert "total:" in " ".join(errors["sli_config"])
    assert not ServiceLevelObjective.objects.exists()


def test_outsiders_cannot_pick_the_teams_services(crew, service):
    response = client_for(crew, "outsider").post(
        reverse("admin:monitoring_servicelevelobjective_add"), form(service)
    )
    assert response.status_code == 200
    assert "service" in response.context["adminform"].form.errors
    assert not ServiceLevelObjective.objects.exists()


def test_the_import_page_imports_or_lists_every_error(crew, service):
    client = client_for(crew, "manager")
    url = reverse("admin:monitoring_servicelevelobjective_import")
    doc = {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": "quiet", "annotations": {"tocsin.io/indicator": "incidents"}},
        "spec": {
            "service": service.slug,
            "timeWindow": [{"duration": "7d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": 0.99}],
        },
    }
    bad = {**doc, "spec": {**doc["spec"], "budgetingMethod": "Often"}}
    response = client.post(url, {"team": crew.team.pk, "yaml_text": yaml.safe_dump(bad)})
    assert response.status_code == 200
    assert "documents.0.spec.budgetingMethod" in response.content.decode()
    response = client.post(url, {"team": crew.team.pk, "yaml_text": yaml.safe_dump(doc)})
    assert response.status_code == 302
    assert ServiceLevelObjective.objects.get().window == "rolling_7d"
    assert client_for(crew, "viewer").get(url).status_code == 302  # not for viewers


def test_the_export_action_writes_yaml(crew, service):
    slo = make_slo(service, name="Checkout up", sli_kind="incidents")
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_servicelevelobjective_changelist"),
        {"action": "export_openslo", "_selected_action": [slo.pk]},
    )
    assert response.status_code == 200
    [doc] = list(yaml.safe_load_all(response.content))
    assert doc["metadata"]["name"] == "checkout-up"


def test_the_command_exports_and_imports(crew, service, tmp_path):
    make_slo(service, name="Checkout up", sli_kind="incidents")
    out = io.StringIO()
    call_command("openslo", "export", "--team", crew.team.slug, stdout=out)
    other = Service.objects.create(team=crew.team, name="Cart")
    exported = tmp_path / "slos.yaml"
    exported.write_text(out.getvalue().replace("name: checkout-up", "name: checkout-up-2"))
    call_command(
        "openslo",
        "import",
        str(exported),
        "--team",
        crew.team.slug,
        "--service",
        other.slug,
        stdout=io.StringIO(),
    )
    assert ServiceLevelObjective.objects.get(slug="checkout-up-2").service == other
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("apiVersion: openslo/v1\nkind: Service\n")
    with pytest.raises(CommandError, match=r"documents\.0\.kind"):
        call_command("openslo", "import", str(wrong), "--team", crew.team.slug)
