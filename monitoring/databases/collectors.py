"""What each kind of database says about its health, read from its own statistics.

Each collector connects with short timeouts, reads, and returns gauges and counters named
``pg_*``, ``mysql_*`` or ``redis_*`` (the rule packs' metrics; docs/database-health.md lists
them with their meaning), plus the slowest statements where the database keeps them. A database
that cannot be reached gives ``<kind>_up 0`` and the reason — that is a health fact too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from monitoring.models.metrics import MetricKind
from tocsin import outbound

TIMEOUT = 5  # seconds: to connect, and for each statement
SLOW_QUERIES = 10


@dataclass
class Reading:
    """One collection: (metric, value, extra labels, kind) and the slowest statements."""

    values: list[tuple[str, float, dict[str, str], str]] = field(default_factory=list)
    slow_queries: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def gauge(self, name: str, value: Any, **labels: str) -> None:
        if value is not None:
            self.values.append((name, float(value), labels, MetricKind.GAUGE))

    def counter(self, name: str, value: Any, **labels: str) -> None:
        if value is not None:
            self.values.append((name, float(value), labels, MetricKind.COUNTER))


class CollectError(Exception):
    pass


# --- PostgreSQL ----------------------------------------------------------------------------------

PG_STATEMENTS = """
SELECT left(query, 500), calls, total_exec_time, mean_exec_time, rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY mean_exec_time DESC
LIMIT %s
"""


def collect_postgresql(dsn: str) -> Reading:
    import psycopg

    reading = Reading()
    try:
        connection = psycopg.connect(
            dsn,
            hostaddr=_guarded(outbound.pg_hostaddr, dsn),
            connect_timeout=TIMEOUT,
            autocommit=True,
            options=f"-c statement_timeout={TIMEOUT * 1000}",
        )
    except psycopg.Error as exc:
        raise CollectError(_first_line(exc)) from None
    with connection:
        one = lambda sql, *args: connection.execute(sql, args or None).fetchone()  # noqa: E731
        reading.gauge("pg_up", 1)
        max_connections = int(one("SHOW max_connections")[0])
        reading.gauge("pg_max_connections", max_connections)
        total = 0
        for state, count in connection.execute(
            "SELECT coalesce(state, 'other'), count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' GROUP BY 1"
        ):
            reading.gauge("pg_connections", count, state=state)
            total += count
        reading.gauge("pg_connections_total", total)
        reading.gauge("pg_connections_used_percent", 100 * total / max_connections)
        query_age, transaction_age = one(
            "SELECT coalesce(max(extract(epoch FROM now() - query_start))"
            " FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()), 0),"
            " coalesce(max(extract(epoch FROM now() - xact_start))"
            " FILTER (WHERE pid <> pg_backend_pid()), 0)"
            " FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )
        reading.gauge("pg_longest_query_seconds", query_age)
        reading.gauge("pg_longest_transaction_seconds", transaction_age)
        waiting, locks_waiting = one(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'),"
            " (SELECT count(*) FROM pg_locks WHERE NOT granted)"
        )
        reading.gauge("pg_sessions_waiting_on_locks", waiting)
        reading.gauge("pg_locks_waiting", locks_waiting)
        hit, read, size, deadlocks = one(
            "SELECT blks_hit, blks_read, pg_database_size(datname), deadlocks "
            "FROM pg_stat_database WHERE datname = current_database()"
        )
        if hit + read:
            reading.gauge("pg_cache_hit_percent", 100 * hit / (hit + read))
        reading.gauge("pg_database_size_bytes", size)
        reading.counter("pg_deadlocks_total", deadlocks)
        dead, worst = one(
            "SELECT coalesce(sum(n_dead_tup), 0),"
            " coalesce(max(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0))"
            " FILTER (WHERE n_live_tup + n_dead_tup > 1000), 0)"
            " FROM pg_stat_user_tables"
        )
        reading.gauge("pg_dead_tuples", dead)
        # A bloat estimate that needs no extension: the worst table's share of dead rows.
        reading.gauge("pg_dead_tuple_percent", worst)
        in_recovery = one("SELECT pg_is_in_recovery()")[0]
        if in_recovery:
            lag = one(
                "SELECT coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)"
            )[0]
        else:
            lag = one(
                "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication"
            )[0]
        reading.gauge("pg_replication_lag_seconds", lag)
        installed = one("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if installed[0]:
            try:
                rows = connection.execute(PG_STATEMENTS, (SLOW_QUERIES,)).fetchall()
            except psycopg.Error:  # installed but not preloaded: no statistics to read
                rows = []
            reading.slow_queries = [
                {
                    "query": query,
                    "calls": calls,
                    "total_ms": round(total_ms, 1),
                    "mean_ms": round(mean_ms, 2),
                    "rows": rows_count,
                }
                for query, calls, total_ms, mean_ms, rows_count in rows
            ]
            if reading.slow_queries:
                reading.gauge("pg_slowest_statement_mean_ms", reading.slow_queries[0]["mean_ms"])
    return reading


# --- MySQL / MariaDB ------------------------------------------------------------------------------


def mysql_parts(dsn: str) -> dict[str, Any]:
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise CollectError("expected mysql://user:password@host:port/database")
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.strip("/")) or None,
    }


def collect_mysql(dsn: str) -> Reading:
    import pymysql

    reading = Reading()
    try:
        parts = mysql_parts(dsn)
        parts["host"] = _guarded(outbound.resolve_one, parts["host"], parts["port"])
        connection = pymysql.connect(
            **parts,
            connect_timeout=TIMEOUT,
            read_timeout=TIMEOUT,
            write_timeout=TIMEOUT,
        )
    except pymysql.Error as exc:
        raise CollectError(_first_line(exc)) from None
    with connection, connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS")
        status = {name.lower(): value for name, value in cursor.fetchall()}
        cursor.execute("SHOW GLOBAL VARIABLES LIKE 'max_connections'")
        max_connections = int(cursor.fetchone()[1])
        number = lambda name: float(status.get(name, 0) or 0)  # noqa: E731
        reading.gauge("mysql_up", 1)
        connected = number("threads_connected")
        reading.gauge("mysql_threads_connected", connected)
        reading.gauge("mysql_threads_running", number("threads_running"))
        reading.gauge("mysql_max_connections", max_connections)
        reading.gauge("mysql_connections_used_percent", 100 * connected / max_connections)
        reading.counter("mysql_slow_queries_total", number("slow_queries"))
        reading.counter("mysql_queries_total", number("questions"))
        requests = number("innodb_buffer_pool_read_requests")
        if requests:
            misses = number("innodb_buffer_pool_reads")
            reading.gauge("mysql_innodb_buffer_pool_hit_percent", 100 * (1 - misses / requests))
        cursor.execute(
            "SELECT coalesce(max(time), 0) FROM information_schema.processlist "
            "WHERE command NOT IN ('Sleep', 'Daemon', 'Binlog Dump') AND id <> connection_id()"
        )
        reading.gauge("mysql_longest_query_seconds", cursor.fetchone()[0])
    return reading


# --- Redis ----------------------------------------------------------------------------------------


def collect_redis(dsn: str) -> Reading:
    import time

    import redis

    reading = Reading()
    try:
        client = redis.Redis.from_url(dsn, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    except ValueError as exc:
        raise CollectError(_first_line(exc)) from None
    client.connection_pool.connection_kwargs["host"] = _guarded(outbound.url_address, dsn)
    try:
        info = client.info()
        persistent = _persistence_on(client, info)
    except redis.RedisError as exc:
        raise CollectError(_first_line(exc)) from None
    finally:
        client.close()
    reading.gauge("redis_up", 1)
    used, limit = info.get("used_memory", 0), info.get("maxmemory", 0)
    reading.gauge("redis_memory_used_bytes", used)
    reading.gauge("redis_maxmemory_bytes", limit)
    if limit:
        reading.gauge("redis_memory_used_percent", 100 * used / limit)
    hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
    if hits + misses:
        reading.gauge("redis_hit_rate_percent", 100 * hits / (hits + misses))
    reading.counter("redis_evicted_keys_total", info.get("evicted_keys", 0))
    reading.gauge("redis_connected_clients", info.get("connected_clients", 0))
    reading.gauge("redis_blocked_clients", info.get("blocked_clients", 0))
    last_save = info.get("rdb_last_save_time")
    if last_save and persistent:  # without persistence it is only the start time
        reading.gauge("redis_last_save_age_seconds", max(time.time() - last_save, 0))
    reading.gauge("redis_last_bgsave_ok", 1 if info.get("rdb_last_bgsave_status") == "ok" else 0)
    return reading


def _persistence_on(client: Any, info: dict[str, Any]) -> bool:
    """Whether the server saves to disk (RDB snapshots or AOF); True when it will not say."""
    import redis

    if info.get("aof_enabled"):
        return True
    try:
        return bool(client.config_get("save").get("save"))
    except redis.ResponseError:  # CONFIG refused (managed Redis, ACLs): assume it saves
        return True


def dsn_problem(kind: str, dsn: str) -> str | None:
    """What is wrong with a DSN for this kind (None: nothing), for forms and serializers."""
    if not dsn:
        return "Give the database's connection string."
    scheme = urlsplit(dsn).scheme
    expected = {
        "postgresql": ("postgresql", "postgres"),
        "mysql": ("mysql", "mariadb"),
        "redis": ("redis", "rediss"),
    }.get(kind, ())
    if scheme not in expected:
        return f"A {kind} connection string starts with {expected[0]}://" if expected else None
    parts = urlsplit(dsn)
    try:
        _ = parts.port
    except ValueError:
        return "The port is not a number: percent-encode @ / ? # : in the password (%40 for @)."
    if "@" in parts.path:
        return "Percent-encode @ / ? # : in the password (e.g. %40 for @)."
    if not parts.hostname and kind != "postgresql":
        return "The connection string names no host."
    return None


def where(kind: str, dsn: str) -> str:
    """Host, port and database of a DSN — never its password."""
    parts = urlsplit(dsn)
    try:
        port = parts.port
    except ValueError:
        return f"{kind} (connection string does not parse)"
    if "@" in parts.path:
        return f"{kind} (connection string does not parse)"
    database = parts.path.strip("/")
    return f"{kind} {parts.hostname or 'localhost'}:{port or 'default port'}/{database}".rstrip("/")


def _guarded(resolve: Any, *args: Any) -> str:
    """The outbound guard's checked address to connect to (the DSN is a user's), or a
    CollectError: the refusal reads like any unreachable database (``<kind>_up 0``)."""
    try:
        return resolve(*args)
    except OSError as exc:
        raise CollectError(str(exc)) from None


COLLECTORS = {"postgresql": collect_postgresql, "mysql": collect_mysql, "redis": collect_redis}


def collect(kind: str, dsn: str) -> Reading:
    """A reading of one database; never raises: an unreachable one reads ``<kind>_up 0``."""
    prefix = {"postgresql": "pg", "mysql": "mysql", "redis": "redis"}[kind]
    try:
        return COLLECTORS[kind](dsn)
    except CollectError as exc:
        reading = Reading(error=str(exc) or "unreachable")
    except Exception as exc:  # a collector bug must still say the database was not read
        reading = Reading(error=f"{type(exc).__name__}: {_first_line(exc)}")
    reading.gauge(f"{prefix}_up", 0)
    return reading


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = (text[0] if text else type(exc).__name__)[:400]
    if isinstance(exc, ValueError):  # a parse error may quote a piece of the password
        return "the connection string does not parse"
    return line
