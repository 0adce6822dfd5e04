"""Catalog operations: validation, events in the same transaction, keys shown once."""

from __future__ import annotations

import pytest

from monitoring import services
from monitoring.models import Integration, IntegrationKind, Service
from monitoring.models.catalog import hash_key
from monitoring.pipeline import AlertInput, process
from tocsin.models import Event
from tocsin.services import ServiceError


def kinds() -> list[str]:
    return list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def test_create_service_derives_the_slug_and_records_it(crew):
    service = services.create_service(
        crew.team, "  Checkout API ", actor=crew.manager, tags="Payments, tier-1, payments"
    )
    assert (service.name, service.slug, service.tags) == (
        "Checkout API",
        "checkout-api",
        ["payments", "tier-1"],
    )
    event = Event.objects.get()
    assert (event.kind, event.team_id, event.actor_id) == (
        "service.created",
        crew.team.pk,
        crew.manager.pk,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "ok", "slug": "no spaces"}, "slug"),
        ({"name": "ok", "runbook_url": "ftp://x"}, "runbook_url"),
        ({"name": "ok", "tags": [1]}, "tags"),
    ],
)
def test_create_service_refuses_bad_input(crew, kwargs, field):
    name = kwargs.pop("name")
    with pytest.raises(ServiceError) as info:
        services.create_service(crew.team, name, **kwargs)
    assert info.value.field == field
    assert not Service.objects.exists() and not Event.objects.exists()


def test_duplicate_service_names_in_a_team_are_refused_but_fine_across_teams(crew):
    services.create_service(crew.team, "Checkout")
    with pytest.raises(ServiceError) as info:
        services.create_service(crew.team, "checkout")
    assert info.value.code == "duplicate"
    services.create_service(crew.other_team, "Checkout")
    assert Service.objects.count() == 2


def test_update_service_records_before_and_after_and_keeps_the_slug(crew, service):
    services.update_service(service, actor=crew.manager, name="Checkout", tags=["a"])
    service.refresh_from_db()
    assert (service.name, service.slug, service.tags) == ("Checkout", "checkout-api", ["a"])
    event = Event.objects.get()
    assert event.kind == "service.updated"
    assert event.payload["changes"]["name"] == ["Checkout API", "Checkout"]


def test_update_without_changes_records_nothing(crew, service):
    services.update_service(service, name=service.name)
    assert not Event.objects.exists()


def test_a_service_with_alerts_cannot_be_deleted(crew, service):
    process(service, [AlertInput(labels={"alertname": "X"})], source="generic")
    with pytest.raises(ServiceError) as info:
        services.delete_service(service)
    assert info.value.code == "protected"
    assert Service.objects.filter(pk=service.pk).exists()


def test_a_service_without_alerts_can_be_deleted(crew, service):
    services.delete_service(service, actor=crew.manager)
    assert not Service.objects.exists()
    assert kinds() == ["service.deleted"]


def test_create_integration_returns_the_key_once_and_stores_only_its_hash(crew, service):
    integration, key = services.create_integration(
        service, IntegrationKind.ALERTMANAGER, "prod", actor=crew.manager
    )
    integration.refresh_from_db()
    assert len(key) == 32
    assert integration.key_hash == hash_key(key) and key not in integration.key_hash
    assert integration.key_prefix == key[:6]
    assert Integration.by_key(key) == integration
    event = Event.objects.get()
    assert event.kind == "integration.created"
    assert key not in str(event.payload)


def test_create_integration_names_it_after_its_kind_by_default(service):
    integration, _key = services.create_integration(service, IntegrationKind.GRAFANA)
    assert integration.name == "Grafana webhook"


@pytest.mark.parametrize("kind", ["nagios", IntegrationKind.INTERNAL])
def test_create_integration_refuses_unknown_and_internal_kinds(service, kind):
    with pytest.raises(ServiceError) as info:
        services.create_integration(service, kind)
    assert info.value.field == "kind"
    assert not Integration.objects.exists()


def test_rotating_a_key_stops_the_old_one_at_once(crew, service):
    integration, old = services.create_integration(service, IntegrationKind.GENERIC)
    new = services.rotate_key(integration, actor=crew.manager)
    assert new != old
    assert Integration.by_key(old) is None
    assert Integration.by_key(new) == integration
    integration.refresh_from_db()
    assert integration.key_rotated_at is not None
    assert kinds() == ["integration.created", "integration.key_rotated"]
    assert new not in str(Event.objects.last().payload)


def test_revoking_stops_the_key_and_is_idempotent(crew, service):
    integration, key = services.create_integration(service, IntegrationKind.GENERIC)
    services.revoke_integration(integration, actor=crew.manager)
    services.revoke_integration(integration, actor=crew.manager)
    assert Integration.by_key(key) is None
    assert integration.revoked_at is not None
    assert kinds() == ["integration.created", "integration.revoked"]


def test_a_revoked_integration_cannot_be_rotated(service):
    integration, _key = services.create_integration(service, IntegrationKind.GENERIC)
    services.revoke_integration(integration)
    with pytest.raises(ServiceError) as info:
        services.rotate_key(integration)
    assert info.value.code == "revoked"


def test_update_integration_validates_the_rate_limit(service):
    integration, _key = services.create_integration(service, IntegrationKind.GENERIC)
    with pytest.raises(ServiceError):
        services.update_integration(integration, rate_limit_per_minute=-1)
    services.update_integration(integration, rate_limit_per_minute=60, name="cron")
    integration.refresh_from_db()
    assert (integration.rate_limit_per_minute, integration.name) == (60, "cron")


def test_ingest_urls_follow_each_senders_convention(settings):
    settings.TOCSIN_BASE_URL = "https://tocsin.example"
    assert (
        services.ingest_url("alertmanager", "k") == "https://tocsin.example/ingest/alertmanager/k/"
    )
    assert (
        services.ingest_url("prometheus", "k")
        == "https://tocsin.example/ingest/prometheus/k/api/v2/alerts"
    )
    assert services.ingest_url("grafana") == "https://tocsin.example/ingest/grafana/<your key>/"
    assert (
        services.ingest_url("events_v2", "k")
        == "https://tocsin.example/ingest/pagerduty/v2/enqueue"
    )
    assert services.ingest_url("generic", "k") == "https://tocsin.example/ingest/generic/k/"
    assert services.prometheus_target("k") == {
        "scheme": "https",
        "target": "tocsin.example:443",
        "path_prefix": "/ingest/prometheus/k/",
    }
