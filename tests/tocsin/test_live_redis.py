"""The live relay with Redis: commit notices by pub/sub instead of polling the event log.

Real daphne processes, real Redis, real writer processes. The web processes here run with a
five-minute safety read, so an event that arrives within seconds came by pub/sub; and they log
every SQL statement they run, so the tests can count their reads of the event log.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from tests.live import (
    ROOT,
    Proc,
    WebServer,
    free_port,
    process_env,
    start,
    wait_for,
    wait_until_serving,
)
from tests.tocsin.test_live_stream import assert_silent, events_until, open_stream, write_event
from tocsin.events import record
from tocsin.models import Event
from tocsin.services import remove_member

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL"),
]

# daphne, with every SQL statement of the process appended to $TOCSIN_TEST_QUERY_LOG.
QUERY_LOGGING_DAPHNE = """
import os
from django.db.backends.signals import connection_created

def log_query(execute, sql, params, many, context):
    with open(os.environ["TOCSIN_TEST_QUERY_LOG"], "a") as log:
        log.write(" ".join(sql.split()) + " -- " + repr(params) + "\\n")
    return execute(sql, params, many, context)

def install(sender, connection, **kwargs):
    if log_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(log_query)

connection_created.connect(install, weak=False)
from daphne.cli import CommandLineInterface
CommandLineInterface.entrypoint()
"""

# A worker-like writer: a separate, short-lived process that commits one event and exits.
WRITE_EVENT = """
import os
from django.db import transaction
from tocsin.events import record
team = int(os.environ["TOCSIN_TEST_TEAM"])
with transaction.atomic():
    event = record("team.test", team=team, payload={"requested_at": "elsewhere"})
print(event.pk, flush=True)
if os.environ.get("TOCSIN_TEST_STAY"):  # a long-lived process (a worker): wait for the publish
    from tocsin.live.publish import flush
    flush(60)
"""


class LoggedWebServer(WebServer):
    query_log: Path

    def event_log_reads(self) -> int:
        """SELECTs of the event log this process ran so far (relay reads and replays)."""
        if not self.query_log.exists():
            return 0
        lines = self.query_log.read_text().splitlines()
        return sum(1 for q in lines if q.startswith("SELECT") and 'FROM "tocsin_event"' in q)


def start_logged_web(log_dir: Path, **env: str) -> LoggedWebServer:
    port = free_port()
    query_log = log_dir / f"queries-{port}.log"
    proc: Proc = start(
        f"web-{port}",
        ["-c", QUERY_LOGGING_DAPHNE, "-b", "127.0.0.1", "-p", str(port), "tocsin.asgi:application"],
        log_dir,
        TOCSIN_TEST_QUERY_LOG=str(query_log),
        TOCSIN_LIVE_SAFETY_INTERVAL=env.pop("TOCSIN_LIVE_SAFETY_INTERVAL", "300"),
        **env,
    )
    wait_until_serving(proc, port)
    server = LoggedWebServer(proc, port)
    server.query_log = query_log
    return server


@pytest.fixture(scope="module")
def relays(django_db_setup, django_db_blocker, live_log_dir):
    """Two web processes that hear of commits only by pub/sub (safety read: every 5 minutes)."""
    servers = [start_logged_web(live_log_dir), start_logged_web(live_log_dir)]
    yield servers
    for server in servers:
        server.proc.stop()


def commit_elsewhere(team, **env: str) -> int:
    """Commit one event about ``team`` from a separate process, as a worker would."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", WRITE_EVENT],
        cwd=ROOT,
        env=process_env(TOCSIN_TEST_TEAM=str(team.pk), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def start_committing_elsewhere(team, **env: str) -> tuple[subprocess.Popen, int]:
    """Like ``commit_elsewhere``, but the process stays until its notice is published."""
    writer = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", WRITE_EVENT],
        cwd=ROOT,
        env=process_env(TOCSIN_TEST_TEAM=str(team.pk), TOCSIN_TEST_STAY="1", **env),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    return writer, int(writer.stdout.readline().split()[-1])


def start_redis(port: int) -> subprocess.Popen:
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: _answers(port), 10, "redis-server to answer")
    return redis


