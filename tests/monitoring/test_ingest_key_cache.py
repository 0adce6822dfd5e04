"""The ingest key lookup is remembered per process, and a changed key stops working at once.

Re-sends are the common case in a storm; the key → integration lookup (three tables) is not
repeated for them. A rotated or revoked key must stop working immediately all the same, in this
process and in every web process (a real daphne process below), not after the cache expires.
"""

from __future__ import annotations

import time

import httpx
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.ingest import key_cache
from monitoring.ingest import views as ingest_views
from monitoring.models import IntegrationKind
from monitoring.services import revoke_integration, rotate_key, update_integration
from tests.monitoring.conftest import make_integration
from tests.monitoring.ingest_support import fixture, post

INTEGRATION_TABLE = "monitoring_integration"


def ingest(door, body=None):
    return post(
        f"/ingest/alertmanager/{door.key}/", body or fixture("alertmanager-webhook-v4.json")
    )


def integration_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if INTEGRATION_TABLE in q["sql"].split(" WHERE ")[0]]


@pytest.mark.django_db
def test_a_resend_does_not_look_the_key_up_again(service):
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    assert ingest(door).status_code == 200
    with CaptureQueriesContext(connection) as resend:
        assert ingest(door).status_code == 200

    assert not [sql for sql in integration_queries(resend) if "SELECT" in sql], (
        resend.captured_queries
    )


@pytest.mark.django_db
def test_a_rotated_key_stops_working_at_once(service):
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    assert ingest(door).status_code == 200

    new_key = rotate_key(door.integration)

    assert ingest(door).status_code == 404
    door.key = new_key
    assert ingest(door).status_code == 200


@pytest.mark.django_db
def test_a_revoked_key_stops_working_at_once(service):
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    assert ingest(door).status_code == 200

    revoke_integration(door.integration)

    assert ingest(door).status_code == 404


@pytest.mark.django_db
def test_a_changed_rate_limit_applies_at_once(service, monkeypatch):
    monkeypatch.setattr(ingest_views, "clock", lambda: 1_699_999_990.0)
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    cache.delete(ingest_views.rate_key(door.integration.pk, 1_699_999_990 // 60))
    assert ingest(door).status_code == 200

    update_integration(door.integration, rate_limit_per_minute=1)

    assert ingest(door).status_code == 429


@pytest.mark.django_db
def test_an_unlimited_integration_keeps_no_count(service, monkeypatch):
    monkeypatch.setattr(ingest_views, "clock", lambda: 1_699_999_990.0)
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    update_integration(door.integration, rate_limit_per_minute=0)
    cache.delete(ingest_views.rate_key(door.integration.pk, 1_699_999_990 // 60))  # pks repeat

    assert ingest(door).status_code == 200

    assert cache.get(ingest_views.rate_key(door.integration.pk, 1_699_999_990 // 60)) is None


@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # a real web process on the test database
def test_a_key_revoked_here_stops_working_in_a_running_web_process(service, tmp_path):
    from tests.live import start_web

    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    web = start_web(tmp_path)
    url = f"{web.url}/ingest/alertmanager/{door.key}/"
    body = fixture("alertmanager-webhook-v4.json")
    try:
        for _ in range(3):  # the web process remembers the key now
            assert httpx.post(url, json=body, timeout=30).status_code == 200

        revoke_integration(door.integration)
        revoked_at = time.monotonic()
        answered = [httpx.post(url, json=body, timeout=30).status_code]
        while answered[-1] != 404 and time.monotonic() - revoked_at < 5:
            answered.append(httpx.post(url, json=body, timeout=30).status_code)
            time.sleep(0.1)
        refused_after = time.monotonic() - revoked_at
    finally:
        web.proc.stop()

    # At once with the version file (embedded); within key_cache.VERSION_CHECK_SECONDS with
    # Redis (the test's requests themselves take time on a busy machine: allow for them).
    assert answered[-1] == 404, answered
    if not settings.REDIS_URL:
        assert answered == [404]
    assert refused_after < key_cache.VERSION_CHECK_SECONDS + 3
    assert refused_after < settings.TOCSIN_INGEST_KEY_CACHE_SECONDS


@pytest.mark.django_db
def test_the_event_loop_uses_only_answers_it_can_trust_without_io(service, settings):
    door = make_integration(service, IntegrationKind.ALERTMANAGER)
    kind = IntegrationKind.ALERTMANAGER
    assert key_cache.remembered(door.key, kind) is None  # never looked up: the thread asks
    assert key_cache.integration_for_key(door.key, kind).pk == door.integration.pk
    with CaptureQueriesContext(connection) as queries:
        known = key_cache.remembered(door.key, kind)
    assert known.pk == door.integration.pk and not queries.captured_queries
    assert key_cache.remembered(door.key, IntegrationKind.GRAFANA) is None

    new_key = rotate_key(door.integration)
    assert key_cache.remembered(door.key, kind) is None  # forgotten here at once

    # With Redis the version is re-read once a second: past that, only a round trip can tell.
    key_cache.integration_for_key(new_key, kind)
    version = key_cache.current_version()
    settings.REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:1/0"
    try:
        key_cache._redis_version = (version, time.monotonic())
        assert key_cache.remembered(new_key, kind).pk == door.integration.pk
        stale = time.monotonic() - key_cache.VERSION_CHECK_SECONDS - 1
        key_cache._redis_version = (version, stale)
        assert key_cache.remembered(new_key, kind) is None
    finally:
        key_cache.forget_keys()
