"""SQL checks on SQLite read only files in the folders the operator allowed, never Tocsin's own
database (issue #14's spirit: a manager's check must not read what is not the team's). A check is
a manager's to configure and its result the team's to read; pointed at Tocsin's database it would
show every team's sessions, second factors and data."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from django.db import connection

from probes import kinds
from probes.kinds.base import InvalidConfig
from probes.kinds.sql import run_query

FOLDERS_MESSAGE = (
    "may only name a file in the folders the operator allowed (TOCSIN_PROBE_SQLITE_DIRS)"
)


def database(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE secrets (value text)")
        db.execute("INSERT INTO secrets VALUES ('the-secret')")
    db.close()
    return f"sqlite:///{path}"


def validate(dsn: str) -> None:
    kinds.get("sql").validate({"dsn": dsn, "query": "SELECT value FROM secrets"})


def read(dsn: str):
    return asyncio.run(run_query(dsn, "SELECT value FROM secrets", 3.0))


@pytest.fixture
def folders(tmp_path: Path, settings) -> tuple[Path, Path]:
    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    settings.TOCSIN_PROBE_SQLITE_DIRS = [str(allowed)]
    return allowed, elsewhere


def test_a_file_in_an_allowed_folder_is_read(folders) -> None:
    allowed, _ = folders
    dsn = database(allowed / "app.db")
    validate(dsn)
    assert read(dsn).value == "the-secret"


def test_files_elsewhere_are_refused_when_saved_and_when_run(folders, settings) -> None:
    allowed, elsewhere = folders
    outside = database(elsewhere / "other.db")
    (allowed / "link.db").symlink_to(elsewhere / "other.db")  # a link resolves first
    for dsn in (
        outside,
        f"sqlite:///{allowed}/link.db",
        f"sqlite:///{allowed}/../elsewhere/other.db",
    ):
        with pytest.raises(InvalidConfig) as caught:
            validate(dsn)
        assert caught.value.fields == {"dsn": FOLDERS_MESSAGE}
        seen = read(dsn)
        assert seen.value is None and not seen.connected
        assert seen.error == f"the SQLite file {FOLDERS_MESSAGE}"
    # Nothing is allowed until the operator names a folder.
    settings.TOCSIN_PROBE_SQLITE_DIRS = []
    with pytest.raises(InvalidConfig):
        validate(database(allowed / "fresh.db"))


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="Tocsin's own database is a SQLite file only here"
)
def test_tocsins_own_database_is_never_read(settings) -> None:
    own = Path(connection.settings_dict["NAME"]).resolve()
    settings.TOCSIN_PROBE_SQLITE_DIRS = [str(own.parent)]  # even inside an allowed folder
    for name in (own, Path(f"{own}-wal")):
        with pytest.raises(InvalidConfig) as caught:
            kinds.get("sql").validate({"dsn": f"sqlite:///{name}", "query": "SELECT 1"})
        assert caught.value.fields == {"dsn": "may not name Tocsin's own database"}
    seen = asyncio.run(run_query(f"sqlite:///{own}", "SELECT session_key FROM django_session", 3.0))
    assert seen.error == "the SQLite file may not name Tocsin's own database"
    assert seen.value is None
