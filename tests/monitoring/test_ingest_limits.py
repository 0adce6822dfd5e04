"""What every ingest endpoint refuses: no key, wrong key, wrong method, too big, too often."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone

from monitoring.ingest import stats as ingest_stats
from monitoring.ingest import views as ingest_views
from monitoring.models import Alert
from tests.monitoring.ingest_support import assert_nothing_stored, bearer, fixture, post

pytestmark = pytest.mark.django_db

GENERIC = {"title": "Disk almost full", "labels": {"host": "db-1"}}
BEARER_URLS = [
    "/ingest/alertmanager/",
    "/ingest/grafana/",
    "/ingest/generic/",
    "/ingest/prometheus/api/v2/alerts",
]
NOW = 1_699_999_990.0  # ten seconds into a minute


@pytest.fixture
def pinned_clock(monkeypatch):
    """A fixed rate-limit minute, with its counters forgotten (pks repeat between tests)."""
    monkeypatch.setattr(ingest_views, "clock", lambda: NOW)

    def forget(integration) -> None:
        cache.delete(ingest_views.rate_key(integration.pk, int(NOW // 60)))

    return forget


@pytest.mark.parametrize("path", BEARER_URLS)
def test_a_missing_key_is_unauthenticated(doors, path):
    response = post(path, [] if "prometheus" in path else {"alerts": []})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_key_with_the_wrong_scheme_is_unauthenticated(doors):
    response = post("/ingest/generic/", GENERIC, Authorization=f"Basic {doors['generic'].key}")
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]["message"]
    assert_nothing_stored()


@pytest.mark.parametrize("path", BEARER_URLS)
def test_an_unknown_bearer_key_is_not_found(doors, path):
    response = post(path, [], **bearer("0" * 32))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_key_in_the_path_is_not_found(doors):
    response = post("/ingest/generic/0123456789abcdef0123456789abcdef/", GENERIC)
    assert response.status_code == 404
    assert_nothing_stored()


def test_a_revoked_key_is_not_found(doors):
    door = doors["generic"]
    door.integration.revoked_at = timezone.now()
    door.integration.save()
    assert post(f"/ingest/generic/{door.key}/", GENERIC).status_code == 404
    assert post("/ingest/generic/", GENERIC, **bearer(door.key)).status_code == 404
    assert_nothing_stored()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(doors, method):
    response = getattr(Client(), method)(f"/ingest/alertmanager/{doors['alertmanager'].key}/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_only_post_is_allowed_for_events_v2():
    response = Client().get("/ingest/pagerduty/v2/enqueue")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


@override_settings(TOCSIN_INGEST_MAX_BYTES=2048)
def test_an_oversize_body_is_refused(doors):
    big = {**GENERIC, "description": "x" * 3000}
    response = post(f"/ingest/generic/{doors['generic'].key}/", big)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "2048 bytes" in error["message"]
    assert_nothing_stored()


@override_settings(TOCSIN_INGEST_MAX_BYTES=2048)
def test_an_oversize_event_is_refused(doors):
    body = fixture("pagerduty-events-v2-trigger.json")
    body["routing_key"] = doors["events_v2"].key
    body["payload"]["custom_details"] = {"blob": "x" * 3000}
    assert post("/ingest/pagerduty/v2/enqueue", body).status_code == 413
    assert_nothing_stored()


@override_settings(TOCSIN_INGEST_MAX_BYTES=2048)
def test_a_body_just_under_the_limit_is_accepted(doors):
    body = {**GENERIC, "description": "x" * 1900}
    assert post(f"/ingest/generic/{doors['generic'].key}/", body).status_code == 200


def test_requests_over_the_rate_limit_are_refused(doors, pinned_clock):
    door = doors["generic"]
    door.integration.rate_limit_per_minute = 3
    door.integration.save()
    pinned_clock(door.integration)
    url = f"/ingest/generic/{door.key}/"
    assert [post(url, GENERIC).status_code for _ in range(3)] == [200, 200, 200]
    response = post(url, GENERIC)
    assert response.status_code == 429
    assert response["Retry-After"] == "50"
    assert response.json()["error"]["code"] == "throttled"
    assert Alert.objects.get().occurrences == 3


def test_the_rate_limit_is_per_integration(doors, pinned_clock):
    for kind in ("generic", "alertmanager"):
        doors[kind].integration.rate_limit_per_minute = 1
        doors[kind].integration.save()
        pinned_clock(doors[kind].integration)
    assert post(f"/ingest/generic/{doors['generic'].key}/", GENERIC).status_code == 200
    assert post(f"/ingest/generic/{doors['generic'].key}/", GENERIC).status_code == 429
    body = fixture("alertmanager-webhook-v4.json")
    assert post(f"/ingest/alertmanager/{doors['alertmanager'].key}/", body).status_code == 200


def test_the_rate_limit_starts_afresh_each_minute(doors, pinned_clock, monkeypatch):
    door = doors["generic"]
    door.integration.rate_limit_per_minute = 1
    door.integration.save()
    pinned_clock(door.integration)
    url = f"/ingest/generic/{door.key}/"
    assert post(url, GENERIC).status_code == 200
    assert post(url, GENERIC).status_code == 429
    monkeypatch.setattr(ingest_views, "clock", lambda: NOW + 60)
    cache.delete(ingest_views.rate_key(door.integration.pk, int((NOW + 60) // 60)))
    assert post(url, GENERIC).status_code == 200


def test_zero_means_unlimited(doors, pinned_clock):
    door = doors["generic"]
    door.integration.rate_limit_per_minute = 0
    door.integration.save()
    url = f"/ingest/generic/{door.key}/"
    assert {post(url, GENERIC).status_code for _ in range(5)} == {200}


def test_events_v2_is_throttled_like_pagerduty(doors, pinned_clock):
    door = doors["events_v2"]
    door.integration.rate_limit_per_minute = 1
    door.integration.save()
    pinned_clock(door.integration)
    body = fixture("pagerduty-events-v2-trigger.json")
    body["routing_key"] = door.key
    assert post("/ingest/pagerduty/v2/enqueue", body).status_code == 202
    response = post("/ingest/pagerduty/v2/enqueue", body)
    assert response.status_code == 429
    assert response["Retry-After"] == "50"
    assert response.json()["status"] == "throttle event"


def test_the_key_is_never_logged(doors, caplog):
    key = doors["generic"].key
    revoked = doors["grafana"]
    revoked.integration.revoked_at = timezone.now()
    revoked.integration.save()
    with caplog.at_level(logging.DEBUG):
        Client().get(f"/nowhere/{key}/")  # Django logs the path of a 404 elsewhere…
        assert key in caplog.text
        caplog.clear()
        post(f"/ingest/generic/{key}/", GENERIC)
        post(f"/ingest/generic/{key}/", raw="{")
        Client().get(f"/ingest/generic/{key}/")
        post(f"/ingest/grafana/{revoked.key}/", fixture("grafana-webhook.json"))
        post("/ingest/generic/", GENERIC, **bearer(revoked.key))
    assert key not in caplog.text  # …but not on the ingest routes
    assert revoked.key not in caplog.text


def test_outcomes_are_counted_for_metrics(doors):
    ingest_stats.reset()
    url = f"/ingest/generic/{doors['generic'].key}/"
    post(url, GENERIC)
    post(url, GENERIC)
    post(url, raw="nope")
    post("/ingest/generic/", GENERIC, **bearer("0" * 32))
    stats = ingest_stats.snapshot()
    assert stats["counts"] == {
        ("generic", "created"): 1,
        ("generic", "resent"): 1,
        ("generic", "invalid"): 1,
        ("generic", "not_found"): 1,
    }
    assert stats["latency"]["generic"]["count"] == 4
    assert stats["latency"]["generic"]["buckets"][-1] == (float("inf"), 4)
