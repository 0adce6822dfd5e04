"""The live relay over real WebSocket connections to real daphne processes.

Events are written by other processes (the test process, or a django-q2 worker) and must reach
subscribed browsers quickly, be replayed after a reconnect, and never reach another team.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import httpx
import pytest
from django.db import transaction
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import declared_payload, team_test_event
from tests.live import start_web
from tocsin.events import record
from tocsin.models import Event
from tocsin.services import remove_member

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def write_event(team, kind="team.test", **payload):
    with transaction.atomic():
        return record(
            kind,
            team=team,
            subject=team,
            actor_label="test",
            payload=declared_payload(kind, **payload),
        )


@contextmanager
def open_socket(web, user, fmt="json"):
    with connect(
        f"{web.ws_url}/ws/live/?format={fmt}",
        additional_headers=web.ws_headers(user),
        open_timeout=10,
    ) as ws:
        yield ws


@contextmanager
def open_stream(web, user, after=0, fmt="json"):
    """A socket subscribed as a browser does: the first message names the last id seen."""
    with open_socket(web, user, fmt) as ws:
        ws.send(json.dumps({"action": "subscribe", "after": after}))
        yield ws


def next_message(ws, timeout=5.0):
    return json.loads(ws.recv(timeout=timeout))


def events_until(ws, event_id, timeout=5.0):
    """Collect event ids from the stream until ``event_id`` arrives."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = next_message(ws, timeout=max(0.01, deadline - time.monotonic()))
        if message["type"] == "event":
            seen.append(message["event"]["id"])
            if message["event"]["id"] == event_id:
                return seen
    raise AssertionError(f"event {event_id} did not arrive; saw {seen}")


