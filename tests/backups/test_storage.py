"""The Storage protocol, held to the same behaviour by a local folder and by S3 (moto's real HTTP
server, see conftest.py): round trips, overwrites, deletes, missing objects, listing, key rules,
usage, descriptions without secrets — plus what is particular to each."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import IncompleteReadError
from botocore.stub import Stubber

from backups.engine.s3 import S3Storage
from backups.engine.storage import LocalStorage, ObjectMissing, Storage, StorageError

# boto3 never reads ~/.aws or asks instance metadata here, even without a server.
pytestmark = pytest.mark.usefixtures("aws_isolated")

SECRET = "sEcReT-kEy-that-must-never-show-9f3a7c"


def make_s3(endpoint_url: str, bucket: str, **kwargs) -> S3Storage:
    options = {
        "prefix": "repo",
        "endpoint_url": endpoint_url,
        "access_key": "testing",
        "secret_key": SECRET,  # moto accepts any signature; a distinctive one to look for
    }
    return S3Storage(bucket, **(options | kwargs))


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "repo")
    endpoint_url, bucket = request.getfixturevalue("s3_bucket")
    return make_s3(endpoint_url, bucket)


@pytest.fixture
def s3(s3_bucket: tuple[str, str]) -> S3Storage:
    return make_s3(*s3_bucket)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the protocol, for both -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", bytes(range(256)) * 4, os.urandom(5 * 1024 * 1024)],
    ids=["empty", "binary", "5MB"],
)
def test_put_then_get_returns_the_same_bytes(storage: Storage, data: bytes) -> None:
    storage.put("chunks/ab/abcdef", data)

    assert storage.get("chunks/ab/abcdef") == data
    assert list(storage.list("chunks/")) == [("chunks/ab/abcdef", len(data))]


def test_put_replaces_the_object(storage: Storage) -> None:
    storage.put("snapshots/1", b"first version, longer")
    storage.put("snapshots/1", b"second")

    assert storage.get("snapshots/1") == b"second"
    assert list(storage.list("snapshots/")) == [("snapshots/1", 6)]


def test_exists(storage: Storage) -> None:
    assert not storage.exists("snapshots/1")
    storage.put("snapshots/1", b"x")
    assert storage.exists("snapshots/1")
    assert not storage.exists("snapshots/2")
    assert not storage.exists("snapshots")  # a "folder" is not an object


def test_delete_is_idempotent(storage: Storage) -> None:
    storage.put("snapshots/1", b"x")
    storage.put("snapshots/2", b"y")

    storage.delete("snapshots/1")
    storage.delete("snapshots/1")
    storage.delete("never/written")

    assert not storage.exists("snapshots/1")
    assert storage.get("snapshots/2") == b"y"


def test_get_of_a_missing_object_raises_object_missing(storage: Storage) -> None:
    with pytest.raises(ObjectMissing, match="chunks/00/0000"):
        storage.get("chunks/00/0000")
    storage.put("chunks/00/0000", b"x")
    storage.delete("chunks/00/0000")
    with pytest.raises(ObjectMissing):
        storage.get("chunks/00/0000")
    assert issubclass(ObjectMissing, StorageError)


def test_list_returns_the_keys_under_a_prefix_with_their_sizes(storage: Storage) -> None:
    objects = {
        "chunks/ab/ab01": b"1",
        "chunks/ab/ab02": b"22",
        "chunks/ab/sub/ab03": b"333",
        "chunks/abc": b"4444",
        "chunks/ac/ac01": b"55555",
        "config": b"666666",
        "snapshots/2024-01-01": b"7777777",
    }
    for key, data in objects.items():
        storage.put(key, data)

    def listed(prefix: str) -> list[tuple[str, int]]:
        return list(storage.list(prefix))

    assert listed("chunks/ab/") == [
        ("chunks/ab/ab01", 1),
        ("chunks/ab/ab02", 2),
        ("chunks/ab/sub/ab03", 3),
    ]
    # a prefix is a prefix of the key, not a folder
    assert [key for key, _ in listed("chunks/ab")] == [
        "chunks/ab/ab01",
        "chunks/ab/ab02",
        "chunks/ab/sub/ab03",
        "chunks/abc",
    ]
    assert listed("chunks/ac/ac01") == [("chunks/ac/ac01", 5)]
    assert listed("snapshots/") == [("snapshots/2024-01-01", 7)]
    assert listed("nothing/") == []
    assert listed("") == sorted((key, len(data)) for key, data in objects.items())


@pytest.mark.parametrize("key", ["../x", "a//b", "", "/a", "a/", "a/./b", "a/../b", ".."])
def test_invalid_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        storage.put(key, b"x")
    with pytest.raises(StorageError, match="invalid object key"):
        storage.get(key)
    with pytest.raises(StorageError, match="invalid object key"):
        storage.exists(key)
    with pytest.raises(StorageError, match="invalid object key"):
        storage.delete(key)
    assert list(storage.list("")) == []


def test_describe_names_the_place_without_secrets(storage: Storage) -> None:
    description = storage.describe()
    assert description
    assert SECRET not in description
    assert SECRET not in repr(storage)
    with pytest.raises(ObjectMissing) as missing:
        storage.get("chunks/00/0000")
    assert SECRET not in str(missing.value)


# -- LocalStorage -----------------------------------------------------------------------------


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.startswith(".tmp-")]


def test_local_write_under_a_file_fails_cleanly(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("chunks", b"a file where a folder is wanted")

    with pytest.raises(StorageError, match="cannot write chunks/ab/abcd"):
        storage.put("chunks/ab/abcd", b"data")

    assert leftovers(tmp_path) == []
    assert storage.get("chunks") == b"a file where a folder is wanted"


def test_local_write_failing_after_the_temporary_file_removes_it(tmp_path: Path) -> None:
    # The temporary file is written, then renaming it over a non-empty folder fails (EISDIR,
    # root or not): the failure must not leave the temporary file behind.
    storage = LocalStorage(tmp_path)
    storage.put("snapshots/1/inner", b"x")

    with pytest.raises(StorageError, match="cannot write snapshots/1"):
        storage.put("snapshots/1", b"data")

    assert leftovers(tmp_path) == []
    assert list(storage.list("")) == [("snapshots/1/inner", 1)]


def test_local_list_skips_writes_in_progress(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("chunks/ab/ab01", b"1")
    (tmp_path / "chunks" / "ab" / ".tmp-killed").write_bytes(b"half")

    assert list(storage.list("chunks/")) == [("chunks/ab/ab01", 1)]


def test_local_usage(tmp_path: Path) -> None:
    free, total = LocalStorage(tmp_path / "not-yet").usage()

    assert isinstance(free, int)
    assert isinstance(total, int)
    assert 0 <= free <= total
    assert total > 0


def test_local_describe(tmp_path: Path) -> None:
    assert LocalStorage(tmp_path).describe() == f"folder {tmp_path}"


# -- S3Storage --------------------------------------------------------------------------------


def test_s3_keys_live_under_the_prefix(s3_bucket: tuple[str, str], s3_admin) -> None:
    endpoint_url, bucket = s3_bucket
    client = s3_admin
    client.put_object(Bucket=bucket, Key="other/config", Body=b"not ours")
    client.put_object(Bucket=bucket, Key="repo-old/config", Body=b"not ours either")
    client.put_object(Bucket=bucket, Key="repo/chunks/", Body=b"")  # a console's "folder"
    storage = make_s3(endpoint_url, bucket, prefix="/repo/")

    storage.put("config", b"ours")

    assert storage.prefix == "repo/"
    stored = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert {item["Key"] for item in stored} >= {"repo/config"}
    assert list(storage.list("")) == [("config", 4)]
    assert not storage.exists("other/config")


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [("", ""), ("repo", "repo/"), ("repo/", "repo/"), ("/a/b/", "a/b/")],
)
def test_s3_prefix_is_normalised(prefix: str, normalised: str) -> None:
    assert S3Storage("bucket", prefix, endpoint_url="http://127.0.0.1:9").prefix == normalised


def test_s3_without_prefix_uses_the_bucket_root(s3_bucket: tuple[str, str], s3_admin) -> None:
    endpoint_url, bucket = s3_bucket
    storage = make_s3(endpoint_url, bucket, prefix="")

    storage.put("snapshots/1", b"x")

    assert s3_admin.get_object(Bucket=bucket, Key="snapshots/1")["Body"].read() == b"x"
    assert list(storage.list("snap")) == [("snapshots/1", 1)]


def test_s3_list_paginates_past_1000_objects(s3: S3Storage) -> None:
    keys = [f"chunks/{n % 7:02x}/{n:06d}" for n in range(1100)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: s3.put(key, key.encode()), keys))
    s3.put("config", b"c")

    listed = list(s3.list("chunks/"))

    assert listed == sorted((key, len(key)) for key in keys)
    assert len(list(s3.list("chunks/03/"))) == len([k for k in keys if k.startswith("chunks/03/")])


def test_s3_put_sends_the_md5_of_the_data(s3: S3Storage) -> None:
    sent: list[bytes | str | None] = []

    def capture(request, **kwargs) -> None:
        sent.append(request.headers.get("Content-MD5"))

    s3.client.meta.events.register("before-send.s3.PutObject", capture)
    data = os.urandom(1000)

    s3.put("chunks/ab/abcd", data)

    assert sent == [base64.b64encode(hashlib.md5(data).digest())]  # headers are bytes here


def test_s3_usage_is_unknown(s3: S3Storage) -> None:
    assert s3.usage() == (None, None)


def test_s3_describe(s3_bucket: tuple[str, str]) -> None:
    endpoint_url, bucket = s3_bucket
    assert make_s3(endpoint_url, bucket).describe() == f"s3://{bucket}/repo at {endpoint_url}"
    assert S3Storage("b", region="eu-west-3").describe() == "s3://b/ (AWS, eu-west-3)"
    with_userinfo = S3Storage("b", "p", endpoint_url="http://user:pw@127.0.0.1:9000")
    assert with_userinfo.describe() == "s3://b/p at http://127.0.0.1:9000"


def test_s3_get_from_a_missing_bucket_is_an_error_not_a_missing_object(
    s3_bucket: tuple[str, str],
) -> None:
    endpoint_url, bucket = s3_bucket
    storage = make_s3(endpoint_url, bucket + "-gone")

    with pytest.raises(StorageError, match="does not exist") as failure:
        storage.get("config")

    assert not isinstance(failure.value, ObjectMissing)
    assert bucket + "-gone" in str(failure.value)
    assert "config" in str(failure.value)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, "access denied"),
        ("InvalidAccessKeyId", 403, "access key is not known"),
        ("SignatureDoesNotMatch", 403, "secret key does not match"),
        ("InternalError", 500, "InternalError"),
    ],
)
def test_s3_errors_name_the_key_and_bucket(
    s3: S3Storage, code: str, status: int, expected: str
) -> None:
    with Stubber(s3.client) as stub:
        stub.add_client_error("get_object", code, http_status_code=status)
        with pytest.raises(StorageError) as failure:
            s3.get("chunks/ab/abcd")

    message = str(failure.value)
    assert not isinstance(failure.value, ObjectMissing)
    assert expected in message
    assert "chunks/ab/abcd" in message
    assert s3.bucket in message
    assert SECRET not in message


def test_s3_check_passes_and_leaves_nothing_behind(s3_bucket: tuple[str, str], s3_admin) -> None:
    endpoint_url, bucket = s3_bucket
    storage = make_s3(endpoint_url, bucket)

    storage.check()

    assert s3_admin.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_s3_check_of_a_missing_bucket(s3_bucket: tuple[str, str]) -> None:
    storage = make_s3(s3_bucket[0], "no-such-bucket-here")

    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        storage.check()


def test_s3_check_reports_access_denied(s3: S3Storage) -> None:
    with Stubber(s3.client) as stub:
        stub.add_client_error("put_object", "AccessDenied", http_status_code=403)
        with pytest.raises(StorageError, match=r"access denied \(could not write a test object"):
            s3.check()


def test_s3_check_of_an_unreachable_endpoint_fails_fast() -> None:
    endpoint_url = f"http://127.0.0.1:{closed_port()}"
    storage = S3Storage(
        "bucket",
        endpoint_url=endpoint_url,
        access_key="testing",
        secret_key=SECRET,
        max_attempts=1,
        connect_timeout=2,
    )
    started = time.monotonic()

    with pytest.raises(StorageError, match="endpoint unreachable") as failure:
        storage.check()

    assert time.monotonic() - started < 10
    assert endpoint_url in str(failure.value)
    assert SECRET not in str(failure.value)


def test_s3_get_asks_again_when_the_body_breaks_off(
    s3: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put("chunks/ab/abcd", b"whole")
    real_get_object = s3.client.get_object
    calls = []

    class BrokenBody:
        def read(self) -> bytes:
            raise IncompleteReadError(actual_bytes=2, expected_bytes=5)

        def close(self) -> None:
            pass

    def flaky_get_object(**kwargs):
        calls.append(kwargs["Key"])
        if len(calls) == 1:
            return {"Body": BrokenBody()}
        return real_get_object(**kwargs)

    monkeypatch.setattr(s3.client, "get_object", flaky_get_object)

    assert s3.get("chunks/ab/abcd") == b"whole"
    assert calls == ["repo/chunks/ab/abcd"] * 2


def test_create_writes_only_where_nothing_is(storage):
    assert storage.create("config", b"first") is True
    assert storage.create("config", b"second") is False
    assert storage.get("config") == b"first"
