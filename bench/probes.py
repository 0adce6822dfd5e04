"""Benchmark the probes app's hot paths; one section per path, each adding its figures.

Section ``heartbeats``: heartbeat pings per second over HTTP. Tocsin's real web server
(``manage.py web``, with ``--processes`` when it has it) runs on a scratch database (SQLite by
default; set DATABASE_URL to measure PostgreSQL) with HEARTBEATS heartbeats; CONNECTIONS
concurrent clients ping them round-robin by UUID (``GET /ping/<uuid>``, what a crontab's
``curl`` sends) for SECONDS seconds, with ``wrk`` when installed (the load generator costs
least there), else an asyncio httpx client. Only 2xx answers count; afterwards the bench counts
the stored pings:

- none lost: every ping answered 2xx is stored (``stored >= ok``);
- none invented: at most one per connection more (a request in flight when the load generator
  stopped is still served; with httpx every request is awaited, so stored must equal ok).

Section ``checks``: the probe scheduler with one real worker (``manage.py worker
--no-cluster``: the due-work loop that claims, runs and records slots, ``probes.checks.scheduler``)
against a local target, a plain asyncio protocol server in a process of its own (it answers
``200 ok`` on keep-alive connections and notes when each request arrived, so it is never the
bottleneck and the lag is measured where the run lands). CHECKS HTTP checks (default 5,000):

1. ceiling: a bare asyncio+httpx loop in this process sends CHECKS GETs to the same server at
   the worker's concurrency (``TOCSIN_PROBE_CONCURRENCY``), through one client and through as
   many clients as the worker pools connections in (``probes.kinds.http.POOLS``, which costs
   httpx less per request): GETs per minute, the better of the two is the ceiling;
2. throughput: every check due at once (interval an hour, so none comes back): checks per
   minute for the one worker, from the moment they are due until the last one is recorded;
   ``ratio`` is that over the ceiling (goal: at least 0.5);
3. lag: the checks' interval becomes CHECK_INTERVAL (30 s: 10,000 checks per minute at 5,000
   checks), their first slots spread evenly over one interval, and the worker runs them for
   CHECK_WINDOW seconds (two intervals). Lag is the request's arrival at the target minus its
   slot time (p50/p99/max). Nothing lost: every slot due in the window has exactly one result
   (results chained slot to slot without a hole or an *unknown* gap, none still due after the
   window) and the target saw exactly one request per result (none ran twice).

A summary goes to stderr; stdout gets one JSON line.

    python bench/probes.py                                  # both sections, full size
    HEARTBEATS=50 SECONDS=2 python bench/probes.py --sections heartbeats
    CHECKS=200 CHECK_INTERVAL=10 CHECK_WINDOW=10 python bench/probes.py --sections checks
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tocsin_bench python bench/probes.py
    python bench/probes.py --client httpx --connections 32
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from _scratch import (  # first: Django on a scratch database
    SCRATCH,
    free_port,
    fresh_database,
    start_process,
    stop_process,
    wait_until_idle,
    wait_until_ok,
    web_command,
)

# isort: split
import httpx
import psutil
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import Service
from probes import kinds
from probes.checks import scheduler
from probes.checks.models import Check, Result, ResultStatus, Slot
from probes.checks.services import RUN_SOON
from probes.heartbeats.models import Heartbeat, Ping
from probes.kinds import http as http_kind
from tocsin import wake
from tocsin.models import Team, WorkerHeartbeat

# wrk: each thread pings the heartbeats round-robin from its own offset and counts 2xx answers;
# done() prints one "BENCH-JSON {...}" line for this script to read.
WRK_SCRIPT = r"""
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  uuids = {}
  for line in io.lines(args[1]) do uuids[#uuids + 1] = line end
  sent = id * 7919
  ok = 0
  non2xx = 0
  first_error = ""
end

function request()
  sent = sent + 1
  return wrk.format("GET", "/ping/" .. uuids[(sent % #uuids) + 1])
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    if first_error == "" then first_error = status .. " " .. string.sub(body or "", 1, 200) end
  end
end

function done(summary, latency, requests)
  local total_ok, total_non2xx, error_sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_non2xx = total_non2xx + thread:get("non2xx")
    if error_sample == "" then error_sample = thread:get("first_error") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"ok":%d,"non2xx":%d,"socket_errors":%d,'
      .. '"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"error_sample":"%s"}\n',
    summary.requests, summary.duration, total_ok, total_non2xx,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    string.gsub(error_sample, '[^%w %.:,;_%-/()%[%]=]', "?")
  ))
end
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def options() -> argparse.Namespace:
    """Flags, each defaulting to an environment variable (how tests/tocsin/test_bench.py runs
    every bench at a tiny size)."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sections",
        default=env("SECTIONS", ",".join(SECTIONS)),
        help="comma-separated: " + ", ".join(SECTIONS),
    )
    parser.add_argument("--heartbeats", type=int, default=int(env("HEARTBEATS", "1000")))
    parser.add_argument("--seconds", type=float, default=float(env("SECONDS", "10")))
    parser.add_argument("--connections", type=int, default=int(env("CONNECTIONS", "16")))
    parser.add_argument("--wrk-threads", type=int, default=int(env("WRK_THREADS", "2")))
    parser.add_argument("--checks", type=int, default=int(env("CHECKS", "5000")))
    parser.add_argument(
        "--check-interval",
        type=int,
        default=int(env("CHECK_INTERVAL", "30")),
        help="seconds between a check's runs in the lag part (30: 10,000 a minute at 5,000)",
    )
    parser.add_argument(
        "--check-window",
        type=float,
        default=float(env("CHECK_WINDOW", "0")),
        help="seconds the lag part runs (default: two intervals)",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "httpx"],
        default=env("CLIENT", "auto"),
        help="the load generator (auto: wrk when installed)",
    )
    args = parser.parse_args()
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def start_web() -> tuple[Any, str, int | None]:
    port = free_port()
    command, processes = web_command(port)
    process = start_process("tocsin-web", command)
    wait_until_ok(f"http://127.0.0.1:{port}/health/live", process, "tocsin-web")
    return process, f"http://127.0.0.1:{port}", processes


# --- section: heartbeats ------------------------------------------------------------------------


def make_heartbeats(count: int) -> Service:
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Bench jobs")
    Heartbeat.objects.bulk_create(
        Heartbeat(service=service, name=f"job {n}", slug=f"job-{n}", period=3600, grace=3600)
        for n in range(count)
    )
    return service


def ping_with_wrk(base: str, uuid_file: str, args: argparse.Namespace) -> dict[str, Any]:
    script = SCRATCH / "heartbeat_pings.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        "wrk",
        f"-t{min(args.wrk_threads, args.connections)}",
        f"-c{args.connections}",
        f"-d{max(1, round(args.seconds))}s",
        "--timeout=30s",
        f"-s{script}",
        base,
        "--",
        uuid_file,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            result = json.loads(line.removeprefix("BENCH-JSON "))
            result["seconds"] = result.pop("duration_us") / 1e6
            return result
    raise RuntimeError(
        f"wrk failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
    )


def ping_with_httpx(base: str, uuids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """CONNECTIONS workers ping round-robin until SECONDS are up; every request is awaited."""

    async def load() -> dict[str, Any]:
        latencies: list[float] = []
        counts = {"ok": 0, "non2xx": 0, "socket_errors": 0, "timeouts": 0}
        errors: list[str] = []
        limits = httpx.Limits(max_connections=args.connections)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            started = time.monotonic()
            stop_at = started + args.seconds

            async def worker(offset: int) -> None:
                sent = offset * 7919
                while time.monotonic() < stop_at:
                    sent += 1
                    begun = time.monotonic()
                    try:
                        response = await client.get(f"/ping/{uuids[sent % len(uuids)]}")
                    except httpx.TimeoutException:
                        counts["timeouts"] += 1
                        continue
                    except httpx.HTTPError as exc:
                        counts["socket_errors"] += 1
                        errors.append(repr(exc)[:200])
                        continue
                    latencies.append(time.monotonic() - begun)
                    if 200 <= response.status_code < 300:
                        counts["ok"] += 1
                    else:
                        counts["non2xx"] += 1
                        errors.append(f"{response.status_code} {response.text[:200]}")

            await asyncio.gather(*(worker(n) for n in range(args.connections)))
            seconds = time.monotonic() - started
        latencies.sort()

        def percentile(p: float) -> int:
            if not latencies:
                return 0
            return int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6)

        return {
            "requests": len(latencies) + counts["timeouts"] + counts["socket_errors"],
            "seconds": seconds,
            **counts,
            "p50_us": percentile(50),
            "p99_us": percentile(99),
            "max_us": int(latencies[-1] * 1e6) if latencies else 0,
            "error_sample": errors[0] if errors else "",
        }

    return asyncio.run(load())


def heartbeats_section(args: argparse.Namespace, base: str, web: Any) -> dict[str, Any]:
    service = make_heartbeats(args.heartbeats)
    uuids = [
        str(u) for u in Heartbeat.objects.filter(service=service).values_list("uuid", flat=True)
    ]
    uuid_file = SCRATCH / "heartbeat_uuids.txt"
    uuid_file.write_text("\n".join(uuids) + "\n")
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "httpx"
    # Warm up: every web process opens its database connection and imports the ping path.
    with httpx.Client(base_url=base, timeout=30) as http:
        for code in uuids[: min(len(uuids), 20)]:
            http.get(f"/ping/{code}").raise_for_status()
    warm = Ping.objects.filter(heartbeat__service=service).count()
    say(f"heartbeats: {len(uuids)} heartbeats, {args.connections} connections, {client}")
    if client == "wrk":
        result = ping_with_wrk(base, str(uuid_file), args)
    else:
        result = ping_with_httpx(base, uuids, args)
    settled = wait_until_idle(web)  # requests the load generator dropped are still served
    stored = Ping.objects.filter(heartbeat__service=service).count() - warm
    in_flight = args.connections if client == "wrk" else 0
    pinged = Heartbeat.objects.filter(service=service, last_ping_at__isnull=False).count()
    figures = {
        "client": client,
        "heartbeats": len(uuids),
        "connections": args.connections,
        "seconds": round(result["seconds"], 2),
        "pings_per_s": round(result["ok"] / result["seconds"], 1) if result["seconds"] else 0.0,
        "p50_ms": round(result["p50_us"] / 1000, 1),
        "p99_ms": round(result["p99_us"] / 1000, 1),
        "max_ms": round(result["max_us"] / 1000, 1),
        "ok": result["ok"],
        "non2xx": result["non2xx"],
        "timeouts": result["timeouts"],
        "socket_errors": result["socket_errors"],
        "error_sample": result["error_sample"],
        "stored": stored,
        "lost": max(0, result["ok"] - stored),
        "none_lost": stored >= result["ok"],
        "none_invented": stored <= result["ok"] + in_flight,
        "heartbeats_pinged": pinged,
    }
    say(
        f"heartbeats: {figures['pings_per_s']:.1f} pings/s (p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms); {result['ok']} answered 2xx, {stored} stored, "
        f"{result['non2xx']} non-2xx, {result['timeouts']} timeouts (idle {settled:.1f} s later)"
    )
    return figures


# --- section: checks ----------------------------------------------------------------------------

# The target: a bare asyncio protocol (no framework) answering every GET with 200 on keep-alive
# connections; it notes each request's path and arrival time, and GET /__arrivals hands them
# over (and forgets them).
TARGET_SERVER = r"""
import asyncio, json, sys, time

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
arrivals = []


class Target(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        now = time.time()
        *requests, self.buffer = (self.buffer + data).split(b"\r\n\r\n")
        out = []
        for request in requests:
            path = request.split(b" ", 2)[1].decode()
            if path == "/__arrivals":
                body = json.dumps(arrivals).encode()
                arrivals.clear()
                out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                arrivals.append((path, now))
                out.append(OK)
        self.transport.write(b"".join(out))


async def main(port):
    server = await asyncio.get_running_loop().create_server(
        Target, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()

asyncio.run(main(int(sys.argv[1])))
"""
WORKER_COMMAND = [sys.executable, "manage.py", "worker", "--no-cluster"]


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p99 and the maximum, in milliseconds (values in seconds)."""
    ordered = sorted(values)

    def rank(share: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, math.ceil(len(ordered) * share) - 1)] * 1000, 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "max": rank(1.0)}


def arrivals(base: str) -> dict[str, list[float]]:
    """What the target saw since the last call: path -> arrival times, oldest first."""
    seen: dict[str, list[float]] = defaultdict(list)
    for path, at in httpx.get(f"{base}/__arrivals", timeout=60).json():
        seen[path].append(at)
    return seen


def ceiling(base: str, paths: list[str], concurrency: int, pools: int) -> dict[str, Any]:
    """A bare asyncio+httpx loop: every path once, ``concurrency`` requests at a time, through
    one client or, like the worker, ``pools`` clients (a path always to the same one)."""

    async def load() -> tuple[int, float]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        clients = [
            httpx.AsyncClient(base_url=base, limits=limits, timeout=30) for _ in range(pools)
        ]
        ok = 0
        todo = iter(paths)

        async def worker() -> None:
            nonlocal ok
            for path in todo:
                response = await clients[hash(path) % pools].get(path)
                ok += response.status_code == 200

        try:
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return ok, time.perf_counter() - started
        finally:
            for client in clients:
                await client.aclose()

    ok, seconds = asyncio.run(load())
    return {"ok": ok, "seconds": seconds, "per_min": ok / seconds * 60 if seconds else 0.0}


def make_checks(count: int, base: str) -> tuple[dict[int, str], list[Slot]]:
    """``count`` HTTP checks on the target (``/c/<n>`` each), none due yet; (pk -> path, slots)."""
    team = Team.objects.create(name=f"bench-checks-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Bench checks")
    config = kinds.get("http").validate({"url": f"{base}/c/0"})
    checks = Check.objects.bulk_create(
        Check(
            service=service,
            name=f"check {n}",
            kind="http",
            config={**config, "url": f"{base}/c/{n}"},
            interval=3600,
            timeout=10,
        )
        for n in range(count)
    )
    paths = {c.pk: c.config["url"].removeprefix(base) for c in checks}
    slots = Slot.objects.bulk_create(Slot(probe=c, next_run_at=None) for c in checks)
    return paths, slots


def start_worker() -> tuple[Any, psutil.Process]:
    worker = start_process("tocsin-worker", WORKER_COMMAND)
    deadline = time.monotonic() + 60
    while not WorkerHeartbeat.objects.filter(worker__endswith=f":{worker.pid}").exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            log = (SCRATCH / "tocsin-worker.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker did not start (exit code {worker.poll()}):\n{log}")
        time.sleep(0.1)
    return worker, psutil.Process(worker.pid)


def cpu_seconds(process: psutil.Process) -> float:
    return sum(process.cpu_times()[:2])


def throughput(slots: list[Slot], worker: psutil.Process) -> dict[str, Any]:
    """Every slot due now; how long until the worker has recorded them all."""
    pks = [slot.pk for slot in slots]
    cpu = cpu_seconds(worker)
    due = timezone.now()
    Slot.objects.filter(pk__in=pks).update(next_run_at=due)
    wake.send(RUN_SOON)
    started = time.perf_counter()
    deadline = started + max(120.0, len(pks) / 10)
    done = 0
    while done < len(pks) and time.perf_counter() < deadline:
        time.sleep(0.1)
        done = Result.objects.filter(slot_at=due).count()
    seconds = time.perf_counter() - started
    up = Result.objects.filter(slot_at=due, status=ResultStatus.UP).count()
    return {"ran": done, "up": up, "seconds": seconds, "cpu_s": cpu_seconds(worker) - cpu}


def spread(slots: list[Slot], interval: int) -> tuple[datetime, dict[int, datetime]]:
    """Each check's interval becomes ``interval``; first slots evenly over one interval from a
    moment after this commits. (the first slot time, check pk -> its first slot)"""
    lead = 2.0 + len(slots) / 2000
    first = timezone.now() + timedelta(seconds=lead)
    step = interval / max(1, len(slots))
    for n, slot in enumerate(slots):
        slot.next_run_at = first + timedelta(seconds=n * step)
    with transaction.atomic():
        Check.objects.filter(slots__in=slots).update(interval=interval)
        Slot.objects.bulk_update(slots, ["next_run_at"], batch_size=500)
    wake.send(RUN_SOON)
    return first, {slot.probe_id: slot.next_run_at for slot in slots}


def audit(
    firsts: dict[int, datetime],
    start: datetime,
    end: datetime,
    interval: int,
    seen: dict[str, list[float]],
    paths: dict[int, str],
) -> dict[str, Any]:
    """Every slot due in [start, end] has exactly one result; the lag at the target."""
    jitter = min(interval * scheduler.JITTER_SHARE, scheduler.MAX_JITTER)
    chains: dict[int, list[tuple[datetime, str, int]]] = defaultdict(list)
    rows = Result.objects.filter(probe_id__in=list(firsts), slot_at__gte=start)
    for probe, slot_at, status, slots in rows.values_list("probe_id", "slot_at", "status", "slots"):
        chains[probe].append((slot_at, status, slots))
    lost = unknown = failed = ran = twice = 0
    lags: list[float] = []
    for probe, first in firsts.items():
        chain = sorted(chains.get(probe, []))
        runs = [slot_at for slot_at, status, _ in chain if status != ResultStatus.UNKNOWN]
        unknown += sum(n for _, status, n in chain if status == ResultStatus.UNKNOWN)
        failed += sum(status == ResultStatus.DOWN for _, status, _ in chain)
        if first <= end and (not runs or runs[0] != first):
            lost += 1  # its first slot in the window never ran
        for before, after in itertools.pairwise(runs):
            if before < end:
                gap = (after - before).total_seconds()
                lost += max(0, round((gap - jitter) / interval) - 1)  # slots between, unrun
        hits = seen.get(paths[probe], [])
        twice += max(0, len(hits) - len(runs))
        lost += max(0, len(runs) - len(hits))  # a result without its request
        for slot_at, at in zip(runs, hits, strict=False):
            if slot_at <= end:
                ran += 1
                lags.append(at - slot_at.timestamp())
    # Due in the window but never claimed (or still claimed: a run not recorded).
    lost += Slot.objects.filter(probe_id__in=list(firsts), next_run_at__lte=end).count()
    lost += Slot.objects.filter(probe_id__in=list(firsts)).exclude(claimed_by="").count()
    lag = percentiles(lags)
    return {
        "runs_in_window": ran,
        "lag_p50_ms": lag["p50"],
        "lag_p99_ms": lag["p99"],
        "lag_max_ms": lag["max"],
        "lost": lost + unknown,
        "unknown_slots": unknown,
        "ran_twice": twice,
        "failed_runs": failed,
    }


def checks_section(args: argparse.Namespace) -> dict[str, Any]:
    count, interval = args.checks, args.check_interval
    window = args.check_window or 2 * interval
    concurrency = scheduler.concurrency()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    target = start_process("check-target", [sys.executable, "-c", TARGET_SERVER, str(port)])
    worker = None
    try:
        wait_until_ok(f"{base}/", target, "check-target")
        paths, slots = make_checks(count, base)
        say(f"checks: {count} HTTP checks, concurrency {concurrency}; the bare ceiling first")
        arrivals(base)
        bare = {
            pools: ceiling(base, list(paths.values()), concurrency, pools)
            for pools in sorted({1, http_kind.POOLS})
        }
        best = max(bare.values(), key=lambda run: run["per_min"])
        arrivals(base)
        worker, process = start_worker()
        say("checks: one worker, every check due at once")
        ran = throughput(slots, process)
        arrivals(base)
        say(f"checks: {count * 60 / interval:.0f} checks/min for {window:g} s (the lag)")
        start, firsts = spread(slots, interval)
        end = start + timedelta(seconds=window)
        settle = 3.0
        time.sleep(max(0.0, (end - timezone.now()).total_seconds() + settle))
        stop_process(worker)  # SIGTERM: the worker records its runs in flight, then exits
        seen = arrivals(base)
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(target)
    checked = audit(firsts, start, end, interval, seen, paths)
    worker_per_min = ran["ran"] / ran["seconds"] * 60
    ceiling_per_min = best["per_min"]
    figures = {
        "checks": count,
        "concurrency": concurrency,
        "target": "asyncio protocol server, own process",
        "ceiling_gets_per_min": round(ceiling_per_min),
        "ceiling_seconds": round(best["seconds"], 2),
        "ceiling_one_pool_gets_per_min": round(bare[1]["per_min"]),
        "ceiling_pools_gets_per_min": round(bare[http_kind.POOLS]["per_min"]),
        "http_pools": http_kind.POOLS,
        "worker_checks_per_min": round(worker_per_min),
        "worker_seconds": round(ran["seconds"], 2),
        "worker_cpu_s": round(ran["cpu_s"], 2),
        "worker_up": ran["up"],
        "ratio": round(worker_per_min / ceiling_per_min, 3) if ceiling_per_min else None,
        "ratio_one_pool": round(worker_per_min / bare[1]["per_min"], 3)
        if bare[1]["per_min"]
        else None,
        "interval_s": interval,
        "load_per_min": round(count * 60 / interval),
        "window_s": window,
        **checked,
        "none_lost": checked["lost"] == 0 and ran["ran"] == count,
        "none_invented": checked["ran_twice"] == 0,
    }
    say(
        f"checks: worker {figures['worker_checks_per_min']}/min "
        f"({ran['ran']} in {ran['seconds']:.1f} s, {ran['cpu_s']:.1f} s CPU), ceiling "
        f"{figures['ceiling_gets_per_min']}/min, ratio {figures['ratio']}; at "
        f"{figures['load_per_min']}/min lag p50 {checked['lag_p50_ms']} ms, p99 "
        f"{checked['lag_p99_ms']} ms; {checked['runs_in_window']} runs, {checked['lost']} lost, "
        f"{checked['ran_twice']} twice, {checked['failed_runs']} failed"
    )
    return figures


# A section: (needs the web server, function adding its figures).
SECTIONS: dict[str, tuple[bool, Callable[..., dict[str, Any]]]] = {
    "heartbeats": (True, heartbeats_section),
    "checks": (False, checks_section),
}


def main() -> None:
    args = options()
    chosen = args.sections.split(",")
    say(f"scratch folder (database, server logs): {SCRATCH}")
    fresh_database()
    line: dict[str, Any] = {
        "bench": "probes",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "web_processes": None,
    }
    web = base = None
    try:
        if any(SECTIONS[name][0] for name in chosen):
            web, base, line["web_processes"] = start_web()
        for name in chosen:
            needs_web, run = SECTIONS[name]
            line[name] = run(args, base, web) if needs_web else run(args)
    finally:
        if web is not None:
            stop_process(web)
    ok = all(
        line[name].get("none_lost", True) and line[name].get("none_invented", True)
        for name in chosen
    )
    line["ok"] = ok
    print(json.dumps(line))
    if not ok:
        say("something was lost (or stored or run more than once): see the figures")
        sys.exit(1)


if __name__ == "__main__":
    main()
