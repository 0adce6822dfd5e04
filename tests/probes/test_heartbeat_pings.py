"""The ping endpoints, as Healthchecks.io clients call them: paths, methods, codes, bodies."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from monitoring.models import Alert, AlertStatus, Service
from probes.heartbeats import services
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, Ping, PingKind


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


@pytest.fixture
def heartbeat(service) -> Heartbeat:
    return Heartbeat.objects.create(service=service, name="Backup", period=3600, grace=600)


@pytest.fixture
def client() -> Client:
    # Pings never carry a CSRF token: the check must be off for them, not merely lenient.
    return Client(enforce_csrf_checks=True)


def url(heartbeat: Heartbeat, suffix: str = "") -> str:
    return f"/ping/{heartbeat.uuid}{suffix}"


@pytest.mark.parametrize("method", ["get", "head", "post"])
def test_it_accepts_get_head_and_post_without_login_or_csrf(client, heartbeat, method):
    response = getattr(client, method)(url(heartbeat))

    assert response.status_code == 200
    if method != "head":
        assert response.content == b"OK"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Ping-Body-Limit"] == "100000"
    ping = Ping.objects.get(heartbeat=heartbeat)
    assert ping.kind == PingKind.SUCCESS
    assert ping.method == method.upper()
    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.UP
    assert heartbeat.last_ping_at == ping.received_at


def test_unknown_uuid_answers_not_found(client, db):
    response = client.get(f"/ping/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.content == b"not found"
    assert not Ping.objects.exists()


def test_it_records_start_fail_and_log(client, heartbeat):
    assert client.get(url(heartbeat, "/start")).status_code == 200
    assert (
        client.post(url(heartbeat, "/log"), "half way", content_type="text/plain").content == b"OK"
    )
    assert client.get(url(heartbeat, "/fail")).status_code == 200

    kinds = list(Ping.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [PingKind.START, PingKind.LOG, PingKind.FAIL]
    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.DOWN
    assert heartbeat.last_start_at is None  # the failure finished the run


@pytest.mark.parametrize(
    ("status", "kind"), [(0, PingKind.SUCCESS), (1, PingKind.FAIL), (255, PingKind.FAIL)]
)
def test_exit_status_decides_success_or_failure(client, heartbeat, status, kind):
    response = client.get(url(heartbeat, f"/{status}"))

    assert response.status_code == 200
    ping = Ping.objects.get(heartbeat=heartbeat)
    assert (ping.kind, ping.exit_status) == (kind, status)


def test_exit_status_above_255_is_an_invalid_url(client, heartbeat):
    response = client.get(url(heartbeat, "/256"))

    assert response.status_code == 400
    assert response.content == b"invalid url format"
    assert not Ping.objects.exists()


def test_a_run_id_that_is_no_uuid_is_refused(client, heartbeat):
    response = client.get(url(heartbeat, "?rid=not-a-uuid"))

    assert response.status_code == 400
    assert response.content == b"invalid uuid format"


@override_settings(TOCSIN_PING_BODY_LIMIT=10)
def test_it_keeps_the_body_up_to_the_announced_limit(client, heartbeat):
    response = client.post(url(heartbeat), "0123456789abcdef", content_type="text/plain")

    assert response["Ping-Body-Limit"] == "10"
    ping = Ping.objects.get()
    assert ping.body == "0123456789"
    assert ping.body_size == 16
    assert ping.body_truncated


def test_a_binary_body_is_stored_as_text_without_failing(client, heartbeat):
    client.post(url(heartbeat), b"\xff\x00ok", content_type="application/octet-stream")

    assert Ping.objects.get().body == "\ufffd\ufffdok"


def test_it_stores_the_user_agent_and_address(client, heartbeat):
    client.get(url(heartbeat), HTTP_USER_AGENT="curl/8.5.0", REMOTE_ADDR="192.0.2.7")

    ping = Ping.objects.get()
    assert (ping.user_agent, ping.remote_addr) == ("curl/8.5.0", "192.0.2.7")


# -- slug URLs ---
def test_slug_urls_reach_the_heartbeat_through_the_service_ping_key(client, heartbeat):
    key = services.ping_key_for(heartbeat.service).key

    assert client.get(f"/ping/{key}/{heartbeat.slug}/start").status_code == 200
    assert client.get(f"/ping/{key}/{heartbeat.slug}/0").status_code == 200

    kinds = list(Ping.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [PingKind.START, PingKind.SUCCESS]
    assert Ping.objects.get(kind=PingKind.SUCCESS).duration is not None


def test_an_unknown_slug_is_not_found_without_create(client, service):
    key = services.ping_key_for(service).key

    response = client.get(f"/ping/{key}/db-backup")

    assert response.status_code == 404
    assert response.content == b"not found"
    assert not Heartbeat.objects.exists()


def test_create_1_auto_provisions_a_heartbeat_for_an_unknown_slug(client, service):
    key = services.ping_key_for(service).key

    first = client.get(f"/ping/{key}/db-backup?create=1")
    again = client.get(f"/ping/{key}/db-backup?create=1")

    assert (first.status_code, first.content) == (201, b"Created")
    assert (again.status_code, again.content) == (200, b"OK")
    heartbeat = Heartbeat.objects.get()
    assert (heartbeat.service, heartbeat.slug, heartbeat.name) == (
        service,
        "db-backup",
        "db-backup",
    )
    assert heartbeat.pings.count() == 2
    assert heartbeat.status == HeartbeatStatus.UP


def test_create_1_with_an_unknown_key_creates_nothing(client, db):
    response = client.get("/ping/AAAAAAAAAAAAAAAAAAAAAA/db-backup?create=1")

    assert response.status_code == 404
    assert not Heartbeat.objects.exists()


def test_a_rotated_key_stops_working(client, heartbeat):
    old = services.ping_key_for(heartbeat.service).key
    services.rotate_ping_key(heartbeat.service)
    heartbeat.service.refresh_from_db()

    assert client.get(f"/ping/{old}/{heartbeat.slug}").status_code == 404


# -- the hot path ---
def test_a_ping_costs_one_read_one_update_and_one_insert(client, heartbeat):
    client.get(url(heartbeat))  # the first ping changes the status; the steady state follows

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url(heartbeat))

    assert response.status_code == 200
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    statements = [s for s in statements if s not in ("SAVEPOINT", "RELEASE")]
    assert statements == ["SELECT", "UPDATE", "INSERT"], queries.captured_queries


def test_a_late_heartbeat_that_pings_resolves_its_alert(client, heartbeat):
    from datetime import timedelta

    from django.utils import timezone

    from probes.heartbeats import evaluation

    client.get(url(heartbeat))
    heartbeat.refresh_from_db()
    evaluation.run_due(heartbeat.next_due_at + timedelta(seconds=1))
    alert = Alert.objects.get(service=heartbeat.service)
    assert alert.status == AlertStatus.FIRING
    assert timezone.now() < heartbeat.next_due_at  # (time was driven, not waited for)

    client.get(url(heartbeat))

    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.UP


# -- pausing and snoozing from the URL ---
def test_a_paused_heartbeat_resumes_on_its_next_ping(client, heartbeat):
    services.pause(heartbeat)

    client.get(url(heartbeat))

    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.UP


def test_with_manual_resume_pings_to_a_paused_heartbeat_are_ignored(client, heartbeat):
    heartbeat.manual_resume = True
    heartbeat.save()
    services.pause(heartbeat)

    assert client.get(url(heartbeat, "/fail")).status_code == 200

    heartbeat.refresh_from_db()
    assert heartbeat.status == HeartbeatStatus.PAUSED
    assert Ping.objects.get().kind == PingKind.IGNORED
    assert not Alert.objects.exists()


def test_snooze_from_the_ping_url(client, heartbeat):
    response = client.get(url(heartbeat, "/snooze/2h"))

    assert (response.status_code, response.content) == (200, b"OK")
    heartbeat.refresh_from_db()
    assert heartbeat.snoozed_until is not None
    assert client.get(url(heartbeat, "/snooze/soon")).status_code == 400
    assert client.get(url(heartbeat, "/snooze/0")).status_code == 200
    heartbeat.refresh_from_db()
    assert heartbeat.snoozed_until is None
