"""Where a repository's objects live: a local folder or S3-compatible storage.

A storage holds immutable objects under ``/``-separated keys (``chunks/ab/abcdef…``,
``snapshots/<id>``). Writes are atomic — an object is either absent or complete, never half
written — so a run killed mid-write leaves at worst an unreferenced object, never a torn one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """The storage refused or failed an operation (permissions, network, a missing object)."""


class ObjectMissing(StorageError):
    """No object under that key."""


class Storage(Protocol):
    """What the repository needs from a place to keep objects."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (replacing what was there)."""

    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectMissing when there is none."""

    def create(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if nothing is there (atomically); False if
        something was. A repository's config is created so: two first runs at once must not
        both create it."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object whose key starts with ``prefix``, sorted."""

    def usage(self) -> tuple[int | None, int | None]:
        """``(free bytes, total bytes)`` of the space objects are written to; None where the
        storage cannot tell (S3 has no such thing as free space)."""

    def describe(self) -> str:
        """Where this is, for people (no secrets)."""


class LocalStorage:
    """Objects as files under a folder; atomic through write-to-temporary, fsync, rename."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            raise StorageError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, path)
            except BaseException:
                with suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.link(temporary, path)  # fails if the key exists: first writer wins
                return True
            except FileExistsError:
                return False
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(temporary)
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"{key} is missing from {self.describe()}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            self._path(key).unlink()

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        # Walk only the folder the prefix names (``chunks/ab`` → ``chunks/``), one folder's
        # names in memory at a time, sorted as the keys are.
        folder = prefix.rpartition("/")[0]
        start = self._path(folder) if folder else self.root
        yield from self._walk(start, prefix)

    def _walk(self, folder: Path, prefix: str) -> Iterator[tuple[str, int]]:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                continue  # a write in progress (or killed): not an object
            key = Path(entry.path).relative_to(self.root).as_posix()
            if entry.is_dir():
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), prefix)
            elif key.startswith(prefix):
                yield key, entry.stat().st_size

    def usage(self) -> tuple[int | None, int | None]:
        self.root.mkdir(parents=True, exist_ok=True)
        total, _used, free = shutil.disk_usage(self.root)
        return free, total

    def describe(self) -> str:
        return f"folder {self.root}"
