# ruff: noqa: F401, F811  (pytest fixtures imported from tests.tocsin.outbound_support)
"""The outbound guard (issue #14): probes, backup storage and targets, database collectors.

Each is pointed at 127.0.0.1, [::1], 169.254.169.254, 10.0.0.1 and ``localhost`` with the guard
as shipped and must come back refused, with the guard's reason, without a socket having been
connected there (Python's ``socket.connect`` audit event; libpq's C connect raises none, so for
PostgreSQL the guard's error itself shows it decided before psycopg was called). Loopback
targets are real listeners: a guard that let them through would be seen connecting.
"""

from __future__ import annotations

import contextlib

import pytest

from backups.engine.s3 import S3Storage
from backups.engine.storage import StorageError
from backups.engine.targets import MySQLTarget, PostgreSQLTarget, TargetError
from monitoring.databases.collectors import collect
from tests.probes.conftest import run_check
from tests.tocsin.outbound_support import (
    GUARD,
    REFUSED,
    connections,
    guarded,
    left_loopback,
    receiver,
    touched,
)

LOCAL = ("127.0.0.1", "::1", "localhost")


def _port(address: str, receiver) -> int:
    # Loopback: a real listener. Elsewhere: a port nothing could answer on anyway.
    return receiver.port if address in LOCAL else 9


def _refused(error: str, reason: str) -> bool:
    return GUARD in error and reason in error


# ---- probes ---------------------------------------------------------------------------------


def _probe_configs(host: str, address: str, port: int) -> dict[str, dict]:
    configs = {
        "http": {"url": f"http://{host}:{port}/health"},
        "tcp": {"host": address, "port": port},
        "tls": {"host": address, "port": port},
        "redis": {"url": f"redis://{host}:{port}/0"},
        "sql-postgresql": {
            "dsn": f"postgresql://probe:secret@{host}:{port}/app",
            "query": "SELECT 1",
        },
        "sql-mysql": {"dsn": f"mysql://probe:secret@{host}:{port}/app", "query": "SELECT 1"},
        "icmp": {"host": address},
    }
    if address != "localhost":  # a DNS check's nameserver is an address
        configs["dns"] = {"name": "example.org", "nameserver": f"{host}:{port}"}
    return configs


@pytest.mark.parametrize(("host", "address", "reason"), REFUSED)
def test_every_probe_kind_refuses(guarded, receiver, connections, host, address, reason) -> None:
    port = _port(address, receiver)
    for name, config in _probe_configs(host, address, port).items():
        kind = name.split("-")[0]
        seen = run_check(kind, config, timeout=1.0)
        assert not seen.reached, name
        assert _refused(seen.error, reason), (name, seen.error)
    assert receiver.requests == []
    assert not touched(connections, address)
    assert left_loopback(connections) == []


def test_the_probe_allow_list_lets_a_managers_check_reach_a_private_address(
    guarded, receiver, connections
) -> None:
    guarded.TOCSIN_PROBE_ALLOW = ["127.0.0.1/32"]
    seen = run_check("http", {"url": receiver.url(path="/health")})
    assert seen.reached and seen.values["STATUS"] == 200, seen.error
    seen = run_check("tcp", {"host": "127.0.0.1", "port": receiver.port})
    assert seen.reached, seen.error
    assert [r[1] for r in receiver.requests] == ["/health"]
    # Not for channels: the probes' list is the probes' own.
    from incidents.notifications.channels import post_json

    assert GUARD in post_json(receiver.url(), b"{}").error


def test_a_redirect_to_a_refused_address_is_refused_too(guarded, receiver) -> None:
    guarded.TOCSIN_PROBE_ALLOW = ["127.0.0.1/32"]
    # httpbin-style: the receiver answers 200 to everything, so build the redirect by hand.
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        seen = run_check("http", {"url": url, "follow_redirects": True})
    finally:
        server.shutdown()
        server.server_close()
    assert _refused(seen.error, "169.254.169.254 is a cloud metadata address"), seen.error


# ---- backups -------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "address", "reason"), REFUSED)
def test_backup_storage_and_targets_refuse(
    guarded, receiver, connections, host, address, reason
) -> None:
    port = _port(address, receiver)
    storage = S3Storage(
        "bucket",
        endpoint_url=f"http://{host}:{port}",
        access_key="access",
        secret_key="secret-key",
        max_attempts=1,
        connect_timeout=1,
    )
    with pytest.raises(StorageError) as caught:
        storage.put("objects/one", b"data")
    assert _refused(str(caught.value), reason), caught.value

    for target in (
        PostgreSQLTarget(f"postgresql://backup:secret@{host}:{port}/app"),
        MySQLTarget(f"mysql://backup:secret@{host}:{port}/app"),
    ):
        with pytest.raises(TargetError) as caught:
            target.connect()
        assert _refused(str(caught.value), reason), caught.value
    with pytest.raises(TargetError) as caught:
        PostgreSQLTarget(f"postgresql://backup:secret@{host}:{port}/app").tool_env()
    assert _refused(str(caught.value), reason)
    assert receiver.requests == []
    assert not touched(connections, address)
    assert left_loopback(connections) == []


def test_backup_storage_at_an_allow_listed_address_is_reached(guarded, receiver) -> None:
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    storage = S3Storage(
        "bucket",
        endpoint_url=receiver.url(path=""),
        access_key="access",
        secret_key="secret-key",
        max_attempts=1,
    )
    with contextlib.suppress(StorageError):  # no S3 server: that it was asked is what counts
        storage.put("objects/one", b"data")
    assert {r[:2] for r in receiver.requests} == {("PUT", "/bucket/objects/one")}


def test_backup_storage_whose_name_does_not_resolve_is_refused(guarded, connections) -> None:
    """Fail closed: botocore looks the name up again itself, and a rebinding resolver can
    answer the guard's lookup with an error and botocore's with a private address."""
    storage = S3Storage(
        "bucket",
        endpoint_url="http://storage.does-not-exist.invalid:9000",
        access_key="access",
        secret_key="secret-key",
        max_attempts=1,
        connect_timeout=1,
    )
    with pytest.raises(StorageError) as caught:
        storage.put("objects/one", b"data")
    assert "storage.does-not-exist.invalid does not resolve" in str(caught.value)
    assert left_loopback(connections) == []


# ---- database-health collectors ------------------------------------------------------------


@pytest.mark.parametrize(("host", "address", "reason"), REFUSED)
def test_database_collectors_refuse(guarded, receiver, connections, host, address, reason):
    port = _port(address, receiver)
    for kind, dsn in [
        ("postgresql", f"postgresql://monitor:secret@{host}:{port}/app"),
        ("mysql", f"mysql://monitor:secret@{host}:{port}/app"),
        ("redis", f"redis://{host}:{port}/0"),
    ]:
        reading = collect(kind, dsn)
        assert _refused(reading.error, reason), (kind, reading.error)
    assert not touched(connections, address)
    assert left_loopback(connections) == []


def test_a_collector_reaches_an_allow_listed_address(guarded, receiver, connections) -> None:
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    reading = collect("redis", f"redis://127.0.0.1:{receiver.port}/0")
    assert GUARD not in reading.error  # it connected (an HTTP server is no Redis)
    assert touched(connections, "127.0.0.1", receiver.port)


def test_tocsins_own_database_is_not_guarded(guarded) -> None:
    from backups.models import own_database

    target = own_database()
    assert getattr(target, "guarded", False) is False
