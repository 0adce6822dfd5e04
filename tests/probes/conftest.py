"""Fixtures for the probes tests: the test PKI and real servers, started once per session.

``run_check`` validates a config and runs it the way the scheduler will (one event loop per
call here, so each test closes the pooled HTTP clients it made). ``require_service`` skips
locally when PostgreSQL, MariaDB or Redis is not running, and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from probes import kinds
from probes.kinds import http as http_kind
from probes.kinds.base import Observation
from tests.probes.servers import CA, HTTPServer, Issued, server_context
from tests.services import require_service


def run_check(kind: str, config: dict[str, Any], timeout: float = 2.0) -> Observation:
    module = kinds.get(kind)
    clean = module.validate(config)

    async def once() -> Observation:
        try:
            return await module.observe(clean, timeout)
        finally:
            await http_kind.close_clients()

    return asyncio.run(once())


class PKI:
    def __init__(self) -> None:
        self.ca = CA.create()
        self.other_ca = CA.create("Somebody Else's CA")
        self.valid = self.ca.issue()
        self.expired = self.ca.issue(expired=True)
        self.wrong_host = self.ca.issue(("other.example",))
        self.client = self.ca.issue((), client=True, common_name="probe-client")
        self.foreign_client = self.other_ca.issue((), client=True, common_name="stranger")


@pytest.fixture(scope="session")
def pki() -> PKI:
    return PKI()


def _serve(host: str = "127.0.0.1", issued: Issued | None = None, **kwargs: Any) -> HTTPServer:
    return HTTPServer(host, server_context(issued, **kwargs) if issued else None)


def _session_server(options: Callable[[PKI], dict[str, Any]]) -> Any:
    """A session fixture serving HTTP(S) with ``options(pki)`` (issued=…, client_ca=…)."""

    @pytest.fixture(scope="session")
    def fixture(pki: PKI) -> Iterator[HTTPServer]:
        server = _serve(**options(pki))
        yield server
        server.stop()

    return fixture


http_server = _session_server(lambda pki: {})
https_server = _session_server(lambda pki: {"issued": pki.valid})
expired_server = _session_server(lambda pki: {"issued": pki.expired})
wrong_host_server = _session_server(lambda pki: {"issued": pki.wrong_host})
# requires a client certificate issued by the test CA
mtls_server = _session_server(lambda pki: {"issued": pki.valid, "client_ca": pki.ca})


@pytest.fixture(scope="session")
def ipv6_server() -> Iterator[HTTPServer]:
    try:
        server = _serve("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    yield server
    server.stop()


# ---- scratch databases -------------------------------------------------------------------

SCRATCH = f"tocsin_probe_{os.getpid()}"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A scratch PostgreSQL database with ``items`` (3 rows), dropped after the session."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        connection.execute(f"CREATE DATABASE {SCRATCH}")
    dsn = f"postgresql://postgres@127.0.0.1:5432/{SCRATCH}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE items (id serial PRIMARY KEY, name text, price numeric)")
        connection.execute("INSERT INTO items (name, price) VALUES ('a', 1.5), ('b', 2), ('c', 3)")
    yield dsn
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


@pytest.fixture(scope="session")
def mariadb_dsn() -> Iterator[str]:
    """A scratch MariaDB database with ``items`` (3 rows), dropped after the session."""
    require_service("MariaDB", "127.0.0.1", 3306)
    import pymysql

    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        cursor.execute(f"CREATE DATABASE {SCRATCH}")
        cursor.execute(f"CREATE TABLE {SCRATCH}.items (id int PRIMARY KEY, name text)")
        cursor.execute(f"INSERT INTO {SCRATCH}.items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    yield f"mysql://root@127.0.0.1:3306/{SCRATCH}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
    connection.close()


@pytest.fixture
def sqlite_dsn(tmp_path: Any) -> str:
    """A temporary SQLite file with ``items`` (3 rows)."""
    import sqlite3

    path = tmp_path / "probe.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id integer PRIMARY KEY, name text)")
        connection.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",), ("c",)])
    connection.close()
    return f"sqlite:///{path}"
