"""Benchmark alert ingest side by side with the real Prometheus Alertmanager.

Starts Tocsin's real web server (``manage.py web``, with ``--processes`` when it has it) on a
scratch database (SQLite by default; set DATABASE_URL to measure PostgreSQL) and Alertmanager
0.25 (Debian's ``prometheus-alertmanager``) with a throwaway config and storage folder, each on a
free port. Both get the same load from ``wrk`` (CONNECTIONS connections, bench/alerts_v2.lua):
Alertmanager's ``POST /api/v2/alerts`` body, which Tocsin's Prometheus endpoint accepts, in
interleaved rounds (Tocsin, Alertmanager, Tocsin, …) of ROUND_SECONDS each; every figure is the
median over ROUNDS rounds:

- new alerts in batches of BATCH_SIZE (alerts/s): every alert has labels never sent before;
- re-sends in batches of BATCH_SIZE (alerts/s): RESEND_BATCHES fixed batches sent once beforehand,
  posted again and again, as Prometheus re-sends firing alerts every evaluation;
- new alerts one per request (requests/s, p50 and p99 latency).

Only 2xx answers count; non-2xx answers, timeouts and socket errors are reported, and afterwards
the bench counts Tocsin's stored alerts, so a server that fails fast cannot look fast. Without
``wrk`` or Alertmanager the bench installs them with apt-get when it runs as root on Debian;
without Alertmanager it reports Tocsin's figures alone, ratios null, and says why. A table goes
to stderr; stdout gets one JSON line.

    python bench/ingest.py                      # ROUNDS=3 ROUND_SECONDS=10
    ROUNDS=1 ROUND_SECONDS=3 python bench/ingest.py            # a quick check, under a minute
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tocsin_bench python bench/ingest.py
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

ROUNDS = int(os.environ.get("ROUNDS", "3"))
ROUND_SECONDS = int(os.environ.get("ROUND_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "16"))
WRK_THREADS = int(os.environ.get("WRK_THREADS", "2"))
BATCH_SIZE = int(os.environ.get("BATCH_SIZE", "100"))
# Re-sends cycle over this many fixed batches (sent once first, CONNECTIONS at a time).
RESEND_BATCHES = int(os.environ.get("RESEND_BATCHES", "16"))
# WEB_PROCESSES: Tocsin's web processes (default: the server's own for the database).
# A request slower than this counts as a timeout, not as a latency (wrk's default is 2 s).
REQUEST_TIMEOUT = os.environ.get("REQUEST_TIMEOUT", "30s")
# WITH_ALERTMANAGER=0: Tocsin's figures alone (ratios null).

from _scratch import (  # noqa: E402  (first: Django on a scratch database)
    ROOT,
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
from django.conf import settings  # noqa: E402

from incidents.models import Incident  # noqa: E402
from monitoring.models import Alert, Integration, IntegrationKind, Service  # noqa: E402
from tocsin.models import Team  # noqa: E402

LUA = ROOT / "bench" / "alerts_v2.lua"
ALERTMANAGER = "prometheus-alertmanager"
# (figure, wrk mode, alerts per request)
FIGURES = [
    ("batch_new", "new", BATCH_SIZE),
    ("batch_resend", "resend", BATCH_SIZE),
    ("single_new", "new", 1),
]
ALERTMANAGER_CONFIG = """\
# Throwaway: alerts are grouped as a typical setup does and notified nowhere.
route:
  receiver: blackhole
  group_by: [alertname]
