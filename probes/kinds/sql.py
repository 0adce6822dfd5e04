"""SQL checks: one read-only query on PostgreSQL, MySQL/MariaDB or SQLite; its first value.

Read-only is enforced by the database, not by parsing the query: PostgreSQL runs it with
``default_transaction_read_only`` and ``SET TRANSACTION READ ONLY``, MySQL/MariaDB inside
``START TRANSACTION READ ONLY``, SQLite opens the file with ``mode=ro`` and ``query_only``.
Every run is rolled back. The statement timeout is the check's timeout, enforced server-side
too (``statement_timeout``, ``max_statement_time``/``max_execution_time``, a progress
handler) so an abandoned query does not go on loading the database.

``run_query`` is shared with the consistency kind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import psycopg
import pymysql
from django.conf import settings

from probes.kinds._support import Fields, elapsed_ms
from probes.kinds.base import Observation, excerpt
from tocsin import outbound

KIND = "sql"
LABEL = "SQL query"
PLACEHOLDERS = ("VALUE", "RESPONSE_TIME", "CONNECTED")
DEFAULT_CONDITIONS = ["[CONNECTED] == true"]

ENGINES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    dsn = f.text("dsn", required=True)
    if dsn:
        problem = dsn_problem(dsn)
        if problem:
            f.error("dsn", problem)
    f.text("query", required=True)
    return f.done()


def dsn_problem(dsn: str) -> str:
    """Why ``dsn`` cannot be used, or "" (never echoes the DSN: it may hold a password)."""
    scheme = urlsplit(dsn).scheme.lower()
    engine = ENGINES.get(scheme)
    if engine is None:
        return "must start with postgresql://, mysql://, mariadb:// or sqlite:///"
    if engine == "sqlite":
        path = _sqlite_path(dsn)
        return sqlite_problem(path) if path else "must name a file: sqlite:////absolute/path.db"
    try:
        parts = urlsplit(dsn)
        _ = parts.port
    except ValueError:
        return "has a bad port"
    if not parts.hostname:
        return "must name a host"
    if engine == "mysql" and not parts.path.strip("/"):
        return "must name a database: mysql://user:password@host:3306/database"
    return ""


def engine_of(dsn: str) -> str:
    return ENGINES[urlsplit(dsn).scheme.lower()]


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    started = time.perf_counter()
    result = await run_query(config["dsn"], config["query"], timeout)
    took = elapsed_ms(started)
    values: dict[str, Any] = {"CONNECTED": result.connected, "RESPONSE_TIME": took}
    details: dict[str, Any] = {"engine": engine_of(config["dsn"])}
    if result.error:
        return Observation(False, result.error, values, {"total": took}, details=details)
    values["VALUE"] = result.value
    details.update(row=result.row, columns=result.columns)
    shown = "" if result.value is None else str(result.value)
    return Observation(True, "", values, {"total": took}, excerpt(shown), details)


@dataclass
class QueryResult:
    value: Any = None
    row: list[Any] | None = None
    columns: list[str] | None = None
    connected: bool = False
    error: str = ""


async def run_query(dsn: str, query: str, timeout: float) -> QueryResult:
    """Run ``query`` read-only; its first column of its first row, or a precise error."""
    engine = engine_of(dsn)
    result = QueryResult()
    try:
        async with asyncio.timeout(timeout):
            # The outbound guard resolves and checks the host once; the driver connects to
            # that address (PostgreSQL's hostaddr, MySQL's host), never to the name again.
            if engine == "postgresql":
                address = await asyncio.to_thread(outbound.pg_hostaddr, dsn, probe=True)
                await _postgresql(dsn, query, timeout, result, address)
            elif engine == "mysql":
                address = await asyncio.to_thread(outbound.url_address, dsn, probe=True)
                await asyncio.to_thread(_mysql, dsn, query, timeout, result, address)
            else:
                await asyncio.to_thread(_sqlite, dsn, query, timeout, result)
    except TimeoutError:
        doing = "running the query" if result.connected else "connecting"
        result.error = f"timed out after {timeout:g} s {doing}"
    except psycopg.Error as exc:
        result.error = _postgresql_error(exc, timeout)
    except pymysql.MySQLError as exc:
        result.error = _mysql_error(exc, timeout)
    except sqlite3.Error as exc:
        result.error = _sqlite_error(exc, timeout)
    except (outbound.Refused, PermissionError) as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"cannot connect: {exc}"
    return result


def _keep(result: QueryResult, row: Any, columns: list[str] | None) -> None:
    if row is None:
        result.row, result.value = None, None
    else:
        result.row = [plain(v) for v in list(row)[:20]]
        result.value = result.row[0] if result.row else None
    result.columns = columns


def plain(value: Any) -> Any:
    """A database value as a condition compares it: numbers stay numbers."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


# ---- PostgreSQL --------------------------------------------------------------------------


async def _postgresql(
    dsn: str, query: str, timeout: float, result: QueryResult, address: str
) -> None:
    ms = max(int(timeout * 1000), 1)
    connection = await psycopg.AsyncConnection.connect(
        dsn,
        hostaddr=address,
        connect_timeout=max(int(timeout + 0.999), 1),
        options=f"-c default_transaction_read_only=on -c statement_timeout={ms}",
        application_name="tocsin-probe",
    )
    result.connected = True
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SET TRANSACTION READ ONLY")
            await cursor.execute(query)
            columns = [c.name for c in cursor.description] if cursor.description else None
            _keep(result, await cursor.fetchone() if cursor.description else None, columns)
        await connection.rollback()
    finally:
        await connection.close()


