"""Admin for services, integrations and alerts: scoped by team, writes through the services."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django.urls import reverse

from monitoring.models import Integration, Service, Severity
from monitoring.pipeline import AlertInput, process
from tocsin.models import Event


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_service_list_shows_counts_for_managed_teams_only(crew, service, other_service, doors):
    process(service, [AlertInput(labels={"alertname": "A"})], source="generic")
    response = client_for(crew.manager).get(reverse("admin:monitoring_service_changelist"))
    assert response.status_code == 200
    [row] = response.context["cl"].result_list
    assert (row.name, row.firing_count, row.integration_count) == ("Checkout API", 1, 6)


def test_adding_a_service_goes_through_the_service(crew):
    response = client_for(crew.manager).post(
        reverse("admin:monitoring_service_add"),
        {"team": crew.team.pk, "name": "Cart", "slug": "", "tags": "a, b", "runbook_url": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    service = Service.objects.get()
    assert (service.slug, service.tags) == ("cart", ["a", "b"])
    assert Event.objects.filter(kind="service.created").count() == 1


def test_a_manager_cannot_add_a_service_to_another_team(crew):
    response = client_for(crew.manager).post(
        reverse("admin:monitoring_service_add"),
        {"team": crew.other_team.pk, "name": "Cart", "slug": "", "tags": ""},
    )
    assert response.status_code == 200  # the form again, with an error
    assert not Service.objects.exists()


def test_adding_an_integration_shows_the_key_once(crew, service):
    client = client_for(crew.manager)
    response = client.post(
        reverse("admin:monitoring_integration_add"),
        {"service": service.pk, "kind": "grafana", "name": "", "rate_limit_per_minute": 600},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    [key] = re.findall(r"<code>([0-9a-f]{32})</code>", html)
    integration = Integration.objects.get()
    assert Integration.by_key(key) == integration and integration.name == "Grafana webhook"
    change = client.get(reverse("admin:monitoring_integration_change", args=[integration.pk]))
    assert key not in change.content.decode()


def test_internal_kind_is_not_offered(crew, service):
    response = client_for(crew.manager).post(
        reverse("admin:monitoring_integration_add"),
        {"service": service.pk, "kind": "internal", "name": "x", "rate_limit_per_minute": 1},
    )
    assert response.status_code == 200 and not Integration.objects.exists()


def test_rotate_action_shows_new_keys_and_revoke_action_revokes(crew, doors):
    client = client_for(crew.manager)
    url = reverse("admin:monitoring_integration_changelist")
    door = doors["generic"]
    response = client.post(
        url,
        {"action": "rotate_keys", "_selected_action": [door.integration.pk]},
        follow=True,
    )
    [key] = re.findall(r"<code>([0-9a-f]{32})</code>", response.content.decode())
    assert Integration.by_key(key) == door.integration and Integration.by_key(door.key) is None
    client.post(url, {"action": "revoke_integrations", "_selected_action": [door.integration.pk]})
    door.integration.refresh_from_db()
    assert door.integration.revoked_at is not None
    assert Integration.by_key(key) is None


def test_integrations_cannot_be_deleted_only_revoked(crew, doors):
    door = doors["generic"]
    response = client_for(crew.admin).get(
        reverse("admin:monitoring_integration_delete", args=[door.integration.pk])
    )
    assert response.status_code == 403


def test_alert_list_is_read_only_and_filters(crew, service, other_service):
    process(
        service,
        [
            AlertInput(labels={"alertname": "A", "env": "prod"}, severity=Severity.CRITICAL),
            AlertInput(labels={"alertname": "B"}, severity=Severity.WARNING),
        ],
        source="generic",
    )
    process(other_service, [AlertInput(labels={"alertname": "C"})], source="generic")
    client = client_for(crew.manager)
    url = reverse("admin:monitoring_alert_changelist")
    response = client.get(url)
    assert {a.summary for a in response.context["cl"].result_list} == {"A", "B"}
    response = client.get(url, {"severity__exact": "critical"})
    assert [a.summary for a in response.context["cl"].result_list] == ["A"]
    response = client.get(url, {"q": "prod"})
    assert [a.summary for a in response.context["cl"].result_list] == ["A"]
    response = client.get(url, {"service": service.pk, "suppression": "none"})
    assert {a.summary for a in response.context["cl"].result_list} == {"A", "B"}
    alert = response.context["cl"].result_list[0]
    change = client.get(reverse("admin:monitoring_alert_change", args=[alert.pk]))
    assert change.status_code == 200 and b"Save" not in change.content
    assert client.get(reverse("admin:monitoring_alert_add")).status_code == 403


def test_alert_changelist_query_count_is_flat(crew, service, django_assert_max_num_queries):
    process(
        service,
        [AlertInput(labels={"alertname": f"A{i}"}) for i in range(80)],
        source="generic",
    )
    client = client_for(crew.manager)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("admin:monitoring_alert_changelist"))
    assert response.status_code == 200


def test_admin_action_silences_selected_alerts_for_an_hour(crew, service):
    from django.test import Client

    from monitoring.models import Silence
    from monitoring.pipeline import AlertInput, process

    [outcome] = process(service, [AlertInput(labels={"alertname": "DiskFull"})], source="test")
    client = Client()
    client.force_login(crew.manager)
    response = client.post(
        "/admin/monitoring/alert/",
        {"action": "silence_for_an_hour", "_selected_action": [outcome.alert.pk]},
    )
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.created_by == crew.manager
    assert (silence.ends_at - silence.starts_at).total_seconds() == 3600
    outcome.alert.refresh_from_db()
    assert outcome.alert.suppression == "silenced"