receivers:
  - name: blackhole
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ensure_installed(*commands: str) -> dict[str, str]:
    """``{command: why it is missing}`` for those still missing after trying apt-get (Debian's
    packages are named as the commands: prometheus-alertmanager, wrk)."""
    missing = [c for c in commands if shutil.which(c) is None]
    can_apt = shutil.which("apt-get") is not None and os.geteuid() == 0
    if missing and can_apt:
        say(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", *missing]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
    reason = "apt-get install failed" if can_apt else "not installed (apt-get needs root on Debian)"
    return {c: f"{c} {reason}" for c in commands if shutil.which(c) is None}


def prepare() -> tuple[Service, str]:
    fresh_database()
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    service = Service.objects.create(team=team, name="Bench API")
    integration = Integration(
        service=service, kind=IntegrationKind.PROMETHEUS, name="bench", rate_limit_per_minute=0
    )
    key = Integration.new_key()
    integration.set_key(key)
    integration.save()
    return service, key


def start_tocsin() -> tuple[subprocess.Popen, str, int | None]:
    port = free_port()
    command, processes = web_command(port)
    process = start_process("tocsin-web", command)
    wait_until_ok(f"http://127.0.0.1:{port}/health/live", process, "tocsin-web")
    return process, f"http://127.0.0.1:{port}", processes


def start_alertmanager() -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = SCRATCH / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    process = start_process(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={SCRATCH / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.level=warn",
        ],
    )
    wait_until_ok(f"http://127.0.0.1:{port}/-/ready", process, "alertmanager")
    return process, f"http://127.0.0.1:{port}"


def resend_batch(batch: int, starts_at: str, ends_at: str) -> list[dict]:
    """The same alerts bench/alerts_v2.lua re-sends as batch ``batch`` (same labels)."""
    return [
        {
            "labels": {
                "alertname": "BenchResend",
                "batch": str(batch),
                "i": str(i),
                "job": "node",
                "severity": "warning",
            },
            "annotations": {"summary": "Bench alert", "description": "Synthetic load from wrk"},
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up",
        }
        for i in range(BATCH_SIZE)
    ]


def prime(url: str, starts_at: str, ends_at: str) -> None:
    """Send every re-send batch once, so the re-send rounds are re-sends."""
    with httpx.Client(timeout=300) as http:

        def send(batch: int) -> None:
            response = http.post(url, json=resend_batch(batch, starts_at, ends_at))
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            list(pool.map(send, range(RESEND_BATCHES)))


def run_wrk(url: str, mode: str, size: int, run: str, starts_at: str, ends_at: str) -> dict:
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{ROUND_SECONDS}s",
        f"--timeout={REQUEST_TIMEOUT}",
        f"-s{LUA}",
        url,
        "--",
        mode,
        str(size),
        run,
        starts_at,
        ends_at,
        str(RESEND_BATCHES),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            result = json.loads(line.removeprefix("BENCH-JSON "))
            seconds = result["duration_us"] / 1e6
            result["alerts_per_s"] = result["ok"] * size / seconds
            result["requests_per_s"] = result["ok"] / seconds
            return result
    output = done.stdout[-2000:] + done.stderr[-2000:]
    raise RuntimeError(f"wrk failed (exit code {done.returncode}): {output}")


def alertmanager_alerts(url: str) -> int:
    """The alerts Alertmanager holds, from its own metric (listing them all would be slow)."""
    metrics = httpx.get(url.replace("/api/v2/alerts", "/metrics"), timeout=30).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("alertmanager_alerts{")
        )
    )


def median(rounds: list[dict], key: str, scale: float = 1.0) -> float:
    return round(statistics.median(r[key] for r in rounds) * scale, 1)


def summarize(figure: str, size: int, rounds: list[dict]) -> dict:
    rate = "requests_per_s" if size == 1 else "alerts_per_s"
    return {
        rate: median(rounds, rate),
        "p50_ms": median(rounds, "p50_us", 1e-3),
        "p99_ms": median(rounds, "p99_us", 1e-3),
        "ok": sum(r["ok"] for r in rounds),
        "non2xx": sum(r["non2xx"] for r in rounds),
        "timeouts": sum(r["timeouts"] for r in rounds),
        "socket_errors": sum(r["socket_errors"] for r in rounds),
        "error_sample": next((r["error_sample"] for r in rounds if r["error_sample"]), ""),
    }


