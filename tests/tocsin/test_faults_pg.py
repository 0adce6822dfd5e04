"""Faults don't show as delays: database connections cut and a worker killed mid-stream.

Real processes on PostgreSQL: a daphne web server and two workers; alerts stream in one per
request; three rounds of ``pg_terminate_backend`` cut every connection of those processes to the
database (web, workers, their LISTEN sessions), and one worker is killed with SIGKILL while it
pages. A real SMTP server counts the pages by idempotency key: every stored alert is paged
exactly once, none later than ``LATE_BOUND`` after it was due (a page is due when its alert is
answered: the first step has no delay).
"""

from __future__ import annotations

import signal
import time

import pytest
from django.db import connection

from incidents.models import Delivery, DeliveryStatus
from tests.live import Proc, database_client_ports, start_web, start_worker, wait_for
from tests.tocsin.test_faults_redis import (
    AlertStream,
    check_stream,
    inbox,
    paging,
    wait_until_working,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

__all__ = ["inbox", "paging"]  # fixtures shared with test_faults_redis

# The bound: a crash or a cut connection delays a page by seconds (one short lease),
# never by minutes.
LATE_BOUND = 10.0


def terminate_backends_of(*procs: Proc) -> int:
    """Cut every database connection of these processes (web, workers, LISTEN sessions); the
    rest of the test run (session-wide servers, this process) keeps its connections."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND client_port = ANY(%s)",
            [list(database_client_ports(*(proc.popen.pid for proc in procs)))],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (set DATABASE_URL to run this)")


def test_cut_connections_and_a_killed_worker_delay_no_page_and_send_none_twice(
    postgresql_only, paging, inbox, live_log_dir
):
    smtp, smtp_env = inbox
    smtp.slowness = 0.3
    web = start_web(live_log_dir, **smtp_env)
    doomed = start_worker(live_log_dir, name="faults-pg-worker-a", **smtp_env)
    survivor = start_worker(live_log_dir, name="faults-pg-worker-b", **smtp_env)
    try:
        wait_until_working(doomed, survivor)
        stream = AlertStream(f"{web.url}/ingest/alertmanager/{paging.key}/").start()
        time.sleep(3)
        assert terminate_backends_of(web.proc, doomed, survivor) > 0
        # Killed while it has a page in flight (the slow SMTP server makes that likely soon).
        in_flight = Delivery.objects.filter(
            status=DeliveryStatus.SENDING, claimed_by__contains=f":{doomed.popen.pid}:"
        )
        wait_for(in_flight.exists, 15, "worker A to be sending a page", doomed)
        stranded = list(in_flight.values_list("dedup_key", flat=True))
        doomed.stop(signal.SIGKILL)
        time.sleep(3)
        assert terminate_backends_of(web.proc, survivor) > 0
        time.sleep(3)
        assert terminate_backends_of(web.proc, survivor) > 0
        time.sleep(4)
        stream.stop()

        pages, arrived = check_stream(stream, paging, smtp, survivor)
        late, worst = {}, 0.0
        for sent in stream.sent:
            if sent.name in pages:
                delay = arrived[pages[sent.name]][0] - sent.answered_at
                worst = max(worst, delay)
                if delay > LATE_BOUND:
                    late[sent.name] = round(delay, 1)
        assert late == {}, f"pages later than {LATE_BOUND}s after they were due"
        accepted = sum(1 for s in stream.sent if 200 <= s.status < 300)
        assert accepted >= len(stream.sent) // 2, "most alerts should have been taken in"
        # What A had in flight arrived once, handed over before it died or resent by B.
        assert stranded and all(len(arrived[key]) == 1 for key in stranded)
        retried = Delivery.objects.filter(attempts__gt=1).count()
        settled = Delivery.objects.filter(response_excerpt__startswith="handed over").count()
        print(f"{len(stream.sent)} sent, {accepted} accepted, {len(pages)} paged;")
        print(f"{retried} pages attempted again, {settled} settled after a hand-over;")
        print(f"the latest page arrived {worst:.1f}s after it was due")
    finally:
        for proc in (survivor, doomed, web.proc):
            proc.stop(signal.SIGINT, timeout=20)
