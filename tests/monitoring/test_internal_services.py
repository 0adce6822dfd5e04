"""monitoring.services.ensure_internal_service: one way to get a team's internal service."""

from __future__ import annotations

import pytest

from monitoring import services
from monitoring.models import IntegrationKind, Service
from tocsin.models import Event

pytestmark = pytest.mark.django_db


def ensure(team_id: int) -> Service:
    return services.ensure_internal_service(
        team_id, slug="tocsin-notifier", name="Tocsin notifications", integration_name="Notifier"
    )


def test_it_creates_the_service_with_an_internal_integration_and_records_both(crew):
    service = ensure(crew.team.pk)
    assert (service.team_id, service.slug, service.name) == (
        crew.team.pk,
        "tocsin-notifier",
        "Tocsin notifications",
    )
    [integration] = service.integrations.all()
    assert (integration.kind, integration.name) == (IntegrationKind.INTERNAL, "Notifier")
    kinds = list(Event.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["service.created", "integration.created"]


def test_it_is_idempotent(crew):
    first = ensure(crew.team.pk)
    second = ensure(crew.team.pk)
    assert first.pk == second.pk
    assert Service.objects.count() == 1
    assert second.integrations.count() == 1
    assert Event.objects.count() == 2


def test_it_adds_the_integration_to_a_service_that_lacks_one(crew):
    existing = services.create_service(crew.team, "Tocsin notifications", slug="tocsin-notifier")
    assert ensure(crew.team.pk).pk == existing.pk
    assert existing.integrations.get().kind == IntegrationKind.INTERNAL


def test_a_team_service_with_the_same_name_does_not_block_it(crew):
    services.create_service(crew.team, "Tocsin notifications", slug="notifications")
    service = ensure(crew.team.pk)
    assert service.slug == "tocsin-notifier"
    assert service.name == "Tocsin notifications (tocsin-notifier)"


def test_each_team_gets_its_own(crew):
    assert ensure(crew.team.pk).pk != ensure(crew.other_team.pk).pk
