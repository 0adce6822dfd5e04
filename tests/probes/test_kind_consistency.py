"""The consistency kind: two real sources (databases, an HTTP JSON API) compared."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pymysql
import pytest

from probes import conditions, kinds
from probes.kinds.base import InvalidConfig, Observation
from tests.probes.conftest import run_check
from tests.probes.servers import HTTPServer, free_port

COUNT = "SELECT count(*) FROM items"


def sqlite_db(path: Path, rows: int) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id integer PRIMARY KEY)")
        connection.executemany("INSERT INTO items VALUES (?)", [(i,) for i in range(rows)])
    connection.close()
    return f"sqlite:///{path}"


def passes(config: dict, seen: Observation) -> bool:
    clean = kinds.get("consistency").validate(config)
    parsed = [conditions.parse(text) for text in kinds.conditions_for("consistency", clean)]
    return seen.reached and all(conditions.evaluate_all(parsed, seen.values))


def test_it_catches_a_drift_between_two_databases_and_recovers(
    postgres_dsn: str, mariadb_dsn: str
) -> None:
    config = {
        "a": {"kind": "sql", "dsn": postgres_dsn, "query": COUNT},
        "b": {"kind": "sql", "dsn": mariadb_dsn, "query": COUNT},
    }
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    database = mariadb_dsn.rsplit("/", 1)[1]

    agreeing = run_check("consistency", config)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"INSERT INTO {database}.items VALUES (100, 'drift'), (101, 'more')")
        drifted = run_check("consistency", config)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DELETE FROM {database}.items WHERE id >= 100")
        admin.close()
    recovered = run_check("consistency", config)

    assert agreeing.reached, agreeing.error
    assert agreeing.values["VALUE"] == 0
    assert passes(config, agreeing)
    assert drifted.reached, drifted.error
    assert drifted.values["VALUE"] == 2
    assert drifted.details["a"] == 3
    assert drifted.details["b"] == 5
    assert drifted.details["difference"] == -2
    assert drifted.excerpt == "a=3 b=5 difference=-2"
    assert not passes(config, drifted)
    assert passes(config, recovered)


def test_a_relative_tolerance_accepts_a_small_drift(tmp_path: Path) -> None:
    config = {
        "a": {"kind": "sql", "dsn": sqlite_db(tmp_path / "a.db", 100), "query": COUNT},
        "b": {"kind": "sql", "dsn": sqlite_db(tmp_path / "b.db", 98), "query": COUNT},
        "tolerance": 5,
        "tolerance_mode": "relative",
    }

    seen = run_check("consistency", config)

    assert seen.values["VALUE"] == 2.0  # percent of the larger value
    assert seen.details["difference"] == 2
    assert seen.details["within_tolerance"] is True
    assert kinds.conditions_for("consistency", config) == ["[VALUE] <= 5"]
    assert passes(config, seen)


def test_an_absolute_tolerance_rejects_a_larger_drift(tmp_path: Path) -> None:
    config = {
        "a": {"kind": "sql", "dsn": sqlite_db(tmp_path / "a.db", 10), "query": COUNT},
        "b": {"kind": "sql", "dsn": sqlite_db(tmp_path / "b.db", 6), "query": COUNT},
        "tolerance": 3,
    }

    seen = run_check("consistency", config)

    assert seen.values["VALUE"] == 4
    assert seen.details["within_tolerance"] is False
    assert not passes(config, seen)


def test_it_compares_an_http_json_value_with_a_sql_value(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    config = {
        "a": {"kind": "http", "url": http_server.url("/json"), "json_path": "count"},
        "b": {"kind": "sql", "dsn": sqlite_db(tmp_path / "b.db", 40), "query": COUNT},
    }

    seen = run_check("consistency", config)

    assert seen.reached, seen.error
    assert seen.details["a"] == 42
    assert seen.details["b"] == 40
    assert seen.values["VALUE"] == 2


def test_it_is_unreached_when_a_source_fails(http_server: HTTPServer, tmp_path: Path) -> None:
    port = free_port()
    config = {
        "a": {"kind": "http", "url": f"http://127.0.0.1:{port}/", "json_path": "count"},
        "b": {"kind": "sql", "dsn": sqlite_db(tmp_path / "b.db", 1), "query": COUNT},
    }

    seen = run_check("consistency", config)

    assert not seen.reached
    assert seen.error == f"a (http): connection refused by 127.0.0.1:{port}"
    assert seen.details["b"] == 1
    assert "VALUE" not in seen.values


def test_it_names_a_missing_json_path_and_a_non_number(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    config = {
        "a": {"kind": "http", "url": http_server.url("/json"), "json_path": "total"},
        "b": {"kind": "sql", "dsn": sqlite_db(tmp_path / "b.db", 1), "query": "SELECT 'many'"},
    }

    seen = run_check("consistency", config)

    assert not seen.reached
    assert seen.error.startswith("a (http): no such path: total")
    assert "b (sql): 'many' is not a number" in seen.error


def test_it_names_every_wrong_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("consistency").validate(
            {
                "a": {"kind": "sql", "dsn": "oracle://x", "query": ""},
                "b": {"kind": "http", "url": "http://x", "json_path": "data..count"},
                "tolerance": -1,
                "tolerance_mode": "roughly",
            }
        )

    assert set(caught.value.fields) == {
        "a.dsn",
        "a.query",
        "b.json_path",
        "tolerance",
        "tolerance_mode",
    }
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("consistency").validate({"a": {"kind": "ftp"}})
    assert caught.value.fields == {
        "a.kind": "must be sql or http",
        "b": 'must be a source: {"kind": "sql", …} or {"kind": "http", …}',
    }
