"""Benchmark alert ingest: new alerts versus re-sends, one per request versus batched.

Starts a real daphne server on a scratch database (SQLite by default; set DATABASE_URL to use
PostgreSQL), creates a service with an Alertmanager integration, then CLIENTS concurrent clients
post Alertmanager webhook bodies: SINGLES alerts one per request, then the same again (re-sends),
then BATCHES requests of BATCH_SIZE new alerts, then the same again. Re-sends are the common
case (Alertmanager re-sends every group each repeat_interval) and should be markedly cheaper:
two queries per batch and no event. Ends with one JSON line.

    python bench/ingest.py            # or: make bench
    CLIENTS=8 SINGLES=1000 BATCHES=100 BATCH_SIZE=100 python bench/ingest.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

CLIENTS = int(os.environ.get("CLIENTS", "4"))
SINGLES = int(os.environ.get("SINGLES", "400"))
BATCHES = int(os.environ.get("BATCHES", "40"))
BATCH_SIZE = int(os.environ.get("BATCH_SIZE", "50"))

from _scratch import ROOT, SCRATCH  # noqa: E402  (first: Django on a scratch database)

# isort: split
import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from monitoring.models import Alert, Integration, IntegrationKind, Service  # noqa: E402
from tocsin.models import Event, Team  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare() -> tuple[Service, str]:
    call_command("migrate", verbosity=0)
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Bench API")
    integration = Integration(
        service=service, kind=IntegrationKind.ALERTMANAGER, name="bench", rate_limit_per_minute=0
    )
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    return service, key


def webhook(alerts: list[dict]) -> dict:
    return {
        "receiver": "tocsin",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"alertname": "BenchAlert"},
        "commonLabels": {"alertname": "BenchAlert"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "version": "4",
        "groupKey": '{}:{alertname="BenchAlert"}',
        "truncatedAlerts": 0,
    }


def alert(run: str, n: int) -> dict:
    return {
        "status": "firing",
        "labels": {
            "alertname": "BenchAlert",
            "instance": f"host-{n}:9100",
            "job": "node",
            "severity": "warning",
            "run": run,
        },
        "annotations": {"summary": f"Bench alert {n}", "description": "Synthetic load"},
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up",
    }


async def phase(url: str, bodies: list[dict], alerts_per_body: int) -> dict:
    """Post every body, CLIENTS at a time; alerts/second and request latency percentiles."""
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(json.dumps(body).encode())
    latencies: list[float] = []

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            while not queue.empty():
                content = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post(
                    url, content=content, headers={"Content-Type": "application/json"}
                )
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"ingest answered {response.status_code}: {response.text} "
                        f"(server log: {SCRATCH / 'daphne.log'})"
                    )

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "alerts_per_s": round(len(bodies) * alerts_per_body / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1),
    }


def measure_pipeline(service: Service, n: int = 300) -> dict:
    """The pipeline alone, one alert per call: what a request costs beyond HTTP and ASGI."""
    from monitoring.pipeline import AlertInput, process

    items = [AlertInput(labels={"alertname": "PipelineBench", "n": str(i)}) for i in range(n)]
    timings = {}
    for phase_name in ("new", "resend"):
        started = time.perf_counter()
        for item in items:
            process(service, [item], source="bench")
        timings[phase_name] = (time.perf_counter() - started) / n * 1000
    return {
        "pipeline_new_ms": round(timings["new"], 3),
        "pipeline_resend_ms": round(timings["resend"], 3),
        "pipeline_resend_speedup": round(timings["new"] / timings["resend"], 1),
    }


async def main() -> None:
    service, key = await asyncio.to_thread(prepare)
    port = free_port()
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
        env=dict(os.environ),
        stdout=(SCRATCH / "daphne.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    figures: dict[str, dict] = {}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        url = f"http://127.0.0.1:{port}/ingest/alertmanager/{key}/"
        singles = [webhook([alert("single", n)]) for n in range(SINGLES)]
        batches = [
            webhook([alert("batch", b * BATCH_SIZE + n) for n in range(BATCH_SIZE)])
            for b in range(BATCHES)
        ]
        figures["single_new"] = await phase(url, singles, 1)
        figures["single_resend"] = await phase(url, singles, 1)
        figures["batch_new"] = await phase(url, batches, BATCH_SIZE)
        figures["batch_resend"] = await phase(url, batches, BATCH_SIZE)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    pipeline = await asyncio.to_thread(measure_pipeline, service)
    stored = await asyncio.to_thread(Alert.objects.filter(service=service).count)
    events = await asyncio.to_thread(Event.objects.filter(team=service.team_id).count)
    line = {
        "bench": "ingest",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "clients": CLIENTS,
        "batch_size": BATCH_SIZE,
        "alerts_stored": stored,
        "events": events,
    }
    for name, values in figures.items():
        for figure, value in values.items():
            line[f"{name}_{figure}"] = value
    line.update(pipeline)
    line["resend_speedup_single"] = round(
        figures["single_resend"]["alerts_per_s"] / figures["single_new"]["alerts_per_s"], 1
    )
    line["resend_speedup_batch"] = round(
        figures["batch_resend"]["alerts_per_s"] / figures["batch_new"]["alerts_per_s"], 1
    )
    print(json.dumps(line))


if __name__ == "__main__":
    asyncio.run(main())