def assert_silent(ws, seconds=1.0, ignore_below=0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            return
        if message["type"] == "event" and message["event"]["id"] > ignore_below:
            raise AssertionError(f"unexpected message {message}")


def test_event_written_by_another_process_arrives_within_a_second(web, crew):
    with open_stream(web, crew.viewer) as ws:
        time.sleep(0.3)  # let the subscription settle; timing starts at the write
        started = time.monotonic()
        event = write_event(crew.team)
        message = next_message(ws, timeout=2)
        elapsed = time.monotonic() - started
    assert message["type"] == "event"
    assert message["event"]["id"] == event.pk
    assert message["event"]["kind"] == "team.test"
    assert message["event"]["team"] == {"id": crew.team.pk, "slug": crew.team.slug}
    assert elapsed < 1.0, f"took {elapsed:.3f}s"


def test_event_from_a_worker_task_reaches_the_browser(web, worker, crew):
    """Web → task broker → separate worker process → event log → relay → WebSocket."""
    with open_stream(web, crew.responder) as ws:
        cookie = web.session_cookie(crew.responder)
        client = httpx.Client(base_url=web.url, cookies={"sessionid": cookie}, timeout=10)
        csrf = "x" * 32
        client.cookies.set("csrftoken", csrf)
        started = time.monotonic()
        response = client.post(
            f"/api/v1/teams/{crew.team.pk}/test-event/",
            headers={"X-CSRFToken": csrf, "Referer": web.url + "/"},
        )
        assert response.status_code == 202, response.text
        message = next_message(ws, timeout=20)
        elapsed = time.monotonic() - started
    assert message["type"] == "event"
    assert message["event"]["kind"] == "team.test"
    assert message["event"]["actor"]["label"].startswith("worker ")
    assert message["event"]["actor"]["id"] == crew.responder.pk
    # The worker polls its queue every 0.2 s; the whole trip stays well within seconds.
    assert elapsed < 10


def test_worker_event_arrives_within_a_second_of_commit(web, worker, crew):
    """Timing from the worker's commit (its created_at) to the browser receiving it."""
    from django_q.tasks import async_task

    with open_stream(web, crew.viewer) as ws:
        time.sleep(0.3)
        async_task("tocsin.tasks.emit_test_event", crew.team.pk, None, "now")
        message = next_message(ws, timeout=20)
        received = time.time()
    assert message["event"]["actor"]["label"].startswith("worker ")
    event = Event.objects.get(pk=message["event"]["id"])
    assert received - event.created_at.timestamp() < 1.0


def test_reconnect_with_last_seen_id_replays_what_was_missed(web, crew):
    with open_stream(web, crew.viewer) as ws:
        first = write_event(crew.team, n=1)
        assert events_until(ws, first.pk) == [first.pk]
    missed = [write_event(crew.team, n=i) for i in range(2, 5)]
    with open_stream(web, crew.viewer, after=first.pk) as ws:
        replayed = events_until(ws, missed[-1].pk)
        live = write_event(crew.team, n=5)
        after_replay = events_until(ws, live.pk)
    assert replayed == [e.pk for e in missed]
    assert after_replay == [live.pk]


def test_reconnect_on_another_web_process_resumes_too(web_servers, crew):
    first_web, second_web = web_servers
    with open_stream(first_web, crew.viewer) as ws:
        seen = write_event(crew.team)
        events_until(ws, seen.pk)
    missed = write_event(crew.team)
    with open_stream(second_web, crew.viewer, after=seen.pk) as ws:
        assert events_until(ws, missed.pk) == [missed.pk]


def test_every_web_process_delivers_to_its_own_subscribers(web_servers, crew):
    with (
        open_stream(web_servers[0], crew.viewer) as a,
        open_stream(web_servers[1], crew.manager) as b,
    ):
        time.sleep(0.3)
        event = write_event(crew.team)
        assert events_until(a, event.pk) == [event.pk]
        assert events_until(b, event.pk) == [event.pk]


def test_a_user_of_another_team_never_receives_it(web, crew):
    with open_stream(web, crew.outsider) as outsider_ws, open_stream(web, crew.viewer) as member_ws:
        time.sleep(0.3)
        secret = write_event(crew.team, secret=True)
        own = write_event(crew.other_team)
        # The member gets the team's event; the outsider gets only their own team's event.
        events_until(member_ws, secret.pk)
        assert events_until(outsider_ws, own.pk) == [own.pk]
        assert_silent(outsider_ws, 0.5)


def test_replay_never_includes_another_teams_events(web, crew):
    hidden = write_event(crew.team)
    own = write_event(crew.other_team)
    with open_stream(web, crew.outsider, after=hidden.pk - 1) as ws:
        assert events_until(ws, own.pk) == [own.pk]


def test_a_removed_member_stops_receiving_at_once(web, crew):
    with open_stream(web, crew.viewer) as ws:
        before = write_event(crew.team)
        events_until(ws, before.pk)
        membership = crew.team.memberships.get(user=crew.viewer)
        remove_member(membership, actor=crew.manager)
        time.sleep(0.6)  # the relay sees the removal event and re-checks the subscriber
        write_event(crew.team, after_removal=True)
        # The removal event itself may still arrive (it happened while they were a member).
        assert_silent(ws, 1.0, ignore_below=before.pk + 1)


def test_superuser_receives_every_team_and_team_less_events(web, crew):
    with open_stream(web, crew.admin) as ws:
        time.sleep(0.3)
        a = write_event(crew.team)
        b = write_event(crew.other_team)
        with transaction.atomic():
            c = record(
                "user.logged_in",
                team=None,
                subject=crew.viewer,
                payload=declared_payload("user.logged_in"),
            )
        seen = events_until(ws, c.pk)
    # Signing in for this socket wrote a sign-in event of its own; it may come first.
    assert [i for i in seen if i >= a.pk] == [a.pk, b.pk, c.pk]


def test_too_long_a_gap_asks_the_browser_to_reload(web, crew, settings):
    # The server's replay limit is 500 by default; exceed it.
    first = write_event(crew.team)
    with transaction.atomic():
        for i in range(501):
            record(
                "team.test",
                team=crew.team,
                subject=crew.team,
                payload=declared_payload("team.test", i=i),
            )
    with open_stream(web, crew.viewer, after=first.pk) as ws:
        message = next_message(ws)
    assert message["type"] == "reset"


def test_anonymous_handshake_is_refused(web):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{web.ws_url}/ws/live/", additional_headers=web.ws_headers(None), open_timeout=5)
    assert refused.value.response.status_code == 403


def test_foreign_origin_is_refused(web, crew):
    headers = web.ws_headers(crew.viewer) | {"Origin": "https://evil.example"}
    with pytest.raises(InvalidStatus):
        connect(f"{web.ws_url}/ws/live/", additional_headers=headers, open_timeout=5)


def test_asking_for_another_teams_stream_is_refused_with_a_message(web, crew):
    with open_socket(web, crew.viewer) as ws:
        ws.send(json.dumps({"action": "subscribe", "after": 0, "teams": [crew.other_team.pk]}))
        message = next_message(ws)
        assert message["type"] == "error"
        assert str(crew.other_team.pk) in message["message"]
        write_event(crew.other_team)
        assert_silent(ws, 0.8)


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps([1]),
        json.dumps({"action": "dance"}),
        json.dumps({"action": "subscribe", "after": -3}),
        json.dumps({"action": "subscribe", "after": 0, "teams": "all"}),
    ],
)
def test_bad_messages_get_an_error_and_subscribe_nothing(web, crew, message):
    with open_socket(web, crew.viewer) as ws:
        ws.send(message)
        reply = next_message(ws)
        assert reply["type"] == "error"
        write_event(crew.team)
        assert_silent(ws, 0.6)


