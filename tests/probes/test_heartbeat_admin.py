"""The heartbeat admin: team-scoped, shows the lines to paste, writes through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from monitoring.models import Alert, AlertStatus, Service
from probes.heartbeats import snippets
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, PingKey


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


@pytest.fixture
def heartbeat(service) -> Heartbeat:
    return Heartbeat.objects.create(service=service, name="Backup", cron="30 2 * * *")


def form(service: Service, **changes: Any) -> dict[str, Any]:
    data = {
        "service": service.pk,
        "name": "DB backup",
        "slug": "",
        "description": "",
        "period": 86400,
        "cron": "",
        "timezone": "UTC",
        "grace": 3600,
        "min_runtime": "",
        "max_runtime": "",
        "too_often": "",
        "failures_before_alert": 1,
        "failure_percent": "",
        "failure_window": 10,
        "snoozed_until_0": "",
        "snoozed_until_1": "",
    }
    return data | changes


def test_the_change_page_shows_the_curl_and_crontab_lines(crew, heartbeat):
    response = client_for(crew.manager).get(
        reverse("admin:probes_heartbeat_change", args=[heartbeat.pk])
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert snippets.curl_line(heartbeat) in html
    assert "30 2 * * * curl -fsS" in html
    assert f"/ping/{heartbeat.uuid}/$?" in html


def test_adding_a_heartbeat_gives_its_service_a_ping_key(crew, service):
    response = client_for(crew.manager).post(reverse("admin:probes_heartbeat_add"), form(service))

    assert response.status_code == 302, response.content[:3000]
    heartbeat = Heartbeat.objects.get()
    assert (heartbeat.slug, heartbeat.status) == ("db-backup", HeartbeatStatus.NEW)
    assert PingKey.objects.filter(service=service).exists()


def test_a_bad_cron_expression_is_shown_on_the_form(crew, service):
    response = client_for(crew.manager).post(
        reverse("admin:probes_heartbeat_add"), form(service, cron="every night")
    )

    assert response.status_code == 200
    assert "cron" in response.context["adminform"].form.errors
    assert not Heartbeat.objects.exists()


def test_a_manager_cannot_put_a_heartbeat_on_another_teams_service(crew):
    foreign = Service.objects.create(team=crew.other_team, name="Search")

    response = client_for(crew.manager).post(reverse("admin:probes_heartbeat_add"), form(foreign))

    assert response.status_code == 200
    assert "service" in response.context["adminform"].form.errors
    assert not Heartbeat.objects.exists()


def test_other_teams_do_not_see_the_heartbeat(crew, heartbeat):
    client = client_for(crew.outsider)

    listing = client.get(reverse("admin:probes_heartbeat_changelist"))
    page = client.get(reverse("admin:probes_heartbeat_change", args=[heartbeat.pk]))

    assert list(listing.context["cl"].result_list) == []
    assert page.status_code == 302  # "does not exist", as for any row out of scope


def test_the_pause_action_resolves_open_alerts(crew, heartbeat):
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from probes.heartbeats import services

    with transaction.atomic():
        services.record_ping(
            services.lock_by_uuid(heartbeat.uuid),
            services.PingData(kind="fail"),
            now=timezone.now() - timedelta(minutes=1),
        )
    assert Alert.objects.get().status == AlertStatus.FIRING

    response = client_for(crew.manager).post(
        reverse("admin:probes_heartbeat_changelist"),
        {"action": "pause_selected", "_selected_action": [heartbeat.pk]},
    )

    assert response.status_code == 302
    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.PAUSED
    assert Alert.objects.get().status == AlertStatus.RESOLVED


def test_a_name_whose_slug_is_taken_is_a_form_error(crew, service, heartbeat):
    response = client_for(crew.manager).post(
        reverse("admin:probes_heartbeat_add"), form(service, name="Backup")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Heartbeat.objects.count() == 1
