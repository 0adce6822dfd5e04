"""Objects in S3-compatible storage (AWS S3, MinIO, Garage, Ceph RGW, Backblaze B2, R2, …).

Each object is one PutObject: S3 makes a PUT visible only once it is complete, so writes are
atomic without temporary names. Every PUT carries a ``Content-MD5`` of the bytes, which the
server checks: data corrupted on the way is refused (``BadDigest``) instead of stored.

botocore's newer default "flexible checksums" (CRC32, sent as an ``aws-chunked`` trailer over
HTTPS) are switched to "when required": several S3-compatible servers reject or mis-store such
uploads, while ``Content-MD5`` is understood by all of them.

Keys are validated as :class:`~backups.engine.storage.LocalStorage` validates them (no empty,
``.`` or ``..`` parts), so a repository can be copied between a folder and a bucket as is.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

from tocsin import outbound

from .storage import ObjectMissing, StorageError

# Failures while reading an object's body, after the server answered: botocore's retries do
# not cover them (the response was a success), so ``get`` asks again itself.
_BODY_FAILURES = (IncompleteReadError, ResponseStreamingError, ReadTimeoutError)
_BODY_ATTEMPTS = 3

T = TypeVar("T")

_ACCESS_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
}


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"invalid object key {key!r}")
    return key


def _content_md5(data: bytes) -> str:
    """The ``Content-MD5`` header value: base64 of the MD5 digest (not the hex ETag form)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def _without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part, for showing to people."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class OutboundRefused(BotoCoreError):
    """The outbound guard refused the endpoint: a BotoCoreError, so that every operation
    reports it like any other storage failure (and botocore does not retry it)."""

    fmt = "{reason}"


def _outbound_guard(request: Any, **kwargs: Any) -> None:
    """Check each request's host with the outbound guard before botocore connects.

    botocore resolves the name again itself: this check is not rebinding-proof the way the
    HTTP channels and probes are (docs/security-outbound.md), but it refuses an endpoint that
    names a loopback, private or metadata address, before any connection is opened.
    """
    parts = urlsplit(request.url)
    try:
        outbound.resolve(parts.hostname or "", parts.port)
    except outbound.Refused as exc:
        raise OutboundRefused(reason=str(exc)) from None
    except OSError as exc:
        # Fail closed: a name that does not resolve now might resolve to anything when botocore
        # looks it up a moment later (a rebinding trick answers the first lookup with an error).
        raise OutboundRefused(reason=f"{parts.hostname} does not resolve ({exc})") from None