def test_html_format_sends_htmx_out_of_band_fragments(web, crew):
    with open_stream(web, crew.viewer, fmt="html") as ws:
        time.sleep(0.3)
        event = write_event(crew.team)
        fragment = ws.recv(timeout=3)
    assert 'hx-swap-oob="afterbegin:#live-events"' in fragment
    assert f'data-event-id="{event.pk}"' in fragment


def test_stream_survives_many_events_in_order(web, crew):
    with open_stream(web, crew.viewer) as ws:
        time.sleep(0.3)
        with transaction.atomic():
            written = [team_test_event(crew.team).pk for _ in range(50)]
        assert events_until(ws, written[-1]) == written


def test_an_event_seen_before_reconnecting_is_not_sent_again(crew, live_log_dir):
    """The reconnecting client already has ``after``; the relay may not have polled it yet."""
    slow = start_web(live_log_dir, TOCSIN_LIVE_POLL_INTERVAL="2")
    try:
        with open_stream(slow, crew.manager) as keeps_relay_running:
            time.sleep(0.5)  # the relay has polled once; the next poll is ~2 s away
            seen = write_event(crew.team)
            with open_stream(slow, crew.viewer) as first_visit:
                assert events_until(first_visit, seen.pk) == [seen.pk]  # via replay
            with open_stream(slow, crew.viewer, after=seen.pk) as second_visit:
                time.sleep(0.3)  # subscribed, nothing to replay; both events come from the relay
                later = write_event(crew.team)
                assert events_until(second_visit, later.pk, timeout=6) == [later.pk]
            assert events_until(keeps_relay_running, later.pk, timeout=6) == [seen.pk, later.pk]
    finally:
        slow.proc.stop()


def test_an_event_that_commits_after_a_higher_one_still_arrives(web, crew):
    """PostgreSQL hands out ids at INSERT: id N may commit after N+1 did and after a page was
    drawn with ``after=N+1``. That page never saw N; the stream must still bring it."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: no id commits late")
    holding, release, late = threading.Event(), threading.Event(), {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                late["id"] = team_test_event(crew.team).pk
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert holding.wait(10)
        drawn = write_event(crew.team)  # committed first, with the higher id
        assert drawn.pk > late["id"]
        with open_stream(web, crew.viewer, after=drawn.pk) as ws:
            time.sleep(0.3)  # subscribed
            release.set()
            writer.join(10)
            assert events_until(ws, late["id"], timeout=6) == [late["id"]]
    finally:
        release.set()
        writer.join(10)
