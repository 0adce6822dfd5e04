"""Pings a web process receives together are written together: one transaction, one locked read
of their heartbeats, one UPDATE for all of them, one INSERT of all the pings — and each request is
still answered with its own outcome, as if it had been alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import Service
from probes.heartbeats import services
from probes.heartbeats.models import Heartbeat, Ping, PingKind
from probes.heartbeats.services import PendingPing, PingData


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


def beats(service: Service, n: int) -> list[Heartbeat]:
    return [
        Heartbeat.objects.create(service=service, name=f"Job {i}", period=3600, grace=600)
        for i in range(n)
    ]


def pending(kind: str = PingKind.SUCCESS, at=None, **target) -> PendingPing:
    rid = target.pop("rid", None)
    return PendingPing(
        data=PingData(kind=kind, rid=rid, method="GET"),
        received_at=at or timezone.now(),
        **target,
    )


def statements(queries) -> list[str]:
    # An executemany is logged once, as "<n> times: <sql>".
    sqls = [q["sql"].split(" times: ", 1)[-1] for q in queries.captured_queries]
    words = [sql.split()[0].upper() for sql in sqls]
    return [w for w in words if w not in ("SAVEPOINT", "RELEASE")]


def test_a_batch_costs_one_read_one_update_and_one_insert(service):
    heartbeats = beats(service, 10)
    services.record_pings([pending(code=h.uuid) for h in heartbeats])  # first pings: now up

    with CaptureQueriesContext(connection) as ten_heartbeats:
        batch = [pending(code=h.uuid) for h in heartbeats]
        services.record_pings(batch)
    assert statements(ten_heartbeats) == ["SELECT", "UPDATE", "INSERT"]
    assert all(p.found and p.error is None for p in batch)
    for heartbeat in heartbeats:  # every row got its own state
        stored = Heartbeat.objects.get(pk=heartbeat.pk)
        assert stored.last_ping_at == batch[heartbeats.index(heartbeat)].received_at
        assert stored.status == "up" and stored.recent_outcomes == "ss"

    with CaptureQueriesContext(connection) as one_heartbeat:
        services.record_pings([pending(code=heartbeats[0].uuid) for _ in range(10)])
    assert statements(one_heartbeat) == ["SELECT", "UPDATE", "INSERT"]
    assert Ping.objects.filter(heartbeat=heartbeats[0]).count() == 12


def test_each_ping_of_a_batch_gets_its_own_answer(service):
    heartbeat = beats(service, 1)[0]
    key = services.ping_key_for(service).key
    heartbeat.slug = "backup"
    heartbeat.save()
    batch = [
        pending(code=heartbeat.uuid),
        pending(code=uuid.uuid4()),  # no such heartbeat
        pending(key=key, slug="backup"),  # the same heartbeat by its slug
        pending(key=key, slug="new-job", create=True),
        pending(key=key, slug="other"),  # unknown, not created
    ]
    services.record_pings(batch)

    assert [(p.found, p.created) for p in batch] == [
        (True, False),
        (False, False),
        (True, False),
        (True, True),
        (False, False),
    ]
    assert Ping.objects.filter(heartbeat=heartbeat).count() == 2  # one row, changed in one place
    assert Heartbeat.objects.filter(service=service, slug="new-job").exists()


def test_a_run_started_and_finished_within_one_batch_has_its_duration(service):
    heartbeat = beats(service, 1)[0]
    start = timezone.now()
    first, second = uuid.uuid4(), uuid.uuid4()
    # Two overlapping runs: the second start replaces the heartbeat's own "open run", so the
    # first run's finish finds its start among the batch's pings, not yet in the database.
    services.record_pings(
        [
            pending(PingKind.START, start, code=heartbeat.uuid, rid=first),
            pending(PingKind.START, start + timedelta(seconds=5), code=heartbeat.uuid, rid=second),
            pending(at=start + timedelta(seconds=30), code=heartbeat.uuid, rid=first),
        ]
    )
    finish = Ping.objects.get(heartbeat=heartbeat, kind=PingKind.SUCCESS)
    assert finish.duration == 30.0


def test_a_failing_ping_does_not_fail_the_pings_written_with_it(service, monkeypatch):
    good, bad = beats(service, 2)
    real_apply = services._apply_ping

    def apply(heartbeat, data, now, batch):
        if heartbeat.pk == bad.pk:
            raise RuntimeError("disk full")
        return real_apply(heartbeat, data, now, batch)

    monkeypatch.setattr(services, "_apply_ping", apply)
    batch = [pending(code=good.uuid), pending(code=bad.uuid), pending(code=good.uuid)]
    services.record_pings(batch)

    assert [p.error is None for p in batch] == [True, False, True]
    assert str(batch[1].error) == "disk full" and not batch[1].found
    assert Ping.objects.filter(heartbeat=good).count() == 2
    assert not Ping.objects.filter(heartbeat=bad).exists()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # a real web process on the test database
def test_concurrent_pings_to_a_web_process_are_each_answered_and_stored(service, tmp_path):
    from tests.live import start_web

    heartbeats = beats(service, 20)
    web = start_web(tmp_path)

    async def ping_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as http:

            async def ping(i: int) -> httpx.Response:
                heartbeat = heartbeats[i % len(heartbeats)]
                suffix = "/start" if i < len(heartbeats) else ""
                return await http.get(f"{web.url}/ping/{heartbeat.uuid}{suffix}")

            starts = await asyncio.gather(*(ping(i) for i in range(20)))
            finishes = await asyncio.gather(*(ping(i) for i in range(20, 80)))
            missing = await http.get(f"{web.url}/ping/{uuid.uuid4()}")
            bad = await http.get(f"{web.url}/ping/{heartbeats[0].uuid}/256")
            return [*starts, *finishes, missing, bad]

    try:
        answers = asyncio.run(ping_all())
    finally:
        web.proc.stop()
    assert [a.status_code for a in answers] == [200] * 80 + [404, 400]
    assert {a.text for a in answers[:80]} == {"OK"}
    assert answers[0].headers["Ping-Body-Limit"] == "100000"
    assert "no-cache" in answers[-1].headers["Cache-Control"]
    assert Ping.objects.count() == 80
    assert set(Heartbeat.objects.values_list("status", flat=True)) == {"up"}
    # Each run's first finish found its start (pinged before, possibly in another batch).
    timed = Ping.objects.filter(duration__isnull=False)
    assert sorted(timed.values_list("heartbeat_id", flat=True)) == sorted(h.pk for h in heartbeats)
