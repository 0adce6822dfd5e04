"""A SQLite database file, copied through SQLite's online backup API.

The backup API copies a consistent image while other connections keep writing (a plain file
copy of a database in WAL mode can tear), into a temporary file that is then chunked. A restore
writes the file next to the target and renames it into place, so the target is either the old
database or the restored one, never half of each.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from backups.engine.records import Snapshot, StreamRecord, WriteStats
from backups.engine.repository import Repository
from backups.engine.targets.base import Inventory, Progress, TargetError, stream_named

STREAM = "database.sqlite3"
SAMPLE_ROWS = 100  # rows per table whose checksum a restore drill compares


class SQLiteTarget:
    kind = "sqlite"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def backup(
        self, repository: Repository, stats: WriteStats, progress: Progress | None = None
    ) -> tuple[list[StreamRecord], dict[str, Any]]:
        if not self.path.is_file():
            raise TargetError(f"{self.path} does not exist")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="tocsin-sqlite-") as folder:
            copy = Path(folder) / STREAM
            try:
                source = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                try:
                    destination = sqlite3.connect(copy)
                    try:
                        # One step: a stepwise copy starts over whenever another
                        # connection writes, and Tocsin's own database is written all the time.
                        source.backup(destination)
                    finally:
                        destination.close()
                finally:
                    source.close()
            except sqlite3.Error as exc:
                raise TargetError(f"cannot copy {self.path}: {exc}") from None
            inventory = _inventory(copy)
            fingerprint = _fingerprint(copy)
            schema = _schema(copy)
            with open(copy, "rb") as file:
                stream = repository.write_stream(
                    STREAM, file, stats, progress=progress, whole_digest=False
                )
        metadata = {
            "kind": self.kind,
            "tables": inventory,
            **fingerprint,
            "schema": schema,
            "tool_versions": {"sqlite": sqlite3.sqlite_version},
            "dump_seconds": round(time.monotonic() - started, 3),
        }
        return [stream], metadata

    def restore(self, repository: Repository, snapshot: Snapshot) -> None:
        stream = stream_named(snapshot, STREAM, "SQLite database")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}-")
        try:
            with os.fdopen(fd, "wb") as file:
                repository.restore_stream(stream, file)
                file.flush()
                os.fsync(file.fileno())
            for suffix in ("-wal", "-shm"):  # the old database's, which would replay over it
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def inventory(self) -> Inventory:
        return _inventory(self.path)

    def schema(self) -> list[str]:
        return _schema(self.path)

    def fingerprint(self) -> dict[str, Inventory]:
        return _fingerprint(self.path)


def _inventory(path: Path) -> Inventory:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = _inventory_names(connection)
        return {
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
        }
    except sqlite3.Error as exc:
        raise TargetError(f"cannot read {path}: {exc}") from None
    finally:
        connection.close()


def _schema(path: Path) -> list[str]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            row[0]
            for row in connection.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
            )
        ]
    finally:
        connection.close()


def _fingerprint(path: Path) -> dict[str, Inventory]:
    """``columns``: table → [[column, declared type], …]; ``samples``: table → SHA-256 of its
    first SAMPLE_ROWS rows by rowid (a file copy keeps rowids)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns: Inventory = {}
        samples: Inventory = {}
        for name in _inventory_names(connection):
            quoted = name.replace('"', '""')
            info = connection.execute(f'PRAGMA table_info("{quoted}")').fetchall()
            columns[name] = [[row[1], row[2]] for row in info]
            try:
                rows = connection.execute(
                    f'SELECT * FROM "{quoted}" ORDER BY rowid LIMIT {SAMPLE_ROWS}'
                ).fetchall()
            except sqlite3.OperationalError:  # WITHOUT ROWID tables
                continue
            samples[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return {"columns": columns, "samples": samples}
    finally:
        connection.close()


def _inventory_names(connection: sqlite3.Connection) -> list[str]:
    return [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
