"""Benchmark the backup engine on PostgreSQL side by side with ``pg_dump | zstd``.

Builds (once; later runs reuse it) a scratch database ``tocsin_bench_backups`` of at least
SIZE_MB MB of monitoring-like data — events with text and jsonb payloads, alerts with labels and
annotations, a table of numbers — written server-side by ``INSERT … SELECT … FROM
generate_series`` in steps, and measures, every figure the median over ROUNDS rounds run
interleaved (peer, Tocsin, peer, Tocsin, …):

- full backup: the peer is ``pg_dump --format=custom --compress=0 | zstd -3 -T1 -q -o FILE``
  (the dump the engine takes, compressed at the engine's level, zstd 3; no fsync); Tocsin is
  ``PostgreSQLTarget.backup`` + ``Repository.commit`` into a new local repository each round
  (nothing to deduplicate; every chunk fsynced), unencrypted, plus one encrypted round; its
  clock runs inside the child from ``backup()`` to ``commit()`` (interpreter start not counted,
  the manifest's row counts are). Throughput for both is dump bytes (``pg_dump``'s
  uncompressed output, the run's ``bytes_read``) per second of wall clock; the ratio that
  counts is Tocsin's over the peer's (goal ≥ 0.90);
- incremental: a copy of the database (``CREATE DATABASE … TEMPLATE``) backed up into a copy of a
  full round's repository after 1 % of its rows changed — 1 % of ``events`` updated at random
  plus 1 % new ``alerts`` (``incremental_*``, the ratio of stored bytes to the full run's, goal
  ≤ 0.05) — and the same with the most recent 1 % of ``events`` updated instead
  (``incremental_recent_*``: how a monitoring database mostly changes);
- restore of the full snapshot into a new empty database, against ``zstd -dc FILE |
  pg_restore`` with the engine's flags (ratio of throughputs, dump bytes per second);
- peak memory: every Tocsin run is a child process (this script with a hidden argument) that
  reports its own ``ru_maxrss``; it stays bounded (IN_FLIGHT chunks), whatever SIZE_MB.

CHANGE_PERCENT (1) sets the share of rows changed, PEER_LEVEL (3) the peer's zstd level,
POSTGRES_DSN the server. On a small machine the figures move with its other load: run ROUNDS=3
or more when they matter. MB are 2**20 bytes. Scratch databases and folders are removed at the
end, even on failure; the source database stays for the next run unless KEEP_DB=0 (REBUILD=1
rebuilds it first). This bench imports no Django: the engine needs none. A table goes to
stderr; stdout gets one JSON line.

    python bench/backups.py                          # SIZE_MB=300 ROUNDS=3
    SIZE_MB=300 ROUNDS=2 python bench/backups.py
    SIZE_MB=100 DB_NAME=tocsin_bench_backups_100 python bench/backups.py   # memory stays flat
    POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432 python bench/backups.py
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZE_MB = int(os.environ.get("SIZE_MB", "300"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
KEEP_DB = os.environ.get("KEEP_DB", "1") != "0"
REBUILD = os.environ.get("REBUILD", "0") == "1"
DB_NAME = os.environ.get("DB_NAME", "tocsin_bench_backups")
# The server, without a database name (the bench names its databases).
POSTGRES_DSN = os.environ.get("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432")
PEER_LEVEL = int(os.environ.get("PEER_LEVEL", "3"))
# CHANGE_PERCENT of the rows change between the full and the incremental run.
CHANGE_PERCENT = float(os.environ.get("CHANGE_PERCENT", "1"))
FULL_GOAL = 0.90
INCREMENTAL_GOAL = 0.05
PASSPHRASE = "bench-backups-passphrase"
# Bump when the data recipe changes: a database built by another recipe is rebuilt.
RECIPE = 1
MB = 1024 * 1024

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/backups.py would shadow the ``backups`` package: the project root goes first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from backups.engine.records import WriteStats  # noqa: E402
from backups.engine.repository import Repository  # noqa: E402
from backups.engine.storage import LocalStorage  # noqa: E402
from backups.engine.targets import PostgreSQLTarget, compare  # noqa: E402

SCHEMA = """
CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE events (
    id bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    service_id integer NOT NULL,
    severity text NOT NULL,
    source text NOT NULL,
    message text NOT NULL,
    payload jsonb NOT NULL
);
CREATE INDEX events_service_time ON events (service_id, occurred_at);
CREATE TABLE alerts (
    id bigint PRIMARY KEY,
    fingerprint text NOT NULL,
    status text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz,
    labels jsonb NOT NULL,
    annotations jsonb NOT NULL
);
CREATE TABLE samples (
    id bigint PRIMARY KEY,
    check_id integer NOT NULL,
    at timestamptz NOT NULL,
    latency_ms real NOT NULL,
    ok boolean NOT NULL,
    value double precision NOT NULL
);
"""
# Rows [%(lo)s, %(hi)s]; every random() is drawn once per row in the inner SELECT.
EVENTS = """
INSERT INTO events (id, occurred_at, service_id, severity, source, message, payload)
SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '137 ms', svc, sev, src,
    format('%%s check of https://api-%%s.example.net/health from %%s returned %%s after %%s ms',
           src, svc, region, code, lat),
    jsonb_build_object(
        'host', format('web-%%s.%%s.example.net', host, region), 'region', region,
        'latency_ms', lat, 'status', code, 'request_id', md5(g::text || ':' || r),
        'user_agent', 'Tocsin-Probe/2.4', 'attempt', 1 + floor(r * 3)::int,
        'tags', jsonb_build_array('production', region, format('team-%%s', svc %% 17)))
