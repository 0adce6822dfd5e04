"""Helpers for the status page tests: a page with components, probe history, incidents."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from incidents.models import Incident
from incidents.statuspages import services
from incidents.statuspages.models import Component, ComponentGroup, StatusPage
from monitoring.models import Service
from probes.checks import services as check_services
from probes.checks.models import Check
from probes.checks.results import Rollup


def make_page(team: Any, *, published: bool = True, **fields: Any) -> StatusPage:
    fields.setdefault("title", "Payments status")
    fields.setdefault("slug", "payments")
    with transaction.atomic():
        return services.save_page(StatusPage(team=team), actor=None, published=published, **fields)


def make_group(page: StatusPage, name: str, position: int = 0) -> ComponentGroup:
    return services.save_group(ComponentGroup(page=page), actor=None, name=name, position=position)


def make_component(page: StatusPage, name: str, **fields: Any) -> Component:
    return services.save_component(Component(page=page), actor=None, name=name, **fields)


def make_check(service: Service, name: str = "Shop front") -> Check:
    return check_services.create_check(
        service=service,
        name=name,
        kind="http",
        config={"url": "http://127.0.0.1:9/"},
        interval=60,
        timeout=2.0,
    )


def set_state(check: Check, state: str) -> None:
    Check.objects.filter(pk=check.pk).update(state=state)


def day_rows(check: Check, days: dict[date, tuple[int, int, int]]) -> None:
    """Rollup day rows (up, degraded, down) as the probes' rollups write them."""
    Rollup.objects.bulk_create(
        Rollup(probe=check, day=day, up=up, degraded=degraded, down=down)
        for day, (up, degraded, down) in days.items()
    )


def today() -> date:
    return timezone.now().date()


def open_incident(service: Service, priority: str = "P1", **fields: Any) -> Incident:
    fields.setdefault("title", "Database on fire")
    fields.setdefault("created_at", timezone.now() - timedelta(minutes=30))
    return Incident.objects.create(
        team=service.team, service=service, priority=priority, group_key=f"k{priority}", **fields
    )
