"""Every change to a heartbeat is in the event log — who, what, the configuration it left —
whether made in the admin, the API, the pages or from a ping URL; deleting one in the admin
resolves its open alerts as the API does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Alert, AlertStatus, Service
from probes.heartbeats import services
from probes.heartbeats.evaluation import evaluate_due
from probes.heartbeats.models import Heartbeat, PingKind
from tests.probes.test_heartbeat_admin import form
from tocsin.models import Event

URL = "/api/v1/heartbeats/"


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


def log() -> list[tuple[str, str]]:
    events = Event.objects.filter(kind__startswith="heartbeat.").order_by("id")
    return [(e.kind, e.actor_label) for e in events]


def test_the_api_records_who_created_changed_paused_and_deleted(api, crew, service):
    manager, responder = api(crew.manager), api(crew.responder)
    created = manager.post(
        URL, {"service": service.pk, "name": "Export", "period": 3600}, format="json"
    ).json()
    manager.patch(f"{URL}{created['id']}/", {"grace": 120}, format="json")
    responder.post(f"{URL}{created['id']}/pause/")
    responder.post(f"{URL}{created['id']}/snooze/", {"duration": "2h"}, format="json")
    manager.delete(f"{URL}{created['id']}/")

    manager_label, responder_label = str(crew.manager), str(crew.responder)
    assert log() == [
        ("heartbeat.created", manager_label),
        ("heartbeat.updated", manager_label),
        ("heartbeat.paused", responder_label),
        ("heartbeat.snoozed", responder_label),
        ("heartbeat.paused", manager_label),  # deleting pauses first: its alerts resolve
        ("heartbeat.deleted", manager_label),
    ]
    updated = Event.objects.get(kind="heartbeat.updated")
    assert updated.team_id == crew.team.pk
    assert updated.payload["heartbeat_id"] == created["id"]
    assert (updated.payload["grace"], updated.payload["period"]) == (120, 3600)
    snoozed = Event.objects.get(kind="heartbeat.snoozed")
    assert snoozed.payload["snoozed_until"]


def test_the_admin_records_changes_and_deleting_resolves_open_alerts(crew, service):
    client = Client()
    client.force_login(crew.manager)
    client.post(reverse("admin:probes_heartbeat_add"), form(service))
    heartbeat = Heartbeat.objects.get()
    # Its last ping three days ago: the evaluation raises its "missing" alert.
    services.record_ping(
        heartbeat, services.PingData(kind=PingKind.SUCCESS), now=timezone.now() - timedelta(days=3)
    )
    evaluate_due()
    assert Alert.objects.get(service=service).status == AlertStatus.FIRING

    response = client.post(
        reverse("admin:probes_heartbeat_delete", args=[heartbeat.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Heartbeat.objects.exists()
    assert Alert.objects.get(service=service).status == AlertStatus.RESOLVED
    kinds = [kind for kind, _ in log()]
    assert kinds == ["heartbeat.created", "heartbeat.paused", "heartbeat.deleted"]
    assert {label for _, label in log()} == {str(crew.manager)}


def test_a_snooze_from_the_ping_url_says_so(client, service):
    heartbeat = Heartbeat.objects.create(service=service, name="Backup", period=3600)

    assert client.get(f"/ping/{heartbeat.uuid}/snooze/1h").status_code == 200

    assert log() == [("heartbeat.snoozed", "ping URL")]
