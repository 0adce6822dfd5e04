"""Fixtures for the backup tests.

S3: ``s3_server`` runs moto's S3 as a real HTTP server inside the test process (one for the
session, on a free port of 127.0.0.1), so the storage code goes through botocore's whole stack —
signing, retries, pagination, HTTP — as it does against MinIO or AWS. ``s3_bucket`` gives each
test its own empty bucket on it and removes it afterwards.

Nothing here reaches the internet or reads ``~/.aws``: the server only listens on 127.0.0.1,
and ``s3_bucket`` (through ``aws_isolated``) points boto3's configuration at nothing for the
test.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

S3_REGION = "us-east-1"
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL (``http://127.0.0.1:<port>``) of an in-process moto S3 server."""
    from moto.server import ThreadedMotoServer  # imported here: only S3 tests pay for moto

    # werkzeug logs every request at INFO on stderr; a thousand of them say nothing.
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug_log.setLevel(level)


def _isolate_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials, no profile or config files, no instance metadata, no proxy for
    127.0.0.1 — for this test only (monkeypatch undoes it)."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_CA_BUNDLE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", S3_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1"])))


@pytest.fixture(scope="session")
def s3_admin(s3_server: str):  # -> a botocore S3 client
    """A plain boto3 client for ``s3_server``, to arrange or inspect buckets directly (one for
    the session: building a client costs a few tenths of a second)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate_aws(monkeypatch)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=s3_server,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
        )


@pytest.fixture
def aws_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 on its own for this test: dummy credentials, no ``~/.aws``, no instance metadata
    (also for tests that build an S3Storage without a server)."""
    _isolate_aws(monkeypatch)


@pytest.fixture
def s3_bucket(s3_server: str, s3_admin, aws_isolated: None) -> Iterator[tuple[str, str]]:
    """``(endpoint_url, bucket_name)`` of a new, empty bucket on ``s3_server``, emptied and
    deleted after the test (moto keeps objects in memory)."""
    client = s3_admin
    bucket = f"tocsin-test-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=bucket)
    yield s3_server, bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


# ---- plans on the database (the Django side) -----------------------------------------------


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Path:
    """A SQLite database of about 4 MB (several chunks) to back up."""
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)")
        connection.executemany(
            "INSERT INTO items (name, blob) VALUES (?, ?)",
            [(f"item {n}", os.urandom(1000)) for n in range(4000)],
        )
    connection.close()
    return path


@pytest.fixture
def plan(crew: Any, tmp_path: Path, sqlite_source: Path) -> Any:
    """A plan of ``crew.team``: the SQLite source to a local folder, unencrypted."""
    from backups.models import BackupPlan, BackupStorage, BackupTarget, StorageKind, TargetKind
    from monitoring.models import Service

    service = Service.objects.create(team=crew.team, name="Billing DB", slug="billing-db")
    target = BackupTarget.objects.create(
        team=crew.team, name="billing", kind=TargetKind.SQLITE, path=str(sqlite_source)
    )
    storage = BackupStorage.objects.create(
        team=crew.team,
        name="local",
        kind=StorageKind.LOCAL,
        path=str(tmp_path / "repository"),
        encrypted=False,
    )
    return BackupPlan.objects.create(
        service=service, name="Nightly", target=target, storage=storage
    )