class S3Storage:
    """Objects under ``prefix`` in one bucket of S3-compatible storage.

    ``access_key``/``secret_key`` left empty mean boto3's default credential chain (the
    ``AWS_*`` environment variables, ``~/.aws``, an instance or task role). ``path_style``
    (``endpoint/bucket/key``) is what most self-hosted servers want; AWS itself accepts both.
    ``max_attempts``, ``connect_timeout`` and ``read_timeout`` tune botocore's standard
    retries (exponential backoff with jitter on throttling, 5xx and connection errors).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        path_style: bool = True,
        max_attempts: int = 5,
        connect_timeout: float = 10,
        read_timeout: float = 60,
    ) -> None:
        if not bucket:
            raise StorageError("no bucket given")
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url or None
        self.region = region or "us-east-1"
        self._secret = secret_key  # only to scrub it from messages, should one ever echo it
        self._max_attempts = max(1, max_attempts)
        config = Config(
            retries={"mode": "standard", "max_attempts": self._max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,  # chunks are uploaded from several threads at once
            s3={"addressing_style": "path" if path_style else "virtual"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            # A session per storage: boto3's default session is not safe to share between
            # threads while clients are created; the client itself is thread-safe.
            self.client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=access_key or None,
                aws_secret_access_key=secret_key or None,
                config=config,
            )
        except (BotoCoreError, ValueError) as exc:
            raise StorageError(f"invalid S3 settings for {self.describe()}: {exc}") from exc
        self.client.meta.events.register("before-send.s3", _outbound_guard)

    def __repr__(self) -> str:
        return f"<S3Storage {self.describe()}>"

    # -- the Storage protocol -----------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        name = self.prefix + _check_key(key)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentMD5=_content_md5(data)
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, f"cannot write {key}") from exc

    def create(self, key: str, data: bytes) -> bool:
        """A conditional PUT (``If-None-Match: *``): S3 (since 2024) and compatible stores
        refuse it with 412 when the key exists."""
        name = self.prefix + _check_key(key)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentMD5=_content_md5(data),
                IfNoneMatch="*",
            )
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                return False
            raise self._failure(exc, f"cannot write {key}") from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"cannot write {key}") from exc
        return True

    def get(self, key: str) -> bytes:
        name = self.prefix + _check_key(key)
        for attempt in range(1, _BODY_ATTEMPTS + 1):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if _is_missing(exc):
                    raise ObjectMissing(f"{key} is missing from {self.describe()}") from None
                raise self._failure(exc, f"cannot read {key}") from exc
            except BotoCoreError as exc:
                raise self._failure(exc, f"cannot read {key}") from exc
            try:
                with closing(response["Body"]) as body:
                    return body.read()
            except _BODY_FAILURES as exc:
                if attempt == _BODY_ATTEMPTS:
                    raise self._failure(exc, f"cannot read {key}") from exc
            except BotoCoreError as exc:
                raise self._failure(exc, f"cannot read {key}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def exists(self, key: str) -> bool:
        # HEAD answers have no body: a missing bucket is a bare 404 too (check() tells them
        # apart).
        name = self.prefix + _check_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise self._failure(exc, f"cannot look for {key}") from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"cannot look for {key}") from exc
        return True

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that is not there; some compatible servers say NoSuchKey.
        name = self.prefix + _check_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) != "NoSuchKey":
                raise self._failure(exc, f"cannot delete {key}") from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"cannot delete {key}") from exc

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of the objects whose key starts with ``prefix``, sorted by key (S3
        lists in UTF-8 byte order, which is code point order), 1,000 per request."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    if not key or key.endswith("/"):
                        continue  # a "folder" marker some tools create: not an object
                    yield key, item["Size"]
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, f"cannot list {prefix or 'objects'}") from exc

    def usage(self) -> tuple[int | None, int | None]:
        return None, None  # buckets have no free space to speak of

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix.rstrip('/')}"
        if self.endpoint_url:
            return f"{where} at {_without_userinfo(self.endpoint_url)}"
        return f"{where} (AWS, {self.region})"

    # -- settings check -----------------------------------------------------------------------

    def check(self) -> None:
        """Write, read back and delete a small probe object; StorageError with a message for
        people (bucket does not exist, access denied, endpoint unreachable, …) otherwise."""
        probe = f".tocsin-check-{uuid.uuid4().hex}"
        name = self.prefix + probe
        data = f"Tocsin storage check {probe}\n".encode()

        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
            with closing(response["Body"]) as body:
                return body.read()

        self._step(
            "write a test object",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentMD5=_content_md5(data)
            ),
        )
        try:
            back = self._step("read the test object back", read)
        finally:
            self._step(
                "delete the test object",
                lambda: self.client.delete_object(Bucket=self.bucket, Key=name),
            )
        if back != data:
            raise StorageError(
                f"{self.describe()}: the test object read back differs from what was written"
            )

    def _step(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"{self.describe()}: {self._reason(exc)} (could not {what})"
            ) from exc

    # -- errors -------------------------------------------------------------------------------

    def _failure(self, exc: Exception, doing: str) -> StorageError:
        return StorageError(f"{doing} in {self.describe()}: {self._reason(exc)}")

    def _reason(self, exc: Exception) -> str:
        """What went wrong, in words a person setting up a bucket can act on."""
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            detail = exc.response.get("Error", {}).get("Message") or ""
            if code == "NoSuchBucket":
                reason = f"bucket {self.bucket!r} does not exist"
            elif code == "InvalidAccessKeyId":
                reason = "access denied: the access key is not known to the server"
            elif code == "SignatureDoesNotMatch":
                reason = "access denied: the secret key does not match the access key"
            elif code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
                reason = "access denied: the credentials have expired"
            elif code in _ACCESS_DENIED:
                reason = "access denied"
            elif code == "RequestTimeTooSkewed":
                reason = "this machine's clock differs too much from the server's"
            elif code in (
                "PermanentRedirect",
                "301",
                "AuthorizationHeaderMalformed",
                "IllegalLocationConstraintException",
            ):
                reason = f"the bucket is not in region {self.region!r}"
            elif code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
                reason = "the data was corrupted on the way (checksum mismatch); not stored"
            elif code in ("SlowDown", "503", "ServiceUnavailable"):
                reason = "the server is overloaded (still refusing after retries)"
            else:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                reason = f"{code or 'error'} (HTTP {status})" + (f": {detail}" if detail else "")
        elif isinstance(exc, ConnectTimeoutError):
            reason = "endpoint unreachable (connection timed out)"
        elif isinstance(exc, SSLError):
            reason = f"TLS failed: {exc}"
        elif isinstance(exc, EndpointConnectionError):
            reason = "endpoint unreachable (could not connect)"
        elif isinstance(exc, ReadTimeoutError):
            reason = "the endpoint stopped answering (read timed out)"
        elif isinstance(exc, NoCredentialsError):
            reason = "no credentials: give an access key and a secret key"
        else:
            reason = str(exc) or type(exc).__name__
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return reason


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_missing(exc: ClientError) -> bool:
    """No such object — but not no such bucket, which is a misconfiguration, not a gap."""
    code = _error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket")
