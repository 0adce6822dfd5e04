"""Benchmark the live relay: events committed by one process, fanned out to many WebSockets.

For each mode it starts ``manage.py web`` (WEB_PROCESSES daphne processes sharing one port) on a
scratch database (SQLite by default; set DATABASE_URL to use PostgreSQL), opens SUBSCRIBERS
sockets for one team from CLIENT_PROCESSES client processes, commits EVENTS events (BURST per
transaction, PAUSE seconds apart) from this process and measures, for every delivery, the time
from the commit to the socket receiving it. Modes:

- ``embedded``: no Redis; each web process polls the event log (TOCSIN_LIVE_POLL_INTERVAL);
- ``redis`` (when REDIS_URL is set): the commit is announced by Redis pub/sub.

Ends with one JSON line: p50/p95/p99/max per mode.

    python bench/live_fanout.py
    REDIS_URL=redis://127.0.0.1:6379/0 SUBSCRIBERS=1000 python bench/live_fanout.py
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import statistics
import sys
import time

import psutil

SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", "1000"))
EVENTS = int(os.environ.get("EVENTS", "40"))
BURST = int(os.environ.get("BURST", "1"))
PAUSE = float(os.environ.get("PAUSE", "0.5"))
WEB_PROCESSES = int(os.environ.get("WEB_PROCESSES", "2"))
CLIENT_PROCESSES = max(1, min(SUBSCRIBERS, int(os.environ.get("CLIENT_PROCESSES", "4"))))
REDIS_URL = os.environ.get("REDIS_URL", "")
EVENT_ID = re.compile(r'"event": \{"id": (\d+)')
# Our own channel names, so a bench never hears (or disturbs) another Tocsin on the same Redis.
os.environ.setdefault("TOCSIN_REDIS_PREFIX", f"bench-live-{os.getpid()}")

from _scratch import (  # noqa: E402  (first: Django on a scratch database)
    free_port,
    fresh_database,
    start_process,
    stop_process,
    wait_until_ok,
)

# isort: split
from importlib import import_module  # noqa: E402

from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.db import connections, transaction  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from tocsin.events import record  # noqa: E402
from tocsin.live.publish import flush  # noqa: E402
from tocsin.models import Event, Membership, Role, Team  # noqa: E402


def prepare() -> tuple[Team, list[str]]:
    """A team with SUBSCRIBERS viewers, each with a signed-in session (written directly)."""
    fresh_database()
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    User = get_user_model()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    users = User.objects.bulk_create(
        User(username=f"bench-{team.pk}-{i}", password="!") for i in range(SUBSCRIBERS)
    )
    Membership.objects.bulk_create(Membership(team=team, user=u, role=Role.VIEWER) for u in users)
    cookies = []
    with transaction.atomic():
        for user in User.objects.filter(memberships__team=team):
            session = store()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.save()
            cookies.append(session.session_key)
    return team, cookies


# --- client processes -------------------------------------------------------------------------


async def follow(url: str, origin: str, cookie: str, after: int, state: dict) -> None:
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}", "Origin": origin}
    async with state["opening"]:  # browsers come and go, they don't all knock at once
        ws = await connect(url, additional_headers=headers, max_queue=None, compression=None)
        await ws.send(json.dumps({"action": "subscribe", "after": after}))
    async with ws:
        state["connected"] += 1
        warm = False
        measured = 0
        async for raw in ws:
            arrived = time.time()
            # Cheaper than parsing JSON 1,000 times an event: the clients share the cores.
            if '"bench": "measure"' in raw:
                state["arrivals"].append((int(EVENT_ID.search(raw)[1]), arrived))
                measured += 1
                if measured == EVENTS:
                    return
            elif not warm and '"bench": "warm"' in raw:
                warm = True
                state["warm"] += 1


async def run_clients(sockets: list[tuple[str, str, str]], after: int, pipe) -> None:
    state = {"connected": 0, "warm": 0, "arrivals": [], "opening": asyncio.Semaphore(4)}
    tasks = [
        asyncio.create_task(follow(url, origin, cookie, after, state))
        for url, origin, cookie in sockets
    ]
    for what in ("connected", "warm"):
        while state[what] < len(sockets):
            done = [t for t in tasks if t.done() and t.exception()]
            if done:
                raise done[0].exception()
            await asyncio.sleep(0.05)
        pipe.send(what)
    await asyncio.wait(tasks, timeout=EVENTS * PAUSE + 60)
    pipe.send(state["arrivals"])


def client_process(sockets: list[tuple[str, str, str]], after: int, pipe) -> None:
    asyncio.run(run_clients(sockets, after, pipe))


# --- one mode ---------------------------------------------------------------------------------


def commit(team: Team, mark: str, n: int, committed: dict[int, float]) -> None:
    stamp: list[float] = []
    with transaction.atomic():
        # Registered before the events' own on-commit work (the notice): stamps the commit.
        transaction.on_commit(lambda: stamp.append(time.time()))
        ids = [
            record("team.test", team=team, payload={"requested_at": "bench", "bench": mark}).pk
            for _ in range(n)
        ]
    committed.update(dict.fromkeys(ids, stamp[0]))


def wait_for_all(pipes: list, what: str, timeout: float, nudge=None) -> None:
    deadline = time.monotonic() + timeout
    pending = list(pipes)
    last_nudge = 0.0
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} client processes never got {what!r}")
        if nudge is not None and time.monotonic() - last_nudge > 2:
            nudge()
            last_nudge = time.monotonic()
        for pipe in list(pending):
            if pipe.poll(0.05):
                got = pipe.recv()
                if got != what:
                    raise RuntimeError(f"client process said {got!r}, expected {what!r}")
                pending.remove(pipe)


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the web server and its child processes."""
    parent = psutil.Process(pid)
    total = 0.0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(mode: str, team: Team, cookies: list[str]) -> dict:
    port = free_port()
    env = {"REDIS_URL": REDIS_URL if mode == "redis" else ""}
    server = start_process(
        f"web-{mode}",
        [
            sys.executable,
            "manage.py",
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--processes",
            str(WEB_PROCESSES),
        ],
        **env,
    )
    clients = []
    try:
        wait_until_ok(f"http://127.0.0.1:{port}/health/live", server, f"web-{mode}")
        origin = f"http://127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/ws/live/?format=json"
        after = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        connections.close_all()  # the client processes are forked: they must not share it
        fork = multiprocessing.get_context("fork")
        pipes = []
        for i in range(CLIENT_PROCESSES):
            ours, theirs = fork.Pipe()
            sockets = [(url, origin, cookie) for cookie in cookies[i::CLIENT_PROCESSES]]
            process = fork.Process(target=client_process, args=(sockets, after, theirs))
            process.start()
            clients.append(process)
            pipes.append(ours)
        wait_for_all(pipes, "connected", 600)
        committed: dict[int, float] = {}
        # Every socket subscribed and every web process's relay running: a warm-up event seen.
        wait_for_all(pipes, "warm", 60, nudge=lambda: commit(team, "warm", 1, {}))
        time.sleep(0.5)
        cpu_before = server_cpu_seconds(server.pid)
        written = 0
        while written < EVENTS:
            n = min(BURST, EVENTS - written)
            commit(team, "measure", n, committed)
            written += n
            time.sleep(PAUSE)
        arrivals = []
        for pipe in pipes:
            if pipe.poll(EVENTS * PAUSE + 90):
                arrivals.extend(pipe.recv())
        cpu_seconds = server_cpu_seconds(server.pid) - cpu_before
    finally:
        for process in clients:
            process.kill()
        stop_process(server)
    latencies = sorted((arrived - committed[event_id]) * 1000 for event_id, arrived in arrivals)
    figures = {"deliveries": len(latencies), "expected": SUBSCRIBERS * EVENTS}
    # The web processes' CPU per delivery: what the relay costs, however busy the machine is.
    figures["server_cpu_us_per_delivery"] = round(cpu_seconds * 1e6 / max(1, len(latencies)), 1)
    if latencies:
        figures |= {
            "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1),
            "max_ms": round(latencies[-1], 1),
        }
        # The first socket to get each event: how fast the relay hears of a commit, before
        # the fan-out to the rest (which costs server_cpu_us_per_delivery per socket).
        first: dict[int, float] = {}
        for event_id, arrived in arrivals:
            first[event_id] = min(first.get(event_id, arrived), arrived)
        firsts = sorted((arrived - committed[i]) * 1000 for i, arrived in first.items())
        figures["first_socket_p50_ms"] = round(statistics.median(firsts), 1)
        figures["first_socket_p95_ms"] = round(firsts[max(0, int(len(firsts) * 0.95) - 1)], 1)
    if mode == "embedded":
        figures["poll_interval_s"] = settings.TOCSIN_LIVE_POLL_INTERVAL
    return figures


def main() -> None:
    team, cookies = prepare()
    modes = ["embedded", "redis"] if REDIS_URL else ["embedded"]
    results = {mode: measure(mode, team, cookies) for mode in modes}
    flush(5)
    print(
        json.dumps(
            {
                "bench": "live_fanout",
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                "subscribers": SUBSCRIBERS,
                "events": EVENTS,
                "burst": BURST,
                "pause_s": PAUSE,
                "web_processes": WEB_PROCESSES,
                "client_processes": CLIENT_PROCESSES,
                "deliveries": sum(r["deliveries"] for r in results.values()),
                **results,
            }
        )
    )


if __name__ == "__main__":
    main()
