"""PostgreSQL connections stay within the pool under sustained concurrent ingest (issue 9).

Under ASGI each request's synchronous code runs in a fresh thread. With persistent connections
(``CONN_MAX_AGE > 0``) every finished request left its connection open until its dead thread was
garbage-collected, so within seconds a busy server held more connections than PostgreSQL allows
and answered 500. Now each web process has one psycopg pool of at most ``TOCSIN_DB_POOL_MAX``
connections. This test runs the real web server (``manage.py web``, several processes) on the
test database, posts Alertmanager webhooks from many clients for a minute, and counts the
server's connections in ``pg_stat_activity`` all along.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection

from monitoring.models import Alert, Service
from monitoring.services import create_integration
from tests.live import database_client_ports, free_port, start, wait_until_serving
from tests.monitoring.ingest_support import fixture

# How long the clients post (seconds): long enough for a leak to reach max_connections.
DURATION = 60
CLIENTS = 16
WEB_PROCESSES = 2
POOL_MAX = 4  # fewer than CLIENTS / WEB_PROCESSES: requests must share the pooled connections
# How often pg_stat_activity is read (seconds).
SAMPLE_EVERY = 0.1
# Distinct alerts per client: after the first round every post is a re-send of an open alert.
ALERTS_PER_CLIENT = 20

pytestmark = [pytest.mark.live, pytest.mark.timeout(DURATION + 180)]


def requires_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "the connection pool is PostgreSQL's (pg_stat_activity counts its connections); "
            "runs when DATABASE_URL names a PostgreSQL database"
        )


def connect_to_test_database() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


class ConnectionCounter(threading.Thread):
    """Samples the server connections to the test database that the web processes hold (by the
    client ports of the web server's process tree: in a full run, other tests' session-wide
    servers and workers are connected to the same database)."""

    def __init__(self, web_pid: int, limit: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.web_pid = web_pid
        self.limit = limit
        self.stop = stop
        self.samples: list[int] = []
        self.database = connection.settings_dict["NAME"]

    def run(self) -> None:
        with connect_to_test_database() as db:
            while not self.stop.is_set():
                rows = db.execute(
                    "SELECT client_port FROM pg_stat_activity"
                    " WHERE datname = %s AND backend_type = 'client backend'",
                    [self.database],
                ).fetchall()
                web = database_client_ports(self.web_pid)
                count = sum(1 for (port,) in rows if port in web)
                self.samples.append(count)
                if count > self.limit:
                    self.stop.set()  # a leak: stop now rather than exhaust max_connections
                    return
                time.sleep(SAMPLE_EVERY)


def post_alerts(url: str, client_no: int, stop: threading.Event, statuses: Counter) -> None:
    body = fixture("alertmanager-webhook-v4.json")
    alert = body["alerts"][0]
    sent = 0
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            alert["labels"]["instance"] = f"client-{client_no}-{sent % ALERTS_PER_CLIENT}"
            alert["fingerprint"] = f"{client_no:04x}{sent % ALERTS_PER_CLIENT:012x}"
            try:
                status = client.post(url, json=body).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            statuses[status] += 1
            sent += 1


@pytest.mark.django_db(transaction=True)  # a real server on the test database
def test_sixteen_clients_for_a_minute_stay_within_the_pool(crew, tmp_path: Path):
    requires_postgresql()
    service = Service.objects.create(team=crew.team, name="Checkout API")
    _, key = create_integration(service, "alertmanager", rate_limit_per_minute=0)
    port = free_port()
    web = start(
        "web",
        ["manage.py", "web", "--port", str(port)],
        tmp_path,
        TOCSIN_WEB_PROCESSES=str(WEB_PROCESSES),
        TOCSIN_DB_POOL_MAX=str(POOL_MAX),
        # The shared CI machine may be slow; a request waiting for a pooled connection should
        # not time out before the counting is done.
        TOCSIN_DB_POOL_TIMEOUT="30",
    )
    limit = POOL_MAX * WEB_PROCESSES
    stop = threading.Event()
    statuses: Counter = Counter()
    try:
        wait_until_serving(web, port, timeout=60)
        counter = ConnectionCounter(web.popen.pid, limit, stop)
        counter.start()
        url = f"http://127.0.0.1:{port}/ingest/alertmanager/{key}/"
        clients = [
            threading.Thread(target=post_alerts, args=(url, n, stop, statuses), daemon=True)
            for n in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        stop.wait(DURATION)
        stop.set()
        for client in clients:
            client.join(90)
        counter.join(10)
    finally:
        stop.set()
        web.stop()

    assert counter.samples, "pg_stat_activity was never read"
    assert max(counter.samples) <= limit, (
        f"{max(counter.samples)} server connections from the web processes; the pools allow "
        f"{POOL_MAX} per process x {WEB_PROCESSES}. Statuses so far: {dict(statuses)}\n{web.log()}"
    )
    assert max(counter.samples) > 0, "the web processes were never seen connected"
    failed = {status: n for status, n in statuses.items() if not str(status).startswith("2")}
    assert not failed, f"{dict(statuses)}\n{web.log()}"
    assert sum(statuses.values()) >= CLIENTS * 10, dict(statuses)
    assert Alert.objects.filter(service=service).count() == CLIENTS * ALERTS_PER_CLIENT
    print(f"{sum(statuses.values())} requests, at most {max(counter.samples)} connections")


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_opens_its_own_pool_and_leaves_the_parents_alone():
    """django-q2's cluster forks from processes that used the database: a child must never
    take a connection out of the pool it inherited (its socket is the parent's)."""
    requires_postgresql()
    from django.db import connections

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [parent_backend] = cursor.fetchone()
    parent_pool = connection.pool
    connections.close_all()  # as the cluster does before it forks: back into the pool
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running pytest's teardown
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                [backend] = cursor.fetchone()
            fresh = connection.pool is not parent_pool
            connections.close_all()
            connection.close_pool()
            os.write(write_end, f"{fresh} {backend}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    reported = os.read(read_end, 100).decode().split()
    os.waitpid(pid, 0)

    assert reported[0] == "True", "the child used the pool it inherited"
    with connection.cursor() as cursor:  # the parent's pooled sessions still work
        cursor.execute("SELECT pg_backend_pid()")
        [backend] = cursor.fetchone()
    assert int(reported[1]) not in (parent_backend, backend)
