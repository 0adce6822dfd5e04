"""Benchmark the live relay: events committed by one process, fanned out to many WebSockets.

Starts a real daphne server on a scratch database (SQLite by default; set DATABASE_URL to use
PostgreSQL), opens SUBSCRIBERS sockets for one team, commits EVENTS events in bursts and
measures, for every delivery, the time from commit to arrival. Ends with one JSON line.

    python bench/live_fanout.py            # or: make bench
    SUBSCRIBERS=200 EVENTS=500 python bench/live_fanout.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", "50"))
EVENTS = int(os.environ.get("EVENTS", "200"))
BURST = int(os.environ.get("BURST", "10"))

from _scratch import ROOT  # noqa: E402  (first: Django on a scratch database)

# isort: split
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from tocsin.events import record  # noqa: E402
from tocsin.models import Event, Membership, Role, Team  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare() -> tuple[Team, list[str]]:
    call_command("migrate", verbosity=0)
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    cookies = []
    User = get_user_model()
    for i in range(SUBSCRIBERS):
        user = User.objects.create_user(username=f"bench-{team.pk}-{i}")
        Membership.objects.create(team=team, user=user, role=Role.VIEWER)
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    return team, cookies


async def subscriber(
    url: str,
    origin: str,
    cookie: str,
    arrivals: list,
    ready: asyncio.Event,
    done: asyncio.Event,
    expected: int,
) -> None:
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}", "Origin": origin}
    async with connect(url, additional_headers=headers, max_queue=None) as ws:
        # From the newest event on: nothing to replay, every tick arrives live. (An "after" past
        # the end would drop the ticks: ids up to "after" count as already seen.)
        after = await asyncio.to_thread(
            lambda: Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        )
        await ws.send(json.dumps({"action": "subscribe", "after": after}))
        ready.set()
        seen = 0
        while seen < expected:
            message = json.loads(await ws.recv())
            if message["type"] == "event" and message["event"]["kind"] == "team.test":
                arrivals.append((time.time(), message["event"]["payload"]["at"]))
                seen += 1
        done.set()


async def main() -> None:
    team, cookies = await asyncio.to_thread(prepare)
    port = free_port()
    env = dict(os.environ)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tocsin.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        origin = f"http://127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/ws/live/?format=json"
        arrivals: list[tuple[float, float]] = []
        readies = [asyncio.Event() for _ in cookies]
        dones = [asyncio.Event() for _ in cookies]
        tasks = [
            asyncio.create_task(subscriber(url, origin, c, arrivals, r, d, EVENTS))
            for c, r, d in zip(cookies, readies, dones, strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        await asyncio.sleep(0.5)

        def write_burst(n: int) -> None:
            with transaction.atomic():
                for _ in range(n):
                    now = time.time()
                    record("team.test", team=team, payload={"requested_at": str(now), "at": now})

        started = time.time()
        written = 0
        while written < EVENTS:
            n = min(BURST, EVENTS - written)
            await asyncio.to_thread(write_burst, n)
            written += n
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*(d.wait() for d in dones)), timeout=120)
        elapsed = time.time() - started
        for task in tasks:
            task.cancel()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)

    latencies = sorted((arrived - at) * 1000 for arrived, at in arrivals)
    print(
        json.dumps(
            {
                "bench": "live_fanout",
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                "subscribers": SUBSCRIBERS,
                "events": EVENTS,
                "deliveries": len(latencies),
                "deliveries_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": round(statistics.median(latencies), 1),
                "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
                "max_ms": round(latencies[-1], 1),
                "poll_interval_s": settings.TOCSIN_LIVE_POLL_INTERVAL,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
