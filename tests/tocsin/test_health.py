"""Health endpoints: liveness, readiness with the failing component named, per-component JSON."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from tests.live import start_web, wait_for
from tocsin.models import WorkerHeartbeat
from tocsin.tasks import worker_heartbeat


def test_live_answers_without_touching_dependencies(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_fails_naming_the_worker_when_none_reported(client, db):
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert list(body["failing"]) == ["worker"]
    assert "no worker" in body["failing"]["worker"]["error"]


def test_ready_passes_once_a_worker_heartbeat_is_fresh(client, db):
    worker_heartbeat()
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}


def test_a_stale_heartbeat_fails_readiness(client, db):
    worker_heartbeat()
    stale = timezone.now() - timedelta(seconds=settings.TOCSIN_WORKER_STALE_AFTER + 5)
    WorkerHeartbeat.objects.update(last_seen_at=stale)
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert "heartbeat" in response.json()["failing"]["worker"]["error"]


def test_health_lists_every_component_with_latency(client, db):
    worker_heartbeat()
    response = client.get("/health")
    assert response.status_code == 200
    components = response.json()["components"]
    expected = {"database", "migrations", "worker"} | ({"redis"} if settings.REDIS_URL else set())
    assert set(components) == expected
    for result in components.values():
        assert result["status"] == "ok"
        assert result["latency_ms"] >= 0
    assert components["worker"]["workers"] == 1


def test_health_shows_nothing_secret(client, db):
    worker_heartbeat()
    body = client.get("/health").content.decode()
    db = settings.DATABASES["default"]
    for secret in (
        settings.SECRET_KEY,
        db.get("PASSWORD") or "\0",
        db.get("HOST") or "\0",
        settings.REDIS_URL or "\0",
        str(db["NAME"]),
    ):
        assert secret not in body


def test_health_is_never_cached(client, db):
    response = client.get("/health/ready")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_health_refuses_writes(client, db):
    assert client.post("/health/ready").status_code == 405


@pytest.mark.live
def test_an_unmigrated_database_is_not_ready(tmp_path, live_log_dir):
    server = start_web(live_log_dir, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        response = httpx.get(f"{server.url}/health/ready", timeout=10)
    finally:
        server.proc.stop()
    assert response.status_code == 503
    failing = response.json()["failing"]
    assert "not applied" in failing["migrations"]["error"]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_redis_is_not_ready(live_log_dir):
    server = start_web(live_log_dir, REDIS_URL="redis://127.0.0.1:9/0")
    try:
        response = httpx.get(f"{server.url}/health", timeout=20)
    finally:
        server.proc.stop()
    assert response.status_code == 503
    assert response.json()["components"]["redis"]["status"] == "fail"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_makes_the_server_ready_within_seconds(web, worker):
    """The worker process writes its own heartbeat every few seconds, not through the queue.

    (The worker fixture may have started long ago and earlier tests flushed its row; its next
    beat writes it again. Start-up readiness is covered by test_run_command.)
    """

    def ready() -> bool:
        return httpx.get(f"{web.url}/health/ready", timeout=5).status_code == 200

    started = time.monotonic()
    wait_for(ready, 30, "/health/ready to answer 200", worker)
    assert time.monotonic() - started < 30
    body = json.loads(httpx.get(f"{web.url}/health", timeout=5).content)
    assert body["components"]["worker"]["status"] == "ok"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_behind_a_busy_queue_is_alive_and_a_stopped_one_is_gone_at_once(
    client, live_log_dir
):
    """Liveness is written by the worker process itself, not by a task in the same queue."""
    import signal

    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    from tests.live import start_worker

    # A queue of its own (the cluster's name is the Redis prefix): the session's shared worker,
    # when some test started it, must not take these sleeps and keep later tests waiting.
    queue = f"busy-{os.getpid()}"
    proc = start_worker(
        live_log_dir,
        name="busy-worker",
        TOCSIN_WORKERS="1",
        TOCSIN_SCHEDULER="0",
        TOCSIN_REDIS_PREFIX=queue,
    )
    try:
        # The queue is busy for minutes: one task runs, the rest wait behind it.
        for _ in range(10):
            async_task("time.sleep", 30, cluster=queue)
        # (The session's shared worker, when some test started it, beats too: look at ours.)
        ours = WorkerHeartbeat.objects.filter(worker__endswith=f":{proc.popen.pid}")
        wait_for(ours.exists, 60, "the worker's heartbeat", proc)
        beat = ours.get()
        assert client.get("/health/ready").status_code == 200
        # It keeps beating while the queue stays full.
        wait_for(
            lambda: ours.get().last_seen_at > beat.last_seen_at,
            30,
            "a second heartbeat",
            proc,
        )
        assert client.get("/health/ready").status_code == 200

        # A clean stop removes the row: no "alive" ghost for the stale time after a restart.
        proc.popen.send_signal(signal.SIGINT)  # to the worker only, as a supervisor does
        wait_for(lambda: not ours.exists(), 15, "the row to be removed")
        if not WorkerHeartbeat.objects.exists():
            response = client.get("/health/ready")
            assert response.status_code == 503
            assert "no worker" in response.json()["failing"]["worker"]["error"]
    finally:
        proc.stop(signal.SIGKILL)
        get_broker(queue).purge_queue()


@pytest.mark.parametrize("path", ["/health/", "/health/live/", "/health/ready/"])
def test_health_answers_with_a_trailing_slash_too(client, db, path):
    assert client.get(path).status_code in (200, 503)
    assert client.get(path.rstrip("/")).status_code == client.get(path).status_code


def test_favicon_is_served_for_pages_that_do_not_link_it(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and "img/tocsin" in response["Location"]
    admin = client.get("/admin/login/").content.decode()
    assert 'rel="icon" href="/static/img/tocsin.' in admin
