"""Nothing internal reaches the public: every free-text field of the service, its alert and its
incident (and the maintenance window) carries a marker of its own, and no public response of
the page (HTML, history, incident page, feeds, badges, every JSON endpoint) contains any."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import models, transaction
from django.utils import timezone

from incidents.models import Incident, IncidentAlert
from incidents.statuspages import publishing
from monitoring.models import Alert, MaintenanceWindow, Service
from monitoring.pipeline import AlertInput, process
from tests.incidents.status_support import (
    day_rows,
    make_check,
    make_component,
    make_group,
    make_page,
    today,
)

pytestmark = pytest.mark.usefixtures("fresh_throttles")  # the subscribe form counts per address


def fill_every_text_field(obj: models.Model, markers: list[str], skip: tuple = ()) -> None:
    """Write a unique marker into each free-text field of ``obj`` (choices are not free text:
    their values are our own words, like "P1")."""
    model = type(obj)
    changes = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.is_relation or field.choices or field.name in skip:
            continue
        marker = f"zqleak{model.__name__.lower()}{field.name.replace('_', '')}"
        if isinstance(field, models.URLField):
            value = f"https://{marker}.example.org/{marker}"
        elif isinstance(field, models.JSONField):
            value = [marker] if isinstance(field.default(), list) else {marker: marker}
        elif isinstance(field, models.CharField | models.TextField):
            value = marker[: field.max_length] if field.max_length else marker
            marker = value
        else:
            continue
        changes[field.name] = value
        markers.append(marker)
    model.objects.filter(pk=obj.pk).update(**changes)


@pytest.fixture
def markers(crew):
    """A published page whose component follows a service with an open P1 incident, an
    alert, a probe check and a maintenance window, all full of markers."""
    found: list[str] = []
    service = Service.objects.create(team=crew.team, name="Internal name")
    [outcome] = process(
        service,
        [AlertInput(labels={"alertname": "DiskFull", "host": "db-7"}, severity="critical")],
        source="test",
        now=timezone.now(),
    )
    alert = outcome.alert
    incident = IncidentAlert.objects.get(alert=alert).incident
    Incident.objects.filter(pk=incident.pk).update(priority="P1")
    check = make_check(service, "Internal check name")
    day_rows(check, {today(): (90, 5, 5)})
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        service=service,
        title="internal window",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
    )
    page = make_page(crew.team)
    with transaction.atomic():
        from incidents.statuspages import services as page_services

        page_services.save_page(page, actor=None, services=[service])
    group = make_group(page, "Core")
    component = make_component(
        page, "Checkout", group=group, service=service, source_kind="probe", target_id=check.pk
    )
    publishing.post_update(
        page,
        actor=crew.responder,
        incident=incident,
        status="identified",
        body="Payments are slow; a fix is on its way.",
        title="Slow payments",
        impact="major",
    )
    publishing.save_maintenance_notice(
        page, window, actor=crew.manager, title="Database upgrade", note="Expect brief errors."
    )
    for obj in (service, alert, incident):
        fill_every_text_field(obj, found)
    # A window's schedule fields (weekdays, time zone) are structure, not text.
    fill_every_text_field(window, found, skip=("weekdays", "time_zone"))
    return {"markers": found, "page": page, "incident": incident, "component": component}


def public_urls(page, public_incident_id: int, component_id: int) -> list[str]:
    base = f"/status/{page.slug}/"
    return [
        base,
        base + "history/",
        base + f"incidents/{public_incident_id}/",
        base + "feed.rss",
        base + "feed.atom",
        base + "badge/status.svg",
        base + "badge/uptime.svg",
        base + f"badge/uptime.svg?component={component_id}",
        base + "api/v2/summary.json",
        base + "api/v2/status.json",
        base + "api/v2/components.json",
        base + "api/v2/incidents.json",
        base + "api/v2/incidents/unresolved.json",
        base + "api/v2/scheduled-maintenances.json",
        base + "api/v2/scheduled-maintenances/upcoming.json",
        base + "api/v2/scheduled-maintenances/active.json",
    ]


def test_no_public_response_contains_anything_not_written_for_the_public(client, markers):
    page = markers["page"]
    public_incident = page.incidents.get()
    assert len(markers["markers"]) >= 20  # every text field of four models
    bodies = {}
    for url in public_urls(page, public_incident.pk, markers["component"].pk):
        response = client.get(url)
        assert response.status_code == 200, url
        bodies[url] = response.content.decode()
    # What was written for the public is there, with the derived status.
    assert "Slow payments" in bodies[f"/status/{page.slug}/"]
    assert "Database upgrade" in bodies[f"/status/{page.slug}/"]
    assert "Major outage" in bodies[f"/status/{page.slug}/"]
    for url, body in bodies.items():
        leaked = [m for m in markers["markers"] if m.lower() in body.lower()]
        assert not leaked, f"{url} leaks {leaked}"
        for internal in ("Internal name", "Internal check name", "internal window", "DiskFull"):
            assert internal not in body, f"{url} leaks {internal!r}"


def test_subscribe_and_message_pages_leak_nothing_either(client, markers):
    page = markers["page"]
    responses = [
        client.post(f"/status/{page.slug}/subscribe/", {"email": "not-an-address"}),
        client.post(f"/status/{page.slug}/subscribe/", {"email": "reader@example.org"}),
        client.get(f"/status/{page.slug}/confirm/forged-token/"),
        client.get(f"/status/{page.slug}/unsubscribe/forged-token/"),
    ]
    assert [r.status_code for r in responses] == [400, 200, 400, 200]
    for response in responses:
        body = response.content.decode().lower()
        assert not [m for m in markers["markers"] if m.lower() in body]


def test_the_alert_and_incident_really_carry_the_markers(markers):
    """The fixture is what the test above relies on: markers in the rows, the status derived."""
    incident = Incident.objects.get(pk=markers["incident"].pk)
    assert incident.title.startswith("zqleakincident")
    assert Alert.objects.get().summary.startswith("zqleakalert")
    assert Service.objects.get(pk=incident.service_id).description.startswith("zqleakservice")