FROM (
    SELECT g, random() AS r, 1 + floor(random() * 500)::int AS svc,
        floor(random() * 64)::int AS host,
        (ARRAY['eu-west-1', 'us-east-1', 'ap-south-1', 'eu-central-1'])
            [1 + floor(random() * 4)::int] AS region,
        (ARRAY['info', 'info', 'info', 'warning', 'warning', 'error', 'critical'])
            [1 + floor(random() * 7)::int] AS sev,
        (ARRAY['http', 'tcp', 'dns', 'tls', 'ping'])[1 + floor(random() * 5)::int] AS src,
        (ARRAY[200, 200, 200, 200, 201, 301, 404, 500, 502, 503])
            [1 + floor(random() * 10)::int] AS code,
        floor(random() * random() * 2000)::int AS lat
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
) AS x
"""
ALERTS = """
INSERT INTO alerts (id, fingerprint, status, starts_at, ends_at, labels, annotations)
SELECT g, substr(md5('alert:' || g), 1, 16),
    CASE WHEN r < 0.8 THEN 'resolved' ELSE 'firing' END,
    timestamptz '2024-01-01 00:00:00+00' + g * interval '2 s',
    CASE WHEN r < 0.8
        THEN timestamptz '2024-01-01 00:00:00+00' + g * interval '2 s' + r * interval '1 hour'
    END,
    jsonb_build_object(
        'alertname', name, 'instance', inst, 'job', job, 'severity',
        CASE WHEN r < 0.3 THEN 'critical' ELSE 'warning' END,
        'team', format('team-%%s', team), 'env', 'production'),
    jsonb_build_object(
        'summary', format('%%s on %%s', name, inst),
        'description', format('%%s on %%s (job %%s) has been above its threshold for more than '
                              '%%s minutes. Current value: %%s', name, inst, job, minutes, val),
        'runbook_url', format('https://runbooks.example.net/alerts/%%s', lower(name)))
FROM (
    SELECT g, random() AS r, floor(random() * 40)::int AS team,
        1 + floor(random() * 30)::int AS minutes, round((random() * 100)::numeric, 2) AS val,
        (ARRAY['HighLatency', 'InstanceDown', 'DiskFull', 'HighErrorRate', 'CertExpiring',
               'MemoryPressure', 'ReplicationLag'])[1 + floor(random() * 7)::int] AS name,
        format('10.%%s.%%s.%%s:9100', floor(random() * 4)::int, floor(random() * 256)::int,
               floor(random() * 256)::int) AS inst,
        (ARRAY['node', 'api', 'postgres', 'redis', 'nginx'])[1 + floor(random() * 5)::int] AS job
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
) AS x
"""
SAMPLES = """
INSERT INTO samples (id, check_id, at, latency_ms, ok, value)
SELECT g, 1 + floor(random() * 5000)::int,
    timestamptz '2024-01-01 00:00:00+00' + g * interval '10 ms',
    round((random() * random() * 800)::numeric, 1)::real, random() > 0.02,
    round((random() * 1000)::numeric, 3)::float8
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""
# Rows per unit of data, per table (about 4 MB of database a unit).
UNIT = {"events": (EVENTS, 10_000), "alerts": (ALERTS, 4_000), "samples": (SAMPLES, 20_000)}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def dsn(database: str) -> str:
    return make_conninfo(POSTGRES_DSN, dbname=database)


