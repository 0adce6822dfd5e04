"""Review fixes of the status pages: ids of thousands of digits are a 400/404 (not an
unauthenticated 500), a manual status cannot be set to end in year 9999 west of UTC (an
OverflowError, or a row PostgreSQL stores and psycopg cannot read back), and following a
confirmation link confirms nothing (mail scanners follow links): its page's button does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.statuspages import services, subscribers
from incidents.statuspages.forms import ManualStatusForm
from incidents.statuspages.models import Component, StatusSubscriber
from monitoring.models import Service
from tests.incidents.status_support import make_component, make_page
from tocsin.services import ServiceError

HUGE = "9" * 5000  # passes isdecimal(); int() refuses more than 4,300 digits
BIG = "9" * 19  # past a bigint


@pytest.fixture
def service(crew):
    return Service.objects.create(team=crew.team, name="Checkout API")


@pytest.fixture
def page(crew, service):
    page = make_page(crew.team)
    page.services.add(service)
    return page


# --- 4. very long numeric ids ------------------------------------------------------------------


@pytest.mark.parametrize("raw", [HUGE, BIG])
def test_a_subscription_to_a_huge_component_id_is_a_400(client, page, raw):
    response = client.post("/status/payments/subscribe/", {"email": "a@b.org", "component": [raw]})
    assert response.status_code == 400
    assert not StatusSubscriber.objects.exists()


@pytest.mark.parametrize("raw", [HUGE, BIG])
def test_an_uptime_badge_of_a_huge_component_id_is_a_404(client, page, raw):
    make_component(page, "Checkout")
    assert client.get("/status/payments/badge/uptime.svg", {"component": raw}).status_code == 404
    assert client.get("/status/payments/badge/uptime.svg").status_code == 200


@pytest.mark.parametrize("raw", [HUGE, BIG])
def test_the_editor_refuses_a_huge_row_id(crew, api, page, raw):
    component = make_component(page, "Checkout")
    base = f"/status-pages/{page.pk}/"
    manager = api(crew.manager)
    for action in ("component-save", "component-delete", "component-status", "group-delete"):
        response = manager.post(base + f"{action}/", {"id": raw, "name": "X", "status": "x"})
        assert response.status_code == 302, (action, response.status_code)
    response = manager.get(base)
    assert b"No such" in response.content
    assert Component.objects.get() == component


# --- 5. a manual status until year 9999 west of UTC -------------------------------------------

FAR = "9999-12-31T23:00:00-05:00"  # year 10000 in UTC


def test_the_editor_refuses_a_manual_status_until_year_9999_west_of_utc(crew, api, page):
    component = make_component(page, "Checkout")
    base = f"/status-pages/{page.pk}/"
    manager = api(crew.manager)
    response = manager.post(
        base + "component-status/", {"id": component.pk, "status": "major_outage", "until": FAR}
    )
    assert response.status_code == 302
    assert b"10 years ahead" in manager.get(base).content
    component.refresh_from_db()
    assert component.manual_status == "" and component.manual_until is None
    assert Client().get("/status/payments/").status_code == 200


def test_the_form_and_the_service_refuse_more_than_ten_years_ahead(crew, page):
    form = ManualStatusForm({"status": "major_outage", "until": FAR})
    assert not form.is_valid() and "until" in form.errors
    later = timezone.now() + timedelta(days=366 * 11)
    form = ManualStatusForm({"status": "major_outage", "until": later.isoformat()})
    assert not form.is_valid() and "until" in form.errors
    soon = timezone.now() + timedelta(days=30)
    form = ManualStatusForm({"status": "major_outage", "until": soon.isoformat()})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["until"].utcoffset() == timedelta(0)

    component = make_component(page, "Checkout")
    bomb = datetime(9999, 12, 31, 23, tzinfo=timezone.get_fixed_timezone(-300))
    for until in (bomb, later, datetime(9999, 12, 31, tzinfo=UTC)):
        with pytest.raises(ServiceError) as caught:
            services.set_manual_status(component, "major_outage", until=until, actor=None)
        assert caught.value.field == "until"
    component.refresh_from_db()
    assert component.manual_status == "" and component.manual_until is None
    services.set_manual_status(component, "major_outage", until=soon, actor=None)
    component.refresh_from_db()
    assert component.manual_until == soon


def test_the_admin_refuses_a_manual_status_ten_years_ahead(crew, page, settings):
    component = make_component(page, "Checkout")
    client = Client()
    client.force_login(crew.admin)
    url = reverse("admin:incidents_component_change", args=[component.pk])
    data = {
        "page": page.pk,
        "name": "Checkout",
        "description": "",
        "position": 0,
        "source_kind": "",
        "target_id": "",
        "show_uptime": "on",
        "manual_status": "major_outage",
        "manual_until_0": "9999-12-31",
        "manual_until_1": "23:00:00",
    }
    settings.TIME_ZONE = "America/New_York"  # the admin reads times in the current zone
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "10 years ahead" in response.content.decode()
    component.refresh_from_db()
    assert component.manual_status == "" and component.manual_until is None


# --- 6. confirmation on POST only, of this page's subscribers ----------------------------------


def test_following_the_confirmation_link_confirms_nothing_the_button_does(client, page):
    response = client.post("/status/payments/subscribe/", {"email": "a@b.org"})
    assert response.status_code == 200
    subscriber = StatusSubscriber.objects.get()
    url = f"/status/payments/confirm/{subscribers.token_for(subscriber, 'confirm')}/"
    for _ in range(2):  # a scanner, then its retry
        response = client.get(url)
        assert response.status_code == 200
        assert b'method="post"' in response.content and url.encode() in response.content
    assert client.head(url).status_code == 200
    subscriber.refresh_from_db()
    assert not subscriber.is_confirmed
    assert "Content-Encoding" not in client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    response = client.post(url)  # no CSRF token: the signed token authorises it
    assert response.status_code == 200 and b"Subscribed" in response.content
    subscriber.refresh_from_db()
    assert subscriber.is_confirmed


def test_a_token_of_another_page_confirms_nothing_there(crew, client, page):
    other = make_page(crew.team, title="Search status", slug="search")
    client.post("/status/search/subscribe/", {"email": "a@b.org"})
    subscriber = StatusSubscriber.objects.get(page=other)
    token = subscribers.token_for(subscriber, "confirm")
    assert client.post(f"/status/payments/confirm/{token}/").status_code == 404
    assert client.get(f"/status/payments/confirm/{token}/").status_code == 404
    subscriber.refresh_from_db()
    assert not subscriber.is_confirmed
