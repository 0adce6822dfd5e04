"""Every benchmark still runs: each script, at a tiny size, ends with one JSON line of figures.

Timings are not judged here (they belong in the README, not in pass/fail); what is checked is
that the script works against today's code and reports what it says it measures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import require_service

ROOT = Path(__file__).resolve().parent.parent.parent

TINY = {
    # PostgreSQL beside pg_dump | zstd (no Django: its own scratch databases, dropped after).
    "backups.py": {
        "SIZE_MB": "5",
        "ROUNDS": "1",
        "KEEP_DB": "0",
        "DB_NAME": f"tocsin_bench_backups_test_{os.getpid()}",
    },
    "dashboard.py": {
        "TEAMS": "3",
        "ALERTS": "40",
        "INCIDENTS": "10",
        "CHECKS": "12",
        "REPEAT": "2",
    },
    # Alertmanager beside Tocsin (the bench installs it and wrk with apt-get when it may).
    "ingest.py": {
        "ROUNDS": "1",
        "ROUND_SECONDS": "2",
        "CONNECTIONS": "4",
        "BATCH_SIZE": "5",
        "RESEND_BATCHES": "2",
    },
    "list_pages.py": {"INCIDENTS": "60", "ALERTS": "100", "SERVICES": "3", "REPEAT": "2"},
    "live_fanout.py": {"SUBSCRIBERS": "3", "EVENTS": "10", "BURST": "5"},
    "probes.py": {
        "HEARTBEATS": "20",
        "SECONDS": "1",
        "CONNECTIONS": "2",
        "CHECKS": "20",
        "CHECK_INTERVAL": "10",
        "CHECK_WINDOW": "5",
    },
    "probe_pages.py": {
        "CHECKS": "40",
        "DAYS": "3",
        "HOURLY_DAYS": "1",
        "RESULTS": "5",
        "REPEAT": "2",
    },
    "rollups.py": {"CHECKS": "30", "INTERVAL": "30", "MINUTES": "70", "REPEAT": "2"},
    "slo.py": {"SLOS": "10", "DAYS": "5", "REPEAT": "1"},
    "storm.py": {
        "ALERTS": "20",
        "BATCH_SIZE": "10",
        "CONNECTIONS": "2",
        "WAIT_SECONDS": "90",
        "GRACE_SECONDS": "1",
    },
}
EXPECTED = {
    "backups.py": "backups",
    "dashboard.py": "dashboard",
    "ingest.py": "ingest",
    "list_pages.py": "list_pages",
    "live_fanout.py": "live_fanout",
    "probes.py": "probes",
    "probe_pages.py": "probe_pages",
    "rollups.py": "rollups",
    "slo.py": "slo",
    "storm.py": "storm",
}


def test_every_benchmark_is_covered():
    scripts = {p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(TINY)


@pytest.mark.live
@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_and_ends_with_a_json_line(script: str, tmp_path: Path):
    if script == "backups.py":
        require_service("PostgreSQL", "127.0.0.1", 5432)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TINY[script], TMPDIR=str(tmp_path))  # a scratch SQLite database of its own
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["bench"] == EXPECTED[script]
    if script == "live_fanout.py":
        assert figures["deliveries"] == 3 * 10  # every subscriber got every event
    if script == "probes.py":
        checks = figures["checks"]
        assert checks["worker_up"] == 20 and checks["runs_in_window"] > 0
        assert checks["none_lost"] and checks["none_invented"] and checks["failed_runs"] == 0
        assert figures["heartbeats"]["none_lost"]
    if script == "probe_pages.py":
        # Every check got its rollups and runs; the pages' queries do not grow with the checks.
        assert figures["rollups"] == 40 * 3 and figures["results"] == 40 * 5
        assert figures["probes_queries"] == figures["probes_down_queries"] > 0
    if script == "rollups.py":
        # Every check's minutes rolled, its hours merged, the past hour packed into day rows.
        assert figures["results"] == 30 * 70 * 2
        assert figures["minutes_rolled"] > 0 and figures["hours_rolled"] >= 30
        assert figures["minutes_packed"] >= 30 * 60 and figures["day_rows"] >= 30
    if script == "slo.py":
        # Every SLO evaluated, its finished days remembered, nothing firing on a quiet history.
        assert figures["slos"] == figures["evaluated"] == 10 and figures["firing"] == 0
        assert figures["days_remembered"] > 0 and figures["queries_per_slo"] > 0
    if script == "dashboard.py":
        # Every tile was measured; the page and the tiles answered with a fixed set of queries.
        assert figures["teams"] == 3 and figures["alerts"] == 40
        assert figures["dashboard_queries"] > 0 and figures["tile_alerts_queries"] > 0
    if script == "list_pages.py":
        assert figures["incidents"] == 60 and figures["incidents_open_queries"] > 0
    if script == "ingest.py":
        # Tocsin stored what it answered 2xx; nothing failed fast; Alertmanager ran beside it.
        assert figures["tocsin_all_stored"] and figures["tocsin_alerts_answered_2xx"] > 0
        for figure in ("batch_new", "batch_resend", "single_new"):
            assert figures[f"{figure}_tocsin"]["non2xx"] == 0
        if shutil.which("prometheus-alertmanager"):  # there, or installed by the bench
            assert figures["alertmanager"], figures["alertmanager_missing_reason"]
            stored = figures["alertmanager_alerts_stored"]
            assert stored >= figures["alertmanager_alerts_answered_2xx"] > 0
    if script == "backups.py":
        # Both sides dumped the same database; the restore was checked row count by row count.
        assert figures["dump_mb"] == figures["peer_dump_mb"] > 0 and figures["restore_verified"]
        assert figures["full_stored_mb"] > 0 and figures["peak_rss_mb_backup"] > 0
    if script == "storm.py":
        assert figures["all_stored"] and figures["alerts_stored"] == 20
        assert figures["incidents"] > 0 and figures["pages_exactly_once"], figures
