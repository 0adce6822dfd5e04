"""/metrics: the Prometheus text format, behind a bearer token, off without one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from monitoring.ingest import stats as ingest_stats
from monitoring.pipeline import AlertInput, raise_alert
from tocsin.models import WorkerHeartbeat

TOKEN = "s3cret-scrape-token"


@pytest.fixture(autouse=True)
def _fresh_stats():
    ingest_stats.reset()
    yield
    ingest_stats.reset()


def scrape(client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/metrics", **headers)


def families(response) -> dict:
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def value(family, **labels) -> float:
    names = (family.name, f"{family.name}_total")  # counters' samples carry _total
    [found] = [s.value for s in family.samples if s.labels == labels and s.name in names]
    return found


@override_settings(TOCSIN_METRICS_TOKEN="")
def test_it_does_not_exist_without_a_token(client, db):
    assert scrape(client).status_code == 404


@override_settings(TOCSIN_METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_it_refuses_a_missing_or_wrong_token(client, db, token):
    response = scrape(client, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"tocsin" not in response.content


@override_settings(TOCSIN_METRICS_TOKEN=TOKEN)
def test_it_parses_and_reports_what_tocsin_is_doing(client, service):
    raise_alert(service, AlertInput(labels={"a": "1"}, severity="critical"), source="rule")
    raise_alert(service, AlertInput(labels={"a": "2"}, severity="warning"), source="rule")
    ingest_stats.observe("alertmanager", "created", 0.003)
    ingest_stats.observe("alertmanager", "created", 0.2)
    ingest_stats.observe("alertmanager", "resent", 0.02)
    WorkerHeartbeat.objects.create(worker="w1", last_seen_at=timezone.now() - timedelta(seconds=20))

    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    got = families(response)

    received = got["tocsin_alerts_received"]
    assert received.type == "counter"
    assert value(received, source="alertmanager", result="created") == 2
    assert value(received, source="alertmanager", result="resent") == 1

    latency = got["tocsin_ingest_duration_seconds"]
    assert latency.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in latency.samples if s.name.endswith("_bucket")}
    assert (buckets["0.005"], buckets["0.025"], buckets["0.25"], buckets["+Inf"]) == (1, 2, 3, 3)
    [total] = [s.value for s in latency.samples if s.name.endswith("_sum")]
    assert total == pytest.approx(0.223)

    firing = got["tocsin_alerts_firing"]
    assert value(firing, severity="critical", suppressed="false") == 1
    assert value(firing, severity="warning", suppressed="false") == 1
    assert value(firing, severity="info", suppressed="false") == 0

    assert value(got["tocsin_events"]) >= 2
    assert value(got["tocsin_task_queue_depth"]) >= 0
    assert 19 <= value(got["tocsin_worker_heartbeat_age_seconds"]) < 120
    assert value(got["tocsin_workers_alive"]) == 1
    assert value(got["tocsin_live_subscribers"]) == 0
    assert value(got["tocsin_scrape_errors"]) == 0


@override_settings(TOCSIN_METRICS_TOKEN=TOKEN)
def test_a_failing_part_is_skipped_and_counted(client, db, monkeypatch):
    import monitoring.exposition as exposition

    def broken() -> int:
        raise ConnectionError("broker down")

    monkeypatch.setattr(exposition, "_queue_size", broken)
    got = families(scrape(client))
    assert "tocsin_task_queue_depth" not in got
    assert value(got["tocsin_scrape_errors"]) == 1
    assert "tocsin_alerts_firing" in got


@override_settings(TOCSIN_METRICS_TOKEN=TOKEN)
def test_it_is_get_only(client, db):
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405
