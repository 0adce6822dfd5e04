"""The SQL check kind on real PostgreSQL, MariaDB and SQLite databases."""

from __future__ import annotations

import pytest

from probes import kinds
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import run_check
from tests.probes.servers import free_port


def query(dsn: str, sql: str, timeout: float = 3.0):
    return run_check("sql", {"dsn": dsn, "query": sql}, timeout=timeout)


# ---- PostgreSQL --------------------------------------------------------------------------


def test_postgresql_reports_the_first_value(postgres_dsn: str) -> None:
    seen = query(postgres_dsn, "SELECT count(*), max(name) FROM items")

    assert seen.reached, seen.error
    assert seen.values["VALUE"] == 3
    assert seen.values["CONNECTED"] is True
    assert seen.values["RESPONSE_TIME"] > 0
    assert seen.details["row"] == [3, "c"]
    assert seen.details["columns"] == ["count", "max"]
    assert seen.details["engine"] == "postgresql"


def test_postgresql_turns_numerics_into_numbers(postgres_dsn: str) -> None:
    assert query(postgres_dsn, "SELECT sum(price) FROM items").values["VALUE"] == 6.5


def test_postgresql_refuses_to_write(postgres_dsn: str) -> None:
    seen = query(postgres_dsn, "INSERT INTO items (name) VALUES ('x') RETURNING id")

    assert not seen.reached
    assert (
        seen.error == "the query tried to write: cannot execute INSERT in a read-only transaction"
    )
    assert query(postgres_dsn, "SELECT count(*) FROM items").values["VALUE"] == 3


def test_postgresql_honours_the_statement_timeout(postgres_dsn: str) -> None:
    seen = query(postgres_dsn, "SELECT pg_sleep(3)", timeout=0.4)

    assert not seen.reached
    assert "0.4 s" in seen.error
    assert seen.values["RESPONSE_TIME"] < 2000


def test_postgresql_reports_a_broken_query(postgres_dsn: str) -> None:
    seen = query(postgres_dsn, "SELECT nope FROM items")

    assert not seen.reached
    assert seen.error == 'query failed: column "nope" does not exist'


def test_postgresql_reports_connection_refused() -> None:
    port = free_port()

    seen = query(f"postgresql://postgres@127.0.0.1:{port}/postgres", "SELECT 1")

    assert not seen.reached
    assert seen.error.startswith("cannot connect:")
    assert "Connection refused" in seen.error
    assert seen.values["CONNECTED"] is False


def test_postgresql_reports_a_missing_database(postgres_dsn: str) -> None:
    seen = query(postgres_dsn + "_missing", "SELECT 1")

    assert not seen.reached
    assert seen.error.startswith("cannot connect:")
    assert "does not exist" in seen.error


# ---- MariaDB -----------------------------------------------------------------------------


def test_mariadb_reports_the_first_value(mariadb_dsn: str) -> None:
    seen = query(mariadb_dsn, "SELECT count(*), max(name) FROM items")

    assert seen.reached, seen.error
    assert seen.values["VALUE"] == 3
    assert seen.details["row"] == [3, "c"]
    assert seen.details["engine"] == "mysql"


def test_mariadb_refuses_to_write(mariadb_dsn: str) -> None:
    seen = query(mariadb_dsn, "INSERT INTO items VALUES (9, 'x')")

    assert not seen.reached
    assert seen.error.startswith("the query tried to write:")
    assert query(mariadb_dsn, "SELECT count(*) FROM items").values["VALUE"] == 3


def test_mariadb_honours_the_statement_timeout(mariadb_dsn: str) -> None:
    seen = query(mariadb_dsn, "SELECT SLEEP(3) FROM items", timeout=0.4)

    assert not seen.reached
    assert "0.4 s" in seen.error
    assert seen.values["RESPONSE_TIME"] < 2000


def test_mariadb_reports_a_broken_query(mariadb_dsn: str) -> None:
    seen = query(mariadb_dsn, "SELECT nope FROM items")

    assert not seen.reached
    assert seen.error.startswith("query failed: (1054) Unknown column 'nope'")


def test_mariadb_reports_connection_refused() -> None:
    seen = query(f"mysql://root@127.0.0.1:{free_port()}/test", "SELECT 1")

    assert not seen.reached
    assert seen.error.startswith("cannot connect: Can't connect to")
    assert "Connection refused" in seen.error


def test_mariadb_reports_a_missing_database(mariadb_dsn: str) -> None:
    seen = query(mariadb_dsn + "_missing", "SELECT 1")

    assert not seen.reached
    assert seen.error.startswith("cannot connect: (1049) Unknown database")


# ---- SQLite ------------------------------------------------------------------------------


def test_sqlite_reports_the_first_value(sqlite_dsn: str) -> None:
    seen = query(sqlite_dsn, "SELECT count(*) FROM items")

    assert seen.reached, seen.error
    assert seen.values["VALUE"] == 3
    assert seen.details["engine"] == "sqlite"


def test_sqlite_refuses_to_write(sqlite_dsn: str) -> None:
    seen = query(sqlite_dsn, "DELETE FROM items")

    assert not seen.reached
    assert seen.error.startswith("the query tried to write:")
    assert query(sqlite_dsn, "SELECT count(*) FROM items").values["VALUE"] == 3


def test_sqlite_honours_the_statement_timeout(sqlite_dsn: str) -> None:
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    )

    seen = query(sqlite_dsn, endless, timeout=0.3)

    assert not seen.reached
    assert "0.3 s" in seen.error


def test_sqlite_reports_a_missing_file(tmp_path) -> None:
    seen = query(f"sqlite:///{tmp_path}/missing.db", "SELECT 1")

    assert not seen.reached
    assert seen.error.startswith("cannot open the database file")
    assert not (tmp_path / "missing.db").exists()


def test_an_empty_result_has_no_value(sqlite_dsn: str) -> None:
    seen = query(sqlite_dsn, "SELECT name FROM items WHERE id = 99")

    assert seen.reached
    assert seen.values["VALUE"] is None


# ---- config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("oracle://db/x", "must start with postgresql://, mysql://, mariadb:// or sqlite:///"),
        ("sqlite:relative.db", "must name a file: sqlite:////absolute/path.db"),
        ("mysql://root@db:3306", "must name a database: mysql://user:password@host:3306/database"),
        ("postgresql://db:99999/x", "has a bad port"),
    ],
)
def test_it_validates_the_dsn_scheme(dsn: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("sql").validate({"dsn": dsn, "query": "SELECT 1"})

    assert caught.value.fields == {"dsn": message}


def test_it_requires_a_query() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("sql").validate({"dsn": "sqlite:////tmp/x.db"})

    assert caught.value.fields == {"query": "is required"}
