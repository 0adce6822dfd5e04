"""A PostgreSQL database, through ``pg_dump`` and ``pg_restore``.

The dump is custom format without compression (the repository compresses, and uncompressed
table data deduplicates across runs). Row counts for the manifest are read in a transaction
whose snapshot ``pg_dump`` is handed (``--snapshot``), so they are the counts of exactly the
data dumped, however busy the database. The password travels in the tools' environment, never
on a command line (``ps`` shows command lines to every user).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from backups.engine.records import Snapshot, StreamRecord, WriteStats
from backups.engine.repository import Repository
from backups.engine.targets.base import (
    Inventory,
    Progress,
    TargetError,
    dump_into,
    restore_through,
    stream_named,
    tool_version,
)
from tocsin import outbound

STREAM = "dump.pgcustom"
SAMPLE_ROWS = 100  # rows per table whose checksum a restore drill compares


class PostgreSQLTarget:
    kind = "postgresql"

    def __init__(self, dsn: str, *, guarded: bool = True) -> None:
        # guarded: a database a user named goes through the outbound guard; Tocsin's own
        # (the operator's DATABASE_URL) does not.
        self.guarded = guarded
        try:
            self.params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise TargetError(f"not a PostgreSQL connection string: {exc}") from None
        self.dsn = dsn
        if not self.params.get("dbname"):
            raise TargetError("the connection string names no database")
        if any("@" in str(self.params.get(key, "")) for key in ("host", "dbname", "port")):
            raise TargetError(
                "the connection string does not parse as meant: percent-encode @ / ? # : in "
                "the password (e.g. %40 for @)"
            )

    @property
    def database(self) -> str:
        return str(self.params["dbname"])

    def describe(self) -> str:
        host = self.params.get("host", "localhost")
        return f"PostgreSQL {self.database} on {host}:{self.params.get('port', 5432)}"

    def tool_env(self) -> dict[str, str]:
        # libpq's own variables for every connection setting a DSN may carry (TLS above all:
        # a dump must not fall back to an unverified connection the DSN did not allow).
        names = {
            "host": "PGHOST",
            "hostaddr": "PGHOSTADDR",
            "port": "PGPORT",
            "user": "PGUSER",
            "password": "PGPASSWORD",
            "sslmode": "PGSSLMODE",
            "sslrootcert": "PGSSLROOTCERT",
            "sslcert": "PGSSLCERT",
            "sslkey": "PGSSLKEY",
            "sslcrl": "PGSSLCRL",
            "options": "PGOPTIONS",
            "application_name": "PGAPPNAME",
            "target_session_attrs": "PGTARGETSESSIONATTRS",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({names[k]: str(v) for k, v in self.params.items() if k in names})
        env["PGDATABASE"] = self.database
        env.setdefault("PGCONNECT_TIMEOUT", "10")
        address = self.address()
        if address:
            env["PGHOSTADDR"] = address
        return env

    def address(self) -> str:
        """The outbound guard's checked address(es) for libpq's hostaddr ("" when unguarded)."""
        if not self.guarded:
            return ""
        try:
            return outbound.pg_hostaddr(self.dsn)
        except OSError as exc:
            raise TargetError(f"cannot connect to {self.describe()}: {exc}") from None

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        address = self.address()
        if address:
            kwargs["hostaddr"] = address
        try:
            return psycopg.connect(self.dsn, connect_timeout=10, **kwargs)
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to {self.describe()}: {exc}") from None

    def backup(
        self, repository: Repository, stats: WriteStats, progress: Progress | None = None
    ) -> tuple[list[StreamRecord], dict[str, Any]]:
        started = time.monotonic()
        with self.connect() as connection:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exported = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
            inventory = _inventory(connection)
            fingerprint = _fingerprint(connection)
            server = connection.execute("SHOW server_version").fetchone()[0]
            command = ["pg_dump", "--format=custom", "--compress=0", f"--snapshot={exported}"]
            stream = dump_into(repository, STREAM, command, self.tool_env(), stats, progress)
            connection.rollback()
        metadata = {
            "kind": self.kind,
            "database": self.database,
            "tables": inventory,
            **fingerprint,
            "tool_versions": {"pg_dump": tool_version(["pg_dump", "--version"]), "server": server},
            "dump_seconds": round(time.monotonic() - started, 3),
        }
        return [stream], metadata

    def restore(self, repository: Repository, snapshot: Snapshot) -> None:
        """Into this database, replacing the objects the dump holds, in one transaction."""
        stream = stream_named(snapshot, STREAM, "PostgreSQL dump")
        command = [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={self.database}",
        ]
        restore_through(repository, stream, command, self.tool_env())

    def inventory(self) -> Inventory:
        with self.connect() as connection:
            return _inventory(connection)

    def fingerprint(self) -> dict[str, Inventory]:
        """Each table's columns and a checksum of its first rows (see ``_fingerprint``)."""
        with self.connect() as connection:
            return _fingerprint(connection)

    def create_scratch(self, name: str) -> PostgreSQLTarget:
        """A new, empty database beside this one (a restore drill's scratch target)."""
        with self.connect(autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return PostgreSQLTarget(
            psycopg.conninfo.make_conninfo(self.dsn, dbname=name), guarded=self.guarded
        )

    def drop(self) -> None:
        """Drop this database (a drill's scratch database, after the drill)."""
        admin = PostgreSQLTarget(
            psycopg.conninfo.make_conninfo(self.dsn, dbname="postgres"), guarded=self.guarded
        )
        with admin.connect(autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )


def _inventory(connection: psycopg.Connection) -> Inventory:
    tables = connection.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY 1, 2"
    ).fetchall()
    result: Inventory = {}
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        result[f"{schema}.{table}"] = connection.execute(query).fetchone()[0]
    return result


def _fingerprint(connection: psycopg.Connection) -> dict[str, Inventory]:
    """``columns``: table → [[column, type], …]; ``samples``: table → MD5 of its first
    SAMPLE_ROWS rows by primary key, as text (tables without a primary key have no stable
    "first rows" and no sample). Read in the caller's transaction: for a backup, the snapshot
    pg_dump dumps."""
    columns: Inventory = {}
    for schema, table, column, kind in connection.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY 1, 2, ordinal_position"
    ):
        columns.setdefault(f"{schema}.{table}", []).append([column, kind])
    samples: Inventory = {}
    keys = connection.execute(
        "SELECT n.nspname, c.relname, array_agg(a.attname ORDER BY k.ord) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE i.indisprimary AND c.relkind IN ('r', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
        "GROUP BY 1, 2"
    ).fetchall()
    for schema, table, key in keys:
        query = sql.SQL(
            "SELECT md5(coalesce(string_agg(r::text, E'\\n'), '')) "
            "FROM (SELECT * FROM {}.{} ORDER BY {} LIMIT {}) r"
        ).format(
            sql.Identifier(schema),
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(name) for name in key),
            sql.Literal(SAMPLE_ROWS),
        )
        samples[f"{schema}.{table}"] = connection.execute(query).fetchone()[0]
    return {"columns": columns, "samples": samples}
