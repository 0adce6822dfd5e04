"""Review fixes on the service page: a double-clicked "Add integration" adds one integration and
every new key is shown once, none lost; "Send test alert" pages at most once a minute."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from monitoring.alert_tests import send_test_alert
from monitoring.models import Alert, Integration, Service
from tests.concurrency import at_once
from tests.monitoring.conftest import make_integration
from tests.monitoring.page_support import logged_in
from tocsin.models import Event
from tocsin.services import ServiceError

KEY = re.compile(r'id="new-key-value(?:-\d+)?" value="([0-9a-f]{32})"')


def add_url(service: Service) -> str:
    return reverse("integration_create", args=[service.team.slug, service.slug])


def page_url(service: Service) -> str:
    return reverse("service", args=[service.team.slug, service.slug])


def keys_shown(client: Client, service: Service) -> dict[int, str]:
    html = client.get(page_url(service)).content.decode()
    return {Integration.by_key(key).pk: key for key in KEY.findall(html)}


# --- D: adding integrations -----------------------------------------------------------------------


def test_a_double_click_adds_one_integration_and_shows_its_key(crew, service):
    client = logged_in(crew.manager)
    first = client.post(add_url(service), {"kind": "alertmanager", "name": "prod"})
    second = client.post(add_url(service), {"kind": "alertmanager", "name": "prod"})
    assert first.status_code == second.status_code == 302
    assert second["Location"] == first["Location"] == page_url(service) + "#new-key-heading"
    integration = Integration.objects.get()
    assert Event.objects.filter(kind="integration.created").count() == 1
    html = client.get(second["Location"]).content.decode()
    assert "“prod” was added moments ago: not added twice." in html
    assert [Integration.by_key(key) for key in KEY.findall(html)] == [integration]
    assert keys_shown(client, service) == {}  # shown once


def test_the_same_name_again_later_is_a_second_integration(crew, service):
    client = logged_in(crew.manager)
    client.post(add_url(service), {"kind": "generic", "name": "ci"})
    Integration.objects.update(
        created_at=Integration.objects.get().created_at - timedelta(minutes=1)
    )
    client.post(add_url(service), {"kind": "generic", "name": "ci"})
    assert Integration.objects.count() == 2


def test_other_kinds_or_names_are_not_twins_and_every_key_is_shown(crew, service):
    client = logged_in(crew.manager)
    client.post(add_url(service), {"kind": "alertmanager", "name": "prod"})
    client.post(add_url(service), {"kind": "alertmanager", "name": "staging"})
    client.post(add_url(service), {"kind": "grafana", "name": "prod"})
    assert Integration.objects.count() == 3
    shown = keys_shown(client, service)  # before the fix: only the last one's key
    assert sorted(shown) == sorted(Integration.objects.values_list("pk", flat=True))
    assert keys_shown(client, service) == {}


def test_another_services_key_keeps_waiting(crew, service):
    other = Service.objects.create(team=service.team, name="Billing")
    client = logged_in(crew.manager)
    client.post(add_url(other), {"kind": "generic", "name": "billing"})
    client.post(add_url(service), {"kind": "generic", "name": "checkout"})
    checkout = Integration.objects.get(service=service)
    billing = Integration.objects.get(service=other)
    assert list(keys_shown(client, service)) == [checkout.pk]
    assert list(keys_shown(client, other)) == [billing.pk]  # before the fix: discarded


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_two_clicks_at_once_add_one_integration(crew, service):
    client = logged_in(crew.manager)
    twin = Client()
    twin.cookies = client.cookies  # the same browser: one session

    def click(browser: Client) -> object:
        return browser.post(add_url(service), {"kind": "generic", "name": "x"})

    answers = at_once(lambda: click(client), lambda: click(twin))
    assert [getattr(a, "status_code", a) for a in answers] == [302, 302]
    integration = Integration.objects.get()
    assert list(keys_shown(client, service)) == [integration.pk]


# --- E: test alerts -------------------------------------------------------------------------------


def sending_url(service: Service, integration: Integration) -> str:
    return reverse("integration_test", args=[service.team.slug, service.slug, integration.pk])


def test_a_second_test_alert_within_a_minute_is_refused_with_a_message(crew, service):
    door = make_integration(service, "alertmanager")
    client = logged_in(crew.responder)
    client.post(sending_url(service, door.integration))
    response = client.post(sending_url(service, door.integration), follow=True)
    assert response.status_code == 200
    assert "A test alert went through “alertmanager” less than a minute ago" in (
        response.content.decode()
    )
    assert Alert.objects.count() == 1
    assert Event.objects.filter(kind="integration.test_sent").count() == 1


def test_the_service_refuses_too_and_allows_again_after_a_minute(crew, service):
    door = make_integration(service, "alertmanager")
    other = make_integration(service, "generic")
    send_test_alert(door.integration, actor=crew.manager)
    with pytest.raises(ServiceError) as refused:
        send_test_alert(door.integration, actor=crew.manager)
    assert refused.value.code == "throttled"
    send_test_alert(other.integration, actor=crew.manager)  # another integration: its own minute
    Alert.objects.filter(integration=door.integration).update(
        first_seen_at=Alert.objects.get(integration=door.integration).first_seen_at
        - timedelta(seconds=61)
    )
    send_test_alert(door.integration, actor=crew.manager)
    assert Alert.objects.filter(integration=door.integration).count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_two_test_clicks_at_once_send_one_alert(crew, service):
    door = make_integration(service, "alertmanager")

    def click() -> str:
        send_test_alert(door.integration, actor=crew.manager)
        return "sent"

    outcomes = at_once(click, click)
    assert sorted(map(str, outcomes)) == ["sent", "throttled"], outcomes
    assert Alert.objects.count() == 1