def _answers(port: int) -> bool:
    import redis

    try:
        return redis.Redis(port=port, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False


def latest_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


# A writer whose Redis is unreachable: it commits, but its notice never leaves the process.
NO_REDIS = {"REDIS_URL": "redis://127.0.0.1:9/0"}


def test_an_event_committed_by_another_process_reaches_sockets_on_every_web_process(relays, crew):
    first, second = relays
    after = latest_event_id()
    with (
        open_stream(first, crew.viewer, after=after) as a,
        open_stream(second, crew.manager, after=after) as b,
    ):
        time.sleep(0.3)
        event_id = commit_elsewhere(crew.team)
        # Well within the five-minute safety read: this came by pub/sub.
        assert events_until(a, event_id, timeout=5) == [event_id]
        assert events_until(b, event_id, timeout=5) == [event_id]


def test_an_idle_relay_reads_nothing_and_a_commit_costs_one_read_per_web_process(relays, crew):
    after = latest_event_id()
    with (
        open_stream(relays[0], crew.viewer, after=after) as a,
        open_stream(relays[0], crew.responder, after=after) as a2,
        open_stream(relays[1], crew.manager, after=after) as b,
    ):
        warm = write_event(crew.team)  # every socket subscribed, both relays running
        for ws in (a, a2, b):
            events_until(ws, warm.pk)
        time.sleep(0.5)  # notices of the sign-ins that opened these sockets may trail the warm-up
        before = [server.event_log_reads() for server in relays]
        time.sleep(3)  # polling every 0.2 s, as without Redis, would read ~15 times
        assert [server.event_log_reads() for server in relays] == before
        event = write_event(crew.team)
        for ws in (a, a2, b):
            assert events_until(ws, event.pk) == [event.pk]
        time.sleep(0.3)
        # One read per web process, however many of its sockets the event went to.
        reads = [server.event_log_reads() - n for server, n in zip(relays, before, strict=True)]
        assert reads == [1, 1]


def test_a_lost_notice_is_repaired_by_the_next_one(relays, crew):
    after = latest_event_id()
    with open_stream(relays[1], crew.viewer, after=after) as ws:
        time.sleep(0.3)
        unannounced = commit_elsewhere(crew.team, **NO_REDIS)
        assert_silent(ws, 0.5)  # nobody told the relay
        announced = write_event(crew.team)
        assert events_until(ws, announced.pk) == [unannounced, announced.pk]
        assert_silent(ws, 0.5)


def test_a_lost_notice_is_repaired_by_the_safety_read(crew, live_log_dir):
    server = start_logged_web(live_log_dir, TOCSIN_LIVE_SAFETY_INTERVAL="1")
    try:
        with open_stream(server, crew.viewer, after=latest_event_id()) as ws:
            time.sleep(0.3)
            unannounced = commit_elsewhere(crew.team, **NO_REDIS)
            assert events_until(ws, unannounced, timeout=5) == [unannounced]
    finally:
        server.proc.stop()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_events_committed_while_redis_is_down_arrive_when_it_is_back(crew, live_log_dir):
    """A Redis of this test's own, stopped and started again: nothing is lost, nothing waits
    for the safety read (five minutes here)."""
    port = free_port()
    own_redis = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    redis = start_redis(port)
    server = start_logged_web(live_log_dir, **own_redis)
    try:
        with open_stream(server, crew.viewer, after=latest_event_id()) as ws:
            time.sleep(0.3)
            before = commit_elsewhere(crew.team, **own_redis)
            assert events_until(ws, before) == [before]
            redis.kill()
            redis.wait()
            writer, during = start_committing_elsewhere(crew.team, **own_redis)
            time.sleep(1.5)  # the writer's publish fails and is retried; the relay hears nothing
            assert_silent(ws, 0.5)
            redis = start_redis(port)
            assert events_until(ws, during, timeout=15) == [during]
            assert writer.wait(30) == 0
    finally:
        server.proc.stop()
        redis.kill()
        redis.wait()


@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="SQLite commits one writer at a time, in id order",
)
def test_an_event_that_commits_after_a_later_one_is_still_delivered(relays, crew):
    """PostgreSQL hands out ids at insert: id N can commit after N+1 has been relayed."""
    written, release, slow = threading.Event(), threading.Event(), {}

    def commit_slowly() -> None:
        try:
            with transaction.atomic():
                slow["id"] = write_event(crew.team).pk
                written.set()
                release.wait(20)
        finally:
            connection.close()

    after = latest_event_id()
    thread = threading.Thread(target=commit_slowly)
    thread.start()
    try:
        assert written.wait(10)
        with open_stream(relays[0], crew.viewer, after=after) as ws:
            time.sleep(0.3)
            fast = write_event(crew.team)
            assert events_until(ws, fast.pk) == [fast.pk]
            assert slow["id"] < fast.pk
            release.set()
            thread.join(20)
            assert events_until(ws, slow["id"]) == [slow["id"]]
    finally:
        release.set()
        thread.join(20)


