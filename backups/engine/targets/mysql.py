"""A MySQL or MariaDB database, through ``mariadb-dump`` (or ``mysqldump``) and the client.

``--single-transaction`` dumps InnoDB tables as of one moment without locking them. The
password goes to the tools in an option file readable by this user only, never on a command
line. Row counts for the manifest are read just before the dump; on a database written to while
it runs they describe the start of the dump (for InnoDB the dump's own snapshot is a moment
later), which a restore drill reports rather than hides.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

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

STREAM = "dump.sql"
SAMPLE_ROWS = 100  # rows per table whose checksum a restore drill compares


def _tool(*names: str) -> str:
    for name in names:
        if shutil.which(name):
            return name
    return names[-1]


class MySQLTarget:
    kind = "mysql"

    def __init__(self, dsn: str, *, guarded: bool = True) -> None:
        """``mysql://user:password@host:port/database`` (``mariadb://`` too). ``guarded``: a
        database a user named goes through the outbound guard; Tocsin's own does not."""
        self.guarded = guarded
        parts = urlsplit(dsn)
        if parts.scheme not in ("mysql", "mariadb") or not parts.path.strip("/"):
            raise TargetError("expected mysql://user:password@host:port/database")
        try:
            port = parts.port
        except ValueError:
            port = None
            parts = None
        if parts is None or "@" in urlsplit(dsn).path:
            raise TargetError(
                "the connection string does not parse as meant: percent-encode @ / ? # : in "
                "the password (e.g. %40 for @)"
            )
        self.host = parts.hostname or "127.0.0.1"
        self.port = port or 3306
        self.user = unquote(parts.username or "root")
        self.password = unquote(parts.password or "")
        self.database = unquote(parts.path.strip("/"))
        # Written into an option file for the tools: a line break or a quote would let a DSN
        # add options of its own (result-file=…), so they are refused.
        for value in (self.host, self.user, self.password, self.database):
            if any(c in value for c in '\r\n"\\'):
                raise TargetError("the connection string holds a line break, quote or backslash")

    def describe(self) -> str:
        return f"MySQL {self.database} on {self.host}:{self.port}"

    def address(self) -> str:
        """Where to connect: the outbound guard's checked address of the host."""
        if not self.guarded:
            return self.host
        try:
            return outbound.resolve(self.host, self.port)[0]
        except OSError as exc:
            raise TargetError(f"cannot connect to {self.describe()}: {exc}") from None

    def connect(self, database: str | None = None) -> pymysql.Connection:
        address = self.address()
        try:
            return pymysql.connect(
                host=address,
                port=self.port,
                user=self.user,
                password=self.password,
                database=database if database is not None else self.database,
                connect_timeout=10,
            )
        except pymysql.Error as exc:
            raise TargetError(f"cannot connect to {self.describe()}: {exc}") from None

    @contextmanager
    def _options_file(self):
        with tempfile.NamedTemporaryFile("w", prefix="tocsin-my-", suffix=".cnf") as file:
            os.chmod(file.name, 0o600)
            file.write(
                "[client]\n"
                f"host={self.address()}\nport={self.port}\nuser={self.user}\n"
                f'password="{self.password}"\nprotocol=TCP\n'
            )
            file.flush()
            yield file.name

    def backup(
        self, repository: Repository, stats: WriteStats, progress: Progress | None = None
    ) -> tuple[list[StreamRecord], dict[str, Any]]:
        started = time.monotonic()
        inventory = self.inventory()
        fingerprint = self.fingerprint()
        dumper = _tool("mysqldump", "mariadb-dump")
        with self._options_file() as options:
            command = [
                dumper,
                f"--defaults-extra-file={options}",
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--skip-comments",  # no dump date: identical data, identical chunks
                self.database,
            ]
            stream = dump_into(repository, STREAM, command, dict(os.environ), stats, progress)
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            server = cursor.fetchone()[0]
        metadata = {
            "kind": self.kind,
            "database": self.database,
            "tables": inventory,
            **fingerprint,
            "tool_versions": {dumper: tool_version([dumper, "--version"]), "server": server},
            "dump_seconds": round(time.monotonic() - started, 3),
        }
        return [stream], metadata

    def restore(self, repository: Repository, snapshot: Snapshot) -> None:
        stream = stream_named(snapshot, STREAM, "MySQL dump")
        client = _tool("mysql", "mariadb")
        with self._options_file() as options:
            command = [client, f"--defaults-extra-file={options}", self.database]
            restore_through(repository, stream, command, dict(os.environ))

    def inventory(self) -> Inventory:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
                [self.database],
            )
            tables = [row[0] for row in cursor.fetchall()]
            result: Inventory = {}
            for table in tables:
                cursor.execute(f"SELECT COUNT(*) FROM `{table.replace('`', '``')}`")
                result[table] = cursor.fetchone()[0]
            return result

    def fingerprint(self) -> dict[str, Inventory]:
        """``columns``: table → [[column, type], …]; ``samples``: table → SHA-256 of its first
        SAMPLE_ROWS rows by primary key (tables without one have no sample)."""
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name, column_type, column_key "
                "FROM information_schema.columns WHERE table_schema = %s "
                "ORDER BY table_name, ordinal_position",
                [self.database],
            )
            columns: Inventory = {}
            keys: dict[str, list[str]] = {}
            for table, column, kind, key in cursor.fetchall():
                columns.setdefault(table, []).append([column, kind])
                if key == "PRI":
                    keys.setdefault(table, []).append(column)
            samples: Inventory = {}
            for table, key in keys.items():
                order = ", ".join(f"`{name.replace('`', '``')}`" for name in key)
                cursor.execute(
                    f"SELECT * FROM `{table.replace('`', '``')}` ORDER BY {order} "
                    f"LIMIT {SAMPLE_ROWS}"
                )
                samples[table] = hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest()
            return {"columns": columns, "samples": samples}

    def create_scratch(self, name: str) -> MySQLTarget:
        with self.connect(database="") as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name.replace('`', '``')}`")
        scratch = MySQLTarget.__new__(MySQLTarget)
        scratch.__dict__.update(self.__dict__, database=name)
        return scratch

    def drop(self) -> None:
        with self.connect(database="") as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{self.database.replace('`', '``')}`")
