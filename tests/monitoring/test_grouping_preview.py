"""The service's grouping preview: a pasted payload, replayed without storing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from incidents.models import GroupingMode, Incident, ServiceIncidentSettings
from monitoring.models import Alert, Service
from monitoring.pipeline import AlertInput, process
from tests.monitoring.page_support import logged_in
from tocsin.models import Event

FIXTURE = Path(__file__).parents[1] / "fixtures" / "alertmanager-webhook-v4.json"


def url(service: Service) -> str:
    return reverse("grouping_preview", args=[service.team.slug, service.slug])


def counts() -> tuple[int, int, int]:
    return Alert.objects.count(), Incident.objects.count(), Event.objects.count()


@pytest.mark.django_db
def test_the_shipped_fixture_is_previewed_without_storing_anything(crew, service):
    payload = FIXTURE.read_text()
    client = logged_in(crew.viewer)
    before = counts()
    response = client.post(url(service), {"kind": "alertmanager", "payload": payload})
    assert response.status_code == 200
    html = response.content.decode()
    alerts = json.loads(payload)["alerts"]
    assert html.count("data-preview-row") == len(alerts)
    assert "A new alert (fingerprint given by the sender)" in html
    assert "Opens a new incident: no open incident has this group (fingerprint)" in html
    assert counts() == before


@pytest.mark.django_db
def test_a_changed_alertname_with_the_same_fingerprint_is_an_update(crew, service):
    data = json.loads(FIXTURE.read_text())
    first = data["alerts"][0]
    process(
        service,
        [AlertInput(labels=first["labels"], fingerprint=first["fingerprint"])],
        source="test",
    )
    stored = Alert.objects.get()
    first["labels"]["alertname"] = "SomethingElse"
    data["alerts"] = [first]
    html = (
        logged_in(crew.viewer)
        .post(url(service), {"kind": "alertmanager", "payload": json.dumps(data)})
        .content.decode()
    )
    assert f'Updates <a href="{reverse("alert", args=[stored.pk])}">alert #{stored.pk}</a>' in html
    assert "the sender's <code>fingerprint</code> is the same" in html


@pytest.mark.django_db
def test_it_says_which_open_incident_an_alert_would_join(crew, service):
    ServiceIncidentSettings.objects.create(
        service=service, grouping_mode=GroupingMode.LABELS, group_labels=["cluster"]
    )
    process(service, [AlertInput(labels={"alertname": "A", "cluster": "eu"})], source="test")
    incident = Incident.objects.get()
    payload = json.dumps({"alerts": [{"labels": {"alertname": "B", "cluster": "eu"}}]})
    html = logged_in(crew.viewer).post(url(service), {"kind": "generic", "payload": payload})
    html = html.content.decode()
    assert f"Joins open incident #{incident.pk}, which has the same group (labels: cluster)" in html
    assert Incident.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "message"),
    [("{not json", "Not a valid payload"), ('{"alerts": 3}', "Not a valid payload for this kind")],
)
def test_bad_payloads_are_form_errors(crew, service, payload, message):
    response = logged_in(crew.viewer).post(
        url(service), {"kind": "alertmanager", "payload": payload}
    )
    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.django_db
def test_outsiders_cannot_preview(crew, service):
    assert logged_in(crew.outsider).get(url(service)).status_code == 404
    assert logged_in(crew.viewer).get(url(service)).status_code == 200
