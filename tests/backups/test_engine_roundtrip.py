"""Back up, change the data, restore, and the data equals the backup point, row by row — for
SQLite, PostgreSQL, MariaDB and a folder; full and incremental; with and without encryption."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backups.engine.chunking import ChunkSizes
from backups.engine.records import WriteStats
from backups.engine.repository import Repository, RepositoryError
from backups.engine.s3 import S3Storage
from backups.engine.storage import LocalStorage
from backups.engine.targets import (
    DirectoryTarget,
    MySQLTarget,
    PostgreSQLTarget,
    SQLiteTarget,
    TargetError,
    compare,
)
from tests.services import require_service

PASSPHRASE = b"correct horse battery staple"
SMALL_CHUNKS = ChunkSizes(16 * 1024, 64 * 1024, 256 * 1024)
SCRATCH = f"tocsin_backup_{os.getpid()}"


@pytest.fixture(
    params=[("local", None), ("local", PASSPHRASE), ("s3", None), ("s3", PASSPHRASE)],
    ids=["local-plain", "local-encrypted", "s3-plain", "s3-encrypted"],
)
def repository(request: Any, tmp_path: Path) -> Repository:
    where, passphrase = request.param
    if where == "s3":
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        storage = S3Storage(bucket, "repository", endpoint_url=endpoint)
    else:
        storage = LocalStorage(tmp_path / "repository")
    # Small chunks (64 KiB on average): the tables here are a few MB, and an incremental run
    # must find most of their chunks unchanged whatever random bytes the rows hold.
    return Repository.create(storage, passphrase, sizes=SMALL_CHUNKS)


def backup(repository: Repository, target: Any) -> tuple[str, WriteStats]:
    stats = WriteStats()
    streams, metadata = target.backup(repository, stats)
    return repository.commit(streams, metadata=metadata).id, stats


# ---- SQLite


def sqlite_rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as connection:
        return {
            "items": connection.execute("SELECT * FROM items ORDER BY id").fetchall(),
            "notes": connection.execute("SELECT * FROM notes ORDER BY id").fetchall(),
        }


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)")
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        connection.executemany(
            "INSERT INTO items (name, blob) VALUES (?, ?)",
            [(f"item {n}", os.urandom(2000)) for n in range(5000)],
        )
        connection.executemany("INSERT INTO notes (body) VALUES (?)", [("hello",), ("world",)])
    connection.close()
    return path


def test_sqlite_full_and_incremental_runs_each_restore_to_their_point(
    repository: Repository, sqlite_db: Path
):
    target = SQLiteTarget(sqlite_db)
    first_rows = sqlite_rows(sqlite_db)
    first, first_stats = backup(repository, target)
    with sqlite3.connect(sqlite_db) as connection:
        connection.execute("UPDATE items SET name = 'changed' WHERE id = 10")
        connection.execute("DELETE FROM notes WHERE id = 1")
        connection.execute("INSERT INTO notes (body) VALUES ('new')")
    connection.close()
    second_rows = sqlite_rows(sqlite_db)
    second, second_stats = backup(repository, target)
    assert second_stats.new_bytes < first_stats.new_bytes  # only what changed was stored again

    restored = SQLiteTarget(sqlite_db.parent / "restored.db")
    restored.restore(repository, repository.snapshot(first))
    assert sqlite_rows(restored.path) == first_rows
    assert compare(repository.snapshot(first).metadata["tables"], restored.inventory()) == []
    restored.restore(repository, repository.snapshot(second))  # over the first, in place
    assert sqlite_rows(restored.path) == second_rows
    # The first run still restores on its own after the second.
    SQLiteTarget(sqlite_db.parent / "again.db").restore(repository, repository.snapshot(first))
    assert sqlite_rows(sqlite_db.parent / "again.db") == first_rows


def test_an_unchanged_database_stores_nothing_new(repository: Repository, sqlite_db: Path):
    backup(repository, SQLiteTarget(sqlite_db))
    _second, stats = backup(repository, SQLiteTarget(sqlite_db))
    assert stats.bytes_read > 0 and stats.new_chunks == 0 and stats.new_bytes == 0


def test_the_manifest_holds_tables_row_counts_schema_and_versions(
    repository: Repository, sqlite_db: Path
):
    snapshot = repository.snapshot(backup(repository, SQLiteTarget(sqlite_db))[0])
    assert snapshot.metadata["tables"] == {"items": 5000, "notes": 2}
    assert any("CREATE TABLE items" in statement for statement in snapshot.metadata["schema"])
    assert snapshot.metadata["tool_versions"]["sqlite"] == sqlite3.sqlite_version
    stream = snapshot.streams[0]
    assert stream.size == sqlite_db.stat().st_size or stream.size > 0
    assert all(len(chunk.id) == 64 for chunk in stream.chunks)


def test_a_missing_database_file_is_a_clear_error(repository: Repository, tmp_path: Path):
    with pytest.raises(TargetError, match="does not exist"):
        backup(repository, SQLiteTarget(tmp_path / "nope.db"))


# ---- a folder


def test_a_folder_round_trips_with_modes_symlinks_and_nested_files(
    repository: Repository, tmp_path: Path
):
    source = tmp_path / "data"
    (source / "uploads" / "2026").mkdir(parents=True)
    (source / "config.yml").write_text("a: 1\n")
    (source / "uploads" / "2026" / "photo.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (source / "empty.txt").write_bytes(b"")
    (source / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(source / "run.sh", 0o750)
    os.symlink("config.yml", source / "current.yml")
    target = DirectoryTarget(source)
    before = target.inventory()
    first, _stats = backup(repository, target)
    (source / "config.yml").write_text("a: 2\n")
    (source / "uploads" / "2026" / "photo.bin").unlink()

    restored = DirectoryTarget(tmp_path / "restored")
    restored.restore(repository, repository.snapshot(first))
    assert restored.inventory() == before
    assert DirectoryTarget.inventory_of(repository.snapshot(first)) == before
    assert os.stat(restored.path / "run.sh").st_mode & 0o777 == 0o750
    assert os.readlink(restored.path / "current.yml") == "config.yml"


# ---- PostgreSQL


@pytest.fixture
def postgres_target() -> Iterator[PostgreSQLTarget]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    admin = PostgreSQLTarget("postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"{SCRATCH}_pg"
    PostgreSQLTarget(f"postgresql://postgres@127.0.0.1:5432/{name}").drop()
    target = admin.create_scratch(name)
    with target.connect(autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text, price numeric, data jsonb)"
        )
        connection.execute(
            "INSERT INTO items (name, price, data) "
            "SELECT 'item ' || n, n * 1.5, jsonb_build_object('n', n) "
            "FROM generate_series(1, 20000) n"
        )
        connection.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        connection.execute("INSERT INTO notes VALUES (1, 'hello'), (2, 'world')")
    yield target
    target.drop()


def pg_rows(target: PostgreSQLTarget) -> dict[str, list[tuple]]:
    with target.connect() as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("items", "notes")
        }


def test_postgresql_full_and_incremental_runs_each_restore_to_their_point(
    repository: Repository, postgres_target: PostgreSQLTarget
):
    first_rows = pg_rows(postgres_target)
    first, first_stats = backup(repository, postgres_target)
    with postgres_target.connect(autocommit=True) as connection:
        # The last rows: a changed row moves to the end of the table, and so of the dump.
        connection.execute("UPDATE items SET name = 'changed' WHERE id > 19900")
        connection.execute("DELETE FROM notes WHERE id = 1")
    second_rows = pg_rows(postgres_target)
    second, second_stats = backup(repository, postgres_target)
    assert second_stats.new_bytes < first_stats.new_bytes

    snapshot = repository.snapshot(first)
    assert snapshot.metadata["tables"] == {"public.items": 20000, "public.notes": 2}
    assert snapshot.metadata["tool_versions"]["pg_dump"].startswith("pg_dump")
    # Restored into the database itself: it is back at the first point, row by row.
    postgres_target.restore(repository, snapshot)
    assert pg_rows(postgres_target) == first_rows
    postgres_target.restore(repository, repository.snapshot(second))
    assert pg_rows(postgres_target) == second_rows


# ---- MariaDB


@pytest.fixture
def mariadb_target() -> Iterator[MySQLTarget]:
    require_service("MariaDB", "127.0.0.1", 3306)
    admin = MySQLTarget("mysql://root@127.0.0.1:3306/mysql")
    name = f"{SCRATCH}_my"
    MySQLTarget(f"mysql://root@127.0.0.1:3306/{name}").drop()
    target = admin.create_scratch(name)
    with target.connect() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE items (id int PRIMARY KEY, name text, payload blob)")
        cursor.executemany(
            "INSERT INTO items VALUES (%s, %s, %s)",
            [(n, f"item {n}", os.urandom(64)) for n in range(1, 3001)],
        )
        cursor.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        cursor.execute("INSERT INTO notes VALUES (1, 'hello'), (2, 'world')")
        connection.commit()
    yield target
    target.drop()


def my_rows(target: MySQLTarget) -> dict[str, tuple]:
    with target.connect() as connection, connection.cursor() as cursor:
        result = {}
        for table in ("items", "notes"):
            cursor.execute(f"SELECT * FROM {table} ORDER BY id")
            result[table] = cursor.fetchall()
        return result


def test_mariadb_full_and_incremental_runs_each_restore_to_their_point(
    repository: Repository, mariadb_target: MySQLTarget
):
    first_rows = my_rows(mariadb_target)
    first, first_stats = backup(repository, mariadb_target)
    with mariadb_target.connect() as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE items SET name = 'changed' WHERE id = 1500")
        cursor.execute("DELETE FROM notes WHERE id = 1")
        connection.commit()
    second_rows = my_rows(mariadb_target)
    second, second_stats = backup(repository, mariadb_target)
    assert second_stats.new_bytes < first_stats.new_bytes
    assert repository.snapshot(first).metadata["tables"] == {"items": 3000, "notes": 2}

    mariadb_target.restore(repository, repository.snapshot(first))
    assert my_rows(mariadb_target) == first_rows
    mariadb_target.restore(repository, repository.snapshot(second))
    assert my_rows(mariadb_target) == second_rows


def test_a_dump_tool_failure_is_a_clear_error_and_stores_no_snapshot(
    repository: Repository,
):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with pytest.raises(TargetError):
        backup(repository, PostgreSQLTarget("postgresql://postgres@127.0.0.1:5432/no_such_db_x"))
    assert repository.snapshot_ids() == []


# ---- keys


def test_an_encrypted_repository_opens_only_with_one_of_its_passphrases(
    tmp_path: Path, sqlite_db: Path
):
    storage = LocalStorage(tmp_path / "repository")
    repository = Repository.create(storage, PASSPHRASE)
    snapshot_id, _stats = backup(repository, SQLiteTarget(sqlite_db))
    with pytest.raises(RepositoryError, match="none of the configured backup keys"):
        Repository.open(storage, [b"wrong"])
    with pytest.raises(RepositoryError, match="encrypted"):
        Repository.open(storage, [])
    # Rotation: add the new passphrase, remove the old; nothing is re-encrypted.
    repository.add_passphrase(b"the new one")
    repository.remove_passphrase(PASSPHRASE)
    with pytest.raises(RepositoryError):
        Repository.open(storage, [PASSPHRASE])
    reopened = Repository.open(storage, [b"the new one"])
    SQLiteTarget(tmp_path / "r.db").restore(reopened, reopened.snapshot(snapshot_id))
    assert sqlite_rows(tmp_path / "r.db") == sqlite_rows(sqlite_db)
    with pytest.raises(RepositoryError, match="only passphrase"):
        reopened.remove_passphrase(b"the new one")


def test_encrypted_chunks_do_not_hold_the_plaintext(tmp_path: Path):
    storage = LocalStorage(tmp_path / "repository")
    repository = Repository.create(storage, PASSPHRASE)
    secret = b"TOP-SECRET-ROW " * 1000
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(secret)
    backup(repository, DirectoryTarget(tmp_path / "data"))
    for key, _size in storage.list("chunks/"):
        assert b"TOP-SECRET" not in storage.get(key)


def test_restored_databases_have_the_backup_points_columns_and_sample_rows(
    repository: Repository,
    postgres_target: PostgreSQLTarget,
    mariadb_target: MySQLTarget,
    sqlite_db: Path,
    tmp_path: Path,
):
    """What a restore drill compares besides row counts: each table's columns and a checksum
    of its first rows, recorded at the backup point and read again after the restore."""
    for target, scratch in (
        (postgres_target, lambda: postgres_target.create_scratch(f"{SCRATCH}_pg_fp")),
        (mariadb_target, lambda: mariadb_target.create_scratch(f"{SCRATCH}_my_fp")),
        (SQLiteTarget(sqlite_db), lambda: SQLiteTarget(tmp_path / "fp.db")),
    ):
        snapshot = repository.snapshot(backup(repository, target)[0])
        assert snapshot.metadata["samples"] and snapshot.metadata["columns"]
        restored = scratch()
        try:
            restored.restore(repository, snapshot)
            found = restored.fingerprint()
            assert found["columns"] == snapshot.metadata["columns"]
            assert found["samples"] == snapshot.metadata["samples"]
        finally:
            if hasattr(restored, "drop"):
                restored.drop()


@pytest.mark.parametrize(
    "dsn",
    [
        "mysql://app:pa%0A%5Bmysqldump%5D%0Aresult-file%3D%2Ftmp%2Fx@db/app",  # a line break
        "mysql://app:pa%22ss@db/app",  # a quote
        "mysql://app:ab/cd@db/app",  # an unencoded slash: the port would be "ab"
    ],
)
def test_a_mysql_dsn_that_could_add_options_or_does_not_parse_is_refused(dsn):
    with pytest.raises(TargetError):
        MySQLTarget(dsn)


def test_a_postgresql_dsn_with_an_unencoded_at_is_refused_not_misread():
    with pytest.raises(TargetError, match="percent-encode"):
        PostgreSQLTarget("postgresql://app:p@ss@db.internal:5432/billing")


def test_pg_dump_gets_the_dsns_tls_settings():
    env = PostgreSQLTarget(
        "postgresql://app:pw@localhost:5432/billing?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    ).tool_env()
    assert env["PGSSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == "/etc/ca.pem"
    assert env["PGPASSWORD"] == "pw" and env["PGDATABASE"] == "billing"
    # The outbound guard's checked address to connect to; TLS still verifies the name.
    assert env["PGHOST"] == "localhost" and env["PGHOSTADDR"] in ("127.0.0.1", "::1")