def _postgresql_error(exc: psycopg.Error, timeout: float) -> str:
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return f"the query ran past the {timeout:g} s statement timeout"
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return f"the query tried to write: {_first_line(exc)}"
    if isinstance(exc, psycopg.OperationalError) and exc.diag.sqlstate is None:
        return f"cannot connect: {_connect_reason(str(exc))}"
    return f"query failed: {_first_line(exc)}"


def _connect_reason(text: str) -> str:
    # "connection failed: connection to server at "h" (ip), port p failed: Connection refused
    # \n\tIs the server running…" → the last reason, which is the one that matters
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Is the server running")]
    text = lines[-1] if lines else text
    text = text.removeprefix("connection failed: ")
    return text


def _first_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---- MySQL / MariaDB ---------------------------------------------------------------------


def _mysql(dsn: str, query: str, timeout: float, result: QueryResult, address: str) -> None:
    parts = urlsplit(dsn)
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    connection = pymysql.connect(
        host=address,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.strip("/")),
        connect_timeout=max(timeout, 0.1),
        read_timeout=max(timeout, 0.1),
        write_timeout=max(timeout, 0.1),
        charset=params.get("charset", "utf8mb4"),
        autocommit=False,
    )
    result.connected = True
    try:
        with connection.cursor() as cursor:
            if "mariadb" in connection.get_server_info().lower():
                cursor.execute("SET SESSION max_statement_time = %s", (timeout,))
            else:
                cursor.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))
            cursor.execute("START TRANSACTION READ ONLY")
            cursor.execute(query)
            columns = [c[0] for c in cursor.description] if cursor.description else None
            _keep(result, cursor.fetchone() if cursor.description else None, columns)
        connection.rollback()
    finally:
        connection.close()


def _mysql_error(exc: pymysql.MySQLError, timeout: float) -> str:
    code, message = (*exc.args, None, None)[:2]
    message = str(message or exc)
    if code == 2003:
        return f"cannot connect: {message}"
    if code in (1969, 3024):  # MariaDB max_statement_time, MySQL max_execution_time
        return f"the query ran past the {timeout:g} s statement timeout"
    if code == 1792:
        return f"the query tried to write: {message}"
    if code in (1044, 1045, 1049, 2013):
        return f"cannot connect: ({code}) {message}"
    return f"query failed: ({code}) {message}" if code else f"query failed: {message}"


# ---- SQLite ------------------------------------------------------------------------------


def _sqlite_path(dsn: str) -> str:
    """sqlite:////abs/path.db → /abs/path.db; sqlite:///relative.db → relative.db."""
    rest = dsn.split(":", 1)[1]
    if not rest.startswith("//"):
        return ""
    path = unquote(urlsplit(dsn).path)
    return path[1:] if path.startswith("/") else path


def sqlite_problem(path: str) -> str:
    """Why a check may not read this SQLite file, or "": only files inside the folders the
    operator lists in ``TOCSIN_PROBE_SQLITE_DIRS`` (links resolved first), and never Tocsin's
    own database. Checks are a manager's to configure and their results the team's to read: a
    check pointed at Tocsin's database would show every team's data, sessions and second
    factors; at any other file on the machine, whatever Tocsin may read."""
    real = os.path.realpath(path)
    folders = [os.path.realpath(folder) for folder in settings.TOCSIN_PROBE_SQLITE_DIRS]
    if not any(os.path.commonpath([real, folder]) == folder for folder in folders):
        return "may only name a file in the folders the operator allowed (TOCSIN_PROBE_SQLITE_DIRS)"
    for database in settings.DATABASES.values():
        name = str(database.get("NAME") or "")
        if "sqlite" in database.get("ENGINE", "") and name:
            own = os.path.realpath(name)
            if real == own or real.startswith(own + "-"):  # its -wal and -shm files too
                return "may not name Tocsin's own database"
    return ""


def _sqlite(dsn: str, query: str, timeout: float, result: QueryResult) -> None:
    path = _sqlite_path(dsn)
    problem = sqlite_problem(path)  # again when it runs: the setting or a link may have changed
    if problem:
        raise PermissionError(f"the SQLite file {problem}")
    connection = sqlite3.connect(
        f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
    )
    deadline = time.monotonic() + timeout
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        connection.execute("PRAGMA query_only = ON")
        cursor = connection.execute(query)
        result.connected = True
        columns = [c[0] for c in cursor.description] if cursor.description else None
        _keep(result, cursor.fetchone() if cursor.description else None, columns)
        connection.rollback()
    finally:
        connection.close()


def _sqlite_error(exc: sqlite3.Error, timeout: float) -> str:
    text = str(exc)
    if text == "interrupted":
        return f"the query ran past the {timeout:g} s statement timeout"
    if "unable to open database file" in text:
        return f"cannot open the database file: {text}"
    if "readonly" in text or "read-only" in text:
        return f"the query tried to write: {text}"
    return f"query failed: {text}"
