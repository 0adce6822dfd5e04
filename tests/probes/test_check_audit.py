"""Every change to a check is in the event log — who, and its settings but never its config
(which may hold passwords) — from the admin, the API and the pages alike; deleting a check in the
admin resolves its open alert as the API does, results and rollups notwithstanding."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from monitoring.models import Alert, AlertStatus, Service
from probes.checks import services
from probes.checks.models import Check, Result
from tests.probes import test_check_target as support
from tests.probes.test_check_target import make_check
from tocsin.models import Event

URL = "/api/v1/checks/"
target = support.target  # fixture


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Shop")


def log() -> list[tuple[str, str]]:
    events = Event.objects.filter(kind__startswith="check.").order_by("id")
    return [(e.kind, e.actor_label) for e in events]


def test_the_api_records_who_created_changed_paused_resumed_and_deleted(api, crew, service, target):
    manager, responder = api(crew.manager), api(crew.responder)
    secret = {"url": target.url("/"), "auth": {"type": "bearer", "token": "s3cret-token"}}
    created = manager.post(
        URL,
        {"service": service.pk, "name": "Checkout", "kind": "http", "config": secret},
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    manager.patch(f"{URL}{pk}/", {"interval": 120}, format="json")
    responder.post(f"{URL}{pk}/pause/")
    responder.post(f"{URL}{pk}/resume/")
    manager.delete(f"{URL}{pk}/")

    manager_label, responder_label = str(crew.manager), str(crew.responder)
    assert log() == [
        ("check.created", manager_label),
        ("check.updated", manager_label),
        ("check.paused", responder_label),
        ("check.resumed", responder_label),
        ("check.paused", manager_label),  # deleting pauses first: its alert resolves
        ("check.deleted", manager_label),
    ]
    updated = Event.objects.get(kind="check.updated")
    assert (updated.payload["check_id"], updated.payload["interval"]) == (pk, 120)
    assert updated.team_id == crew.team.pk
    assert all("s3cret" not in str(e.payload) for e in Event.objects.all())


def test_the_admin_deletes_a_check_with_results_and_resolves_its_alert(crew, service, target):
    check = make_check(service, target)
    services.update_check(check, failure_threshold=1)
    target.set(500)
    services.run_now(Check.objects.get(pk=check.pk))
    assert Result.objects.filter(probe=check).exists()
    assert Alert.objects.get().status == AlertStatus.FIRING
    client = Client()
    client.force_login(crew.manager)

    response = client.post(reverse("admin:probes_check_delete", args=[check.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Check.objects.exists()
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert log()[-2:] == [("check.paused", str(crew.manager)), ("check.deleted", str(crew.manager))]


def test_pausing_from_the_page_is_recorded(crew, service, target):
    check = make_check(service, target)
    client = Client()
    client.force_login(crew.responder)

    client.post(reverse("check_pause", args=[check.pk]))

    assert log()[-1] == ("check.paused", str(crew.responder))


def test_a_state_change_is_an_event_the_grid_hears(crew, service, target):
    check = make_check(service, target, failure_threshold=1, recovery_threshold=1)
    target.set(200)
    support.step(check)
    target.set(503)
    support.step(check)
    target.set(200)
    support.step(check)
    support.step(check)  # up again, and still up: no event for a run that changes nothing

    moves = Event.objects.filter(kind="check.state_changed").order_by("id")
    assert [(e.payload["was"], e.payload["state"]) for e in moves] == [
        ("unknown", "up"),
        ("up", "down"),
        ("down", "up"),
    ]
    assert {e.team_id for e in moves} == {crew.team.pk}