def main() -> None:
    if os.environ.get("WITH_ALERTMANAGER", "1") == "0":
        missing = {**ensure_installed("wrk"), ALERTMANAGER: "WITH_ALERTMANAGER=0"}
    else:
        missing = ensure_installed("wrk", ALERTMANAGER)
    if "wrk" in missing:
        print(json.dumps({"bench": "ingest", "error": missing["wrk"]}))
        sys.exit(1)
    say(f"scratch folder (database, server logs): {SCRATCH}")
    service, key = prepare()
    now = datetime.now(UTC)
    starts_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Firing: Prometheus sends a moment in the future (and renews it); past it both resolve.
    ends_at = (now + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tocsin, tocsin_url, processes = start_tocsin()
    alertmanager = None
    targets = {"tocsin": f"{tocsin_url}/ingest/prometheus/{key}/api/v2/alerts"}
    servers = {"tocsin": tocsin}
    try:
        if ALERTMANAGER not in missing:
            alertmanager, am_url = start_alertmanager()
            targets["alertmanager"] = f"{am_url}/api/v2/alerts"
            servers["alertmanager"] = alertmanager
        for target, url in targets.items():
            prime(url, starts_at, ends_at)
            wait_until_idle(servers[target])
        results: dict[str, dict[str, list[dict]]] = {
            name: {target: [] for target in targets} for name, _, _ in FIGURES
        }
        for number in range(ROUNDS):
            for name, mode, size in FIGURES:
                for target, url in targets.items():  # interleaved: Tocsin, Alertmanager, …
                    run = f"{target}-{name}-{number}"
                    result = run_wrk(url, mode, size, run, starts_at, ends_at)
                    results[name][target].append(result)
                    # What wrk dropped at the round's end must not run into the next round.
                    settled = wait_until_idle(servers[target])
                    say(
                        f"round {number + 1}/{ROUNDS} {name:13} {target:12} "
                        f"{result['alerts_per_s']:9.1f} alerts/s  {result['ok']} ok, "
                        f"{result['non2xx']} non-2xx, {result['timeouts']} timeouts "
                        f"(idle {settled:.1f} s later)"
                    )
                    if result["ok"] == 0:
                        say("  no request finished within the round: raise ROUND_SECONDS")
        am_stored = alertmanager_alerts(targets["alertmanager"]) if alertmanager else None
    finally:
        stop_process(tocsin)
        if alertmanager is not None:
            stop_process(alertmanager)

    # Whatever was answered 2xx must be stored: the primed re-send batches plus every new alert.
    def answered_2xx(target: str) -> int:
        return RESEND_BATCHES * BATCH_SIZE + sum(
            r["ok"] * size
            for name, mode, size in FIGURES
            if mode == "new"
            for r in results[name][target]
        )

    expected = answered_2xx("tocsin")
    stored = Alert.objects.filter(service=service).count()
    line: dict = {
        "bench": "ingest",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "web_processes": processes,
        "connections": CONNECTIONS,
        "batch_size": BATCH_SIZE,
        "rounds": ROUNDS,
        "round_seconds": ROUND_SECONDS,
        "alertmanager": "alertmanager" in targets,
        "alertmanager_missing_reason": missing.get(ALERTMANAGER),
        "tocsin_alerts_answered_2xx": expected,
        "tocsin_alerts_stored": stored,
        "tocsin_all_stored": stored >= expected,
        "tocsin_incidents": Incident.objects.filter(service=service).count(),
        "alertmanager_alerts_answered_2xx": answered_2xx("alertmanager") if alertmanager else None,
        "alertmanager_alerts_stored": am_stored,
    }
    say(f"\n{'figure':14} {'Tocsin':>12} {'Alertmanager':>14} {'ratio':>8}   Tocsin p50/p99 ms")
    for name, _, size in FIGURES:
        ours = summarize(name, size, results[name]["tocsin"])
        theirs = summarize(name, size, results[name]["alertmanager"]) if alertmanager else None
        rate = "requests_per_s" if size == 1 else "alerts_per_s"
        ratio = round(ours[rate] / theirs[rate], 4) if theirs and theirs[rate] else None
        line[f"{name}_tocsin"] = ours
        line[f"{name}_alertmanager"] = theirs
        line[f"{name}_ratio"] = ratio
        say(
            f"{name:14} {ours[rate]:12.1f} {theirs[rate] if theirs else 'n/a':>14} "
            f"{ratio if ratio is not None else 'null':>8}   {ours['p50_ms']}/{ours['p99_ms']}"
            f"  ({ours['non2xx']} non-2xx, {ours['timeouts']} timeouts)"
        )
    if not line["tocsin_all_stored"]:
        say(f"Tocsin answered 2xx for {expected} alerts but stored {stored}")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