def admin() -> psycopg.Connection:
    return psycopg.connect(dsn("postgres"), autocommit=True)


def exists(database: str) -> bool:
    with admin() as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        return found.fetchone() is not None


def drop(database: str) -> None:
    with admin() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def create(database: str, template: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
    if template:
        # FILE_COPY: copies the files after a checkpoint, much faster than WAL_LOG for a copy.
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(database), sql.Identifier(template)
        )
    for attempt in range(10):
        try:
            with admin() as connection:
                connection.execute(query)
            return
        except psycopg.errors.ObjectInUse:  # autovacuum on the template: wait for it
            if attempt == 9:
                raise
            time.sleep(1)


def database_size(database: str) -> int:
    with admin() as connection:
        return connection.execute("SELECT pg_database_size(%s)", [database]).fetchone()[0]


def marker(database: str) -> dict[str, str]:
    try:
        with psycopg.connect(dsn(database)) as connection:
            return dict(connection.execute("SELECT key, value FROM bench_meta").fetchall())
    except psycopg.Error:
        return {}


# ----- the source database


def source_database() -> int:
    """The source database, built unless one of the right recipe and size is there; its size."""
    if not REBUILD and exists(DB_NAME):
        found = marker(DB_NAME)
        if found.get("recipe") == str(RECIPE) and found.get("size_mb") == str(SIZE_MB):
            size = database_size(DB_NAME)
            say(f"reusing database {DB_NAME}: {size / MB:.0f} MB (REBUILD=1 rebuilds it)")
            return size
        say(f"database {DB_NAME} is of another size or recipe: rebuilding it")
    drop(DB_NAME)
    create(DB_NAME)
    started = time.perf_counter()
    target = SIZE_MB * MB
    units_done = 0
    with psycopg.connect(dsn(DB_NAME), autocommit=True) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute(SCHEMA)
        connection.execute("SELECT setseed(0.42)")
        empty = database_size(DB_NAME)
        size = empty
        while size < target or not units_done:  # an empty database is ~7 MB already
            # Step by what a unit has cost so far, at most 10 units (a few seconds) at a time.
            # The first unit measures what one costs.
            per_unit = (size - empty) / units_done if units_done else target
            units = max(1, min(10, int((target - size) / per_unit + 0.999)))
            for query, rows in UNIT.values():
                lo = units_done * rows + 1
                connection.execute(query, {"lo": lo, "hi": lo + units * rows - 1})
            units_done += units
            size = database_size(DB_NAME)
            say(f"  building {DB_NAME}: {size / MB:.0f} / {SIZE_MB} MB")
        connection.execute(
            "INSERT INTO bench_meta VALUES ('recipe', %s), ('size_mb', %s), ('units', %s)",
            [str(RECIPE), str(SIZE_MB), str(units_done)],
        )
        # Hint bits set and the visibility map written now, not by the first timed dump.
        connection.execute("VACUUM (FREEZE, ANALYZE)")
        connection.execute("CHECKPOINT")
    size = database_size(DB_NAME)
    say(f"built {DB_NAME}: {size / MB:.0f} MB in {time.perf_counter() - started:.1f} s")
    return size


# ----- the runs


def run_child(*args: str, database: str, passphrase: str | None = None) -> dict[str, Any]:
    """This script in a child process (``--child …``): one Tocsin run, its own figures. The
    connection string and passphrase travel in its environment, not on its command line."""
    env = {k: v for k, v in os.environ.items() if k != "BENCH_PASSPHRASE"}
    env["BENCH_DSN"] = dsn(database)
    if passphrase:
        env["BENCH_PASSPHRASE"] = passphrase
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def shell(script: str, env: dict[str, str]) -> float:
    """``script`` in bash with pipefail; its wall-clock seconds."""
    started = time.perf_counter()
    # A session of its own: stopping the bench stops the whole pipeline, not bash alone.
    process = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{script} failed: {stderr.decode(errors='replace')[-2000:]}")
    return seconds


