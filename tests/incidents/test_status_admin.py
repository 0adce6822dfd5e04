"""Status pages in the admin: team-scoped, saved through the services (events), read-only where
the rows are history or the system's own."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from incidents.statuspages import publishing
from incidents.statuspages.models import (
    Component,
    StatusDelivery,
    StatusPage,
    StatusSubscriber,
)
from monitoring.models import Service
from tests.incidents.status_support import make_component, make_page
from tocsin.models import Event


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_form(team, **extra) -> dict:
    return {
        "team": team.pk,
        "title": "Shop",
        "slug": "shop",
        "description": "",
        "logo_url": "",
        "brand_colour": "#1f6feb",
        "header_colour": "#24292f",
        "custom_domain": "",
        "time_zone": "UTC",
        "support_url": "",
        **extra,
    }


def test_a_manager_creates_a_page_through_the_service(crew):
    service = Service.objects.create(team=crew.team, name="API")
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_statuspage_add"), page_form(crew.team, services=[service.pk])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    page = StatusPage.objects.get()
    assert list(page.services.all()) == [service]
    event = Event.objects.get(kind="status_page.created")
    assert event.actor == crew.manager and event.payload["service_ids"] == [service.pk]


def test_a_manager_cannot_create_for_another_team_or_pick_its_services(crew):
    stranger = Service.objects.create(team=crew.other_team, name="Theirs")
    client = logged_in(crew.manager)
    response = client.post(reverse("admin:incidents_statuspage_add"), page_form(crew.other_team))
    assert response.status_code == 200  # the form again, with the error
    response = client.post(
        reverse("admin:incidents_statuspage_add"), page_form(crew.team, services=[stranger.pk])
    )
    assert response.status_code == 200
    assert not StatusPage.objects.exists()


def test_pages_and_components_are_scoped_to_managed_teams(crew):
    mine = make_page(crew.team)
    theirs = make_page(crew.other_team, slug="theirs", title="Theirs")
    make_component(theirs, "Hidden")
    listing = logged_in(crew.manager).get(reverse("admin:incidents_statuspage_changelist"))
    assert b"Payments status" in listing.content and b"Theirs" not in listing.content
    url = reverse("admin:incidents_statuspage_change", args=[theirs.pk])
    assert logged_in(crew.manager).get(url).status_code == 302  # "doesn't exist" redirect
    components = logged_in(crew.manager).get(reverse("admin:incidents_component_changelist"))
    assert b"Hidden" not in components.content
    assert logged_in(crew.viewer).get(reverse("admin:index")).status_code == 302
    assert mine.pk


def test_a_component_of_another_teams_service_is_refused(crew):
    page = make_page(crew.team)
    stranger = Service.objects.create(team=crew.other_team, name="Theirs")
    response = logged_in(crew.admin).post(
        reverse("admin:incidents_component_add"),
        {"page": page.pk, "name": "X", "position": 0, "service": stranger.pk, "show_uptime": "on"},
    )
    assert response.status_code == 200
    assert b"another team" in response.content
    assert not Component.objects.exists()


def test_a_manual_status_set_in_the_admin_is_an_event(crew):
    page = make_page(crew.team)
    component = make_component(page, "API")
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_component_change", args=[component.pk]),
        {
            "page": page.pk,
            "name": "API",
            "position": 0,
            "show_uptime": "on",
            "manual_status": "major_outage",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    component.refresh_from_db()
    assert component.manual_status == "major_outage"
    assert Event.objects.filter(kind="status_component.status_set").exists()


@pytest.mark.parametrize(
    "name",
    [
        "incidents_publicincident",
        "incidents_publicupdate",
        "incidents_statusdelivery",
        "incidents_maintenancenotice",
    ],
)
def test_history_and_outbox_rows_are_read_only(crew, name):
    page = make_page(crew.team)
    publishing.post_update(page, actor=None, status="investigating", body="b", title="t")
    client = logged_in(crew.manager)
    assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:{name}_add")).status_code == 403


def test_a_manager_removes_a_subscriber_and_its_pending_mail(crew):
    page = make_page(crew.team)
    make_component(page, "API")
    subscriber = StatusSubscriber.objects.create(
        page=page, kind="email", email="r@example.org", confirmed_at="2026-01-01T00:00Z"
    )
    publishing.post_update(page, actor=None, status="investigating", body="b", title="t")
    assert StatusDelivery.objects.count() == 1
    url = reverse("admin:incidents_statussubscriber_delete", args=[subscriber.pk])
    response = logged_in(crew.manager).post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not StatusSubscriber.objects.exists() and not StatusDelivery.objects.exists()
    assert Event.objects.filter(kind="status_subscriber.deleted").exists()