def test_replay_after_reconnecting_delivers_missed_events_exactly_once(relays, crew):
    first, second = relays
    with open_stream(first, crew.viewer, after=latest_event_id()) as ws:
        seen = write_event(crew.team)
        events_until(ws, seen.pk)
    missed = [commit_elsewhere(crew.team), write_event(crew.team).pk]
    with open_stream(second, crew.viewer, after=seen.pk) as ws:
        # Committed while the server replays: it may come by replay and by notice; once only.
        racing = write_event(crew.team)
        received = events_until(ws, racing.pk)
        assert_silent(ws, 1.0)
    assert received == [*missed, racing.pk]


def test_a_socket_never_sees_another_teams_event(relays, crew):
    first, second = relays
    after = latest_event_id()
    with (
        open_stream(first, crew.viewer, after=after) as member,
        open_stream(first, crew.outsider, after=after) as outsider_here,
        open_stream(second, crew.outsider, after=after) as outsider_there,
    ):
        time.sleep(0.3)
        secret = commit_elsewhere(crew.team)
        own = write_event(crew.other_team)
        assert events_until(member, secret) == [secret]
        for ws in (outsider_here, outsider_there):
            assert events_until(ws, own.pk) == [own.pk]
            assert_silent(ws, 0.5)
        assert_silent(member, 0.5, ignore_below=secret)


def test_a_removed_member_stops_receiving_on_every_web_process(relays, crew):
    after = latest_event_id()
    with (
        open_stream(relays[0], crew.viewer, after=after) as a,
        open_stream(relays[1], crew.viewer, after=after) as b,
    ):
        before = write_event(crew.team)
        events_until(a, before.pk)
        events_until(b, before.pk)
        remove_member(crew.team.memberships.get(user=crew.viewer), actor=crew.manager)
        time.sleep(0.6)  # the relays hear of the removal and re-check the subscriber
        with transaction.atomic():
            record("team.test", team=crew.team, payload={"requested_at": "after removal"})
        for ws in (a, b):
            # The removal event itself may still arrive (it happened while they were a member).
            assert_silent(ws, 1.0, ignore_below=before.pk + 1)


def test_the_notice_names_the_teams_and_the_last_event(crew):
    """What a publish carries, heard on the layer directly: ids only, never event content."""
    from asgiref.sync import async_to_sync, sync_to_async
    from channels.layers import get_channel_layer

    from tocsin.live.publish import GROUP, LAYER

    layer = get_channel_layer(LAYER)

    def commit_two_teams() -> int:
        with transaction.atomic():
            record("team.test", team=crew.team, payload={"requested_at": "a"})
            last = record("team.test", team=crew.other_team, payload={"requested_at": "b"})
        return last.pk

    async def hear_one_commit() -> tuple[dict, int]:
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        try:
            last_id = await sync_to_async(commit_two_teams)()
            return await layer.receive(channel), last_id
        finally:
            await layer.group_discard(GROUP, channel)

    notice, last_id = async_to_sync(hear_one_commit)()
    assert notice["last"] == last_id
    assert sorted(notice["teams"]) == sorted([crew.team.pk, crew.other_team.pk])
    assert set(notice) == {"type", "teams", "last"}
