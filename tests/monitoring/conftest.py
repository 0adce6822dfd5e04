"""Monitoring fixtures: a service of the crew's team with one integration of each kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitoring.models import Integration, IntegrationKind, Service


@dataclass
class Door:
    integration: Integration
    key: str


def make_integration(service: Service, kind: str, name: str = "") -> Door:
    integration = Integration(service=service, kind=kind, name=name or kind)
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    return Door(integration, key)


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Checkout API")


@pytest.fixture
def other_service(crew) -> Service:
    return Service.objects.create(team=crew.other_team, name="Search API")


@pytest.fixture
def doors(service) -> dict[str, Door]:
    return {kind: make_integration(service, kind) for kind in IntegrationKind.values}