def peer_backup(database: str, out: Path) -> float:
    env = {**PostgreSQLTarget(dsn(database)).tool_env(), "OUT": str(out)}
    return shell(
        f'pg_dump --format=custom --compress=0 | zstd -{PEER_LEVEL} -T1 -q -f -o "$OUT"', env
    )


def peer_restore(database: str, dump: Path) -> float:
    env = {**PostgreSQLTarget(dsn(database)).tool_env(), "IN": str(dump)}
    # The flags the engine's restore uses.
    return shell(
        'zstd -dc -q "$IN" | pg_restore --clean --if-exists --no-owner --no-privileges '
        f"--single-transaction --exit-on-error --dbname={database}",
        env,
    )


def tocsin_backup(database: str, folder: Path, *, new: bool, encrypted: bool = False) -> dict:
    return run_child(
        "backup",
        str(folder),
        "create" if new else "open",
        database=database,
        passphrase=PASSPHRASE if encrypted else None,
    )


def tocsin_restore(database: str, folder: Path, snapshot_id: str) -> dict:
    return run_child("restore", str(folder), snapshot_id, database=database)


def change_rows(database: str, recent: bool) -> None:
    """CHANGE_PERCENT of ``events`` updated (at random, or the most recent ones), and as many
    new ``alerts`` as CHANGE_PERCENT of theirs."""
    share = CHANGE_PERCENT / 100
    with psycopg.connect(dsn(database), autocommit=True) as connection:
        connection.execute("SELECT setseed(0.24)")
        events = connection.execute("SELECT max(id) FROM events").fetchone()[0]
        where = "id > %(cut)s" if recent else "random() < %(share)s"
        connection.execute(
            "UPDATE events SET severity = 'resolved', "
            "message = message || ' (acknowledged by on-call)', "
            "payload = payload || jsonb_build_object('acknowledged', true, 'ack_ms', "
            f"floor(random() * 60000)::int) WHERE {where}",
            {"cut": int(events * (1 - share)), "share": share},
        )
        alerts = connection.execute("SELECT max(id) FROM alerts").fetchone()[0]
        connection.execute(ALERTS, {"lo": alerts + 1, "hi": alerts + max(1, int(alerts * share))})


def median(values: list[float]) -> float:
    return statistics.median(values)


def per_s(size: int, seconds: float) -> float:
    return round(size / MB / seconds, 1) if seconds else 0.0


def mb(size: float) -> float:
    return round(size / MB, 2)


def bench(work: Path, scratch: list[str]) -> dict[str, Any]:
    db_size = source_database()
    env = PostgreSQLTarget(dsn(DB_NAME)).tool_env()
    shell("pg_dump --format=custom --compress=0 > /dev/null", env)  # warm the caches, untimed
    peer_file = work / "peer.dump.zst"
    peer_s: list[float] = []
    full: list[dict] = []
    for number in range(ROUNDS):
        peer_file.unlink(missing_ok=True)
        peer_s.append(peer_backup(DB_NAME, peer_file))
        folder = work / f"full-{number}"
        if number:
            shutil.rmtree(work / f"full-{number - 1}")  # the last round's stays, for what follows
        full.append(tocsin_backup(DB_NAME, folder, new=True))
        say(
            f"round {number + 1}/{ROUNDS} full backup: pg_dump|zstd {peer_s[-1]:6.2f} s, "
            f"Tocsin {full[-1]['seconds']:6.2f} s ({full[-1]['stats']['bytes_read'] / MB:.0f} MB "
            f"dumped, peak RSS {full[-1]['maxrss_kib'] / 1024:.0f} MB)"
        )
    base = work / f"full-{ROUNDS - 1}"
    encrypted = tocsin_backup(DB_NAME, work / "encrypted", new=True, encrypted=True)
    shutil.rmtree(work / "encrypted")
    say(f"encrypted full backup: Tocsin {encrypted['seconds']:6.2f} s")
    dump_bytes = int(median([run["stats"]["bytes_read"] for run in full]))
    peer_dump_bytes = int(
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", 'zstd -dc -q "$IN" | wc -c'],
            env={**os.environ, "IN": str(peer_file)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )

    # Incremental: a copy changed by CHANGE_PERCENT, into a copy of the full run's repository.
    incremental: dict[str, dict] = {}
    for kind, recent in (("random", False), ("recent", True)):
        copy = f"{DB_NAME}_incremental"
        scratch.append(copy)
        drop(copy)
        create(copy, template=DB_NAME)
        change_rows(copy, recent)
        folder = work / f"incremental-{kind}"
        shutil.copytree(base, folder)
        incremental[kind] = tocsin_backup(copy, folder, new=False)
        shutil.rmtree(folder)
        drop(copy)
        stats = incremental[kind]["stats"]
        say(
            f"incremental ({CHANGE_PERCENT:g} % of rows changed, {kind}): "
            f"{stats['new_bytes'] / MB:.1f} MB new, {stats['stored_bytes'] / MB:.1f} MB stored "
            f"in {incremental[kind]['seconds']:.2f} s"
        )

    # Restore: into a new empty database each time, interleaved, then dropped.
    snapshot_id = full[-1]["snapshot_id"]
    restored = f"{DB_NAME}_restore"
    scratch.append(restored)
    restore: list[dict] = []
    peer_restore_s: list[float] = []
    verified = True
    for number in range(ROUNDS):
        drop(restored)
        create(restored)
        peer_restore_s.append(peer_restore(restored, peer_file))
        drop(restored)
        create(restored)
        restore.append(tocsin_restore(restored, base, snapshot_id))
        if number == 0:
            problems = compare(full[-1]["tables"], PostgreSQLTarget(dsn(restored)).inventory())
            verified = not problems
            for problem in problems:
                say(f"  restore differs: {problem}")
        drop(restored)
        say(
            f"round {number + 1}/{ROUNDS} restore: zstd|pg_restore {peer_restore_s[-1]:6.2f} s, "
            f"Tocsin {restore[-1]['seconds']:6.2f} s "
            f"(peak RSS {restore[-1]['maxrss_kib'] / 1024:.0f} MB)"
        )

    full_s = median([run["seconds"] for run in full])
    peer_backup_s = median(peer_s)
    restore_s = median([run["restore_s"] for run in restore])
    peer_rs = median(peer_restore_s)
    full_stored = int(median([run["stats"]["stored_bytes"] for run in full]))
    line: dict[str, Any] = {
        "bench": "backups",
        "database": DB_NAME,
        "database_mb": mb(db_size),
        "dump_mb": mb(dump_bytes),
        "peer_dump_mb": mb(peer_dump_bytes),
        "rounds": ROUNDS,
        "zstd_level_tocsin": full[-1]["zstd_level"],
        "zstd_level_peer": PEER_LEVEL,
        "pg_dump_zstd_s": round(peer_backup_s, 2),
        "pg_dump_zstd_mb_per_s": per_s(dump_bytes, peer_backup_s),
        "tocsin_full_s": round(full_s, 2),
        "tocsin_full_mb_per_s": per_s(dump_bytes, full_s),
        "full_ratio": round(peer_backup_s / full_s, 3),
        "full_goal": FULL_GOAL,
        "tocsin_full_encrypted_s": round(encrypted["seconds"], 2),
        "tocsin_full_encrypted_mb_per_s": per_s(dump_bytes, encrypted["seconds"]),
        "encrypted_ratio": round(peer_backup_s / encrypted["seconds"], 3),
        "full_chunks": full[-1]["stats"]["chunks"],
        "full_stored_mb": mb(full_stored),
        "peer_stored_mb": mb(peer_file.stat().st_size),
        "change_percent": CHANGE_PERCENT,
    }
    for kind, prefix in (("random", "incremental"), ("recent", "incremental_recent")):
        stats = incremental[kind]["stats"]
        line[f"{prefix}_s"] = round(incremental[kind]["seconds"], 2)
        line[f"{prefix}_new_chunks"] = stats["new_chunks"]
        line[f"{prefix}_new_mb"] = mb(stats["new_bytes"])
        line[f"{prefix}_stored_mb"] = mb(stats["stored_bytes"])
        line[f"{prefix}_ratio"] = round(stats["stored_bytes"] / full_stored, 4)
    line.update(
        {
            "incremental_goal": INCREMENTAL_GOAL,
            "restore_s": round(restore_s, 2),
            "restore_mb_per_s": per_s(dump_bytes, restore_s),
            "peer_restore_s": round(peer_rs, 2),
            "peer_restore_mb_per_s": per_s(dump_bytes, peer_rs),
            "restore_ratio": round(peer_rs / restore_s, 3),
            "restore_verified": verified,
            "rss_baseline_mb": round(full[-1]["baseline_rss_kib"] / 1024, 1),
            "peak_rss_mb_backup": round(max(run["maxrss_kib"] for run in full) / 1024, 1),
            "peak_rss_mb_restore": round(max(run["maxrss_kib"] for run in restore) / 1024, 1),
            "load_average": round(os.getloadavg()[0], 1),
        }
    )
    return line


def report(line: dict[str, Any]) -> None:
    def row(figure: str, ours: Any, theirs: Any = "", ratio: Any = "") -> None:
        say(f"{figure:40} {ours!s:>12} {theirs!s:>14} {ratio!s:>8}")

    say(
        f"\n{line['database_mb']:.0f} MB database, {line['dump_mb']:.0f} MB dump "
        f"(zstd level {line['zstd_level_tocsin']} / {line['zstd_level_peer']}), "
        f"median of {line['rounds']} rounds"
    )
    row("figure", "Tocsin", "pg_dump|zstd", "ratio")
    row("full backup (s)", line["tocsin_full_s"], line["pg_dump_zstd_s"])
    row(
        f"full backup (MB/s, goal ≥ {FULL_GOAL:.2f})",
        line["tocsin_full_mb_per_s"],
        line["pg_dump_zstd_mb_per_s"],
        line["full_ratio"],
    )
    row(
        "full backup, encrypted (MB/s)",
        line["tocsin_full_encrypted_mb_per_s"],
        line["pg_dump_zstd_mb_per_s"],
        line["encrypted_ratio"],
    )
    row("stored (MB)", line["full_stored_mb"], line["peer_stored_mb"])
    row(
        "restore (MB/s)",
        line["restore_mb_per_s"],
        line["peer_restore_mb_per_s"],
        line["restore_ratio"],
    )
    for prefix, what in (("incremental", "random"), ("incremental_recent", "recent")):
        row(
            f"incremental, {what} rows: new/stored MB",
            f"{line[f'{prefix}_new_mb']}/{line[f'{prefix}_stored_mb']}",
            "",
            line[f"{prefix}_ratio"],
        )
    row("peak RSS, backup (MB)", line["peak_rss_mb_backup"])
    row("peak RSS, restore (MB)", line["peak_rss_mb_restore"])
    if not line["restore_verified"]:
        say("the restored database's row counts differ from the backup's")


def main() -> None:
    # SIGTERM unwinds like ^C, so the scratch databases and folders go either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="tocsin-bench-backups-"))
    scratch: list[str] = []
    say(f"scratch folder: {work}")
    try:
        line = bench(work, scratch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for database in scratch if KEEP_DB else [*scratch, DB_NAME]:
            try:
                drop(database)
            except psycopg.Error as exc:
                say(f"could not drop {database}: {exc}")
    report(line)
    print(json.dumps(line))


# ----- the child process: one Tocsin run, measured from inside


def rss_kib() -> int:
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1])
    return 0


def child(mode: str, folder: str, *rest: str) -> None:
    baseline = rss_kib()
    passphrase = os.environ.get("BENCH_PASSPHRASE", "").encode() or None
    storage = LocalStorage(folder)
    target = PostgreSQLTarget(os.environ["BENCH_DSN"])
    result: dict[str, Any] = {"baseline_rss_kib": baseline}
    if mode == "backup":
        if rest[0] == "create":
            repository = Repository.create(storage, passphrase)
        else:
            repository = Repository.open(storage, [passphrase] if passphrase else [])
        stats = WriteStats()
        started = time.perf_counter()
        streams, metadata = target.backup(repository, stats)
        snapshot = repository.commit(streams, metadata=metadata)
        result["seconds"] = time.perf_counter() - started
        result.update(
            snapshot_id=snapshot.id,
            stats=stats.as_dict(),
            tables=metadata["tables"],
            zstd_level=repository.level,
        )
    else:
        repository = Repository.open(storage, [passphrase] if passphrase else [])
        snapshot = repository.snapshot(rest[0])
        started = time.perf_counter()
        target.restore(repository, snapshot)
        result["seconds"] = result["restore_s"] = time.perf_counter() - started
    result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:])
    else:
        main()
