"""A folder (an application's data, uploads): every file a stream, with its path and mode.

Files are read as they are at the moment each is read (a folder has no snapshot of its own);
a file that changes while it is read is recorded with the bytes read. A restore writes every
file of the snapshot into the destination (each through a temporary file and a rename) and
leaves files the snapshot does not know alone, as restic's restore does: restore into an empty
folder for an exact copy.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from backups.engine.records import Snapshot, StreamRecord, WriteStats
from backups.engine.repository import Repository
from backups.engine.targets.base import Inventory, Progress, TargetError

PREFIX = "files/"


class DirectoryTarget:
    kind = "directory"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"folder {self.path}"

    def _files(self) -> list[Path]:
        if not self.path.is_dir():
            raise TargetError(f"{self.path} is not a folder")
        found = []
        for folder, dirs, files in os.walk(self.path):
            dirs.sort()
            found += [Path(folder) / name for name in sorted(files)]
        return found

    def backup(
        self, repository: Repository, stats: WriteStats, progress: Progress | None = None
    ) -> tuple[list[StreamRecord], dict[str, Any]]:
        started = time.monotonic()
        streams, known = [], set()
        for path in self._files():
            relative = path.relative_to(self.path).as_posix()
            info = path.lstat()
            meta = {"mode": stat.S_IMODE(info.st_mode), "mtime": info.st_mtime}
            if stat.S_ISLNK(info.st_mode):
                meta["symlink"] = os.readlink(path)
                streams.append(StreamRecord(PREFIX + relative, 0, _EMPTY_SHA256, [], meta))
                continue
            if not stat.S_ISREG(info.st_mode):
                continue  # sockets, FIFOs, devices: not data
            try:
                with open(path, "rb") as file:
                    record = repository.write_stream(
                        PREFIX + relative, file, stats, meta=meta, progress=progress, known=known
                    )
            except FileNotFoundError:
                continue  # removed while the backup ran
            except OSError as exc:
                raise TargetError(f"cannot read {path}: {exc}") from None
            streams.append(record)
        metadata = {
            "kind": self.kind,
            "files": len(streams),
            "bytes": sum(stream.size for stream in streams),
            "tool_versions": {},
            "dump_seconds": round(time.monotonic() - started, 3),
        }
        return streams, metadata

    def restore(self, repository: Repository, snapshot: Snapshot) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        root = self.path.resolve()
        for stream in snapshot.streams:
            if not stream.name.startswith(PREFIX):
                continue
            destination = (root / stream.name.removeprefix(PREFIX)).resolve()
            if root not in destination.parents:
                raise TargetError(f"{stream.name} would be written outside {self.path}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            if "symlink" in stream.meta:
                destination.unlink(missing_ok=True)
                os.symlink(stream.meta["symlink"], destination)
                continue
            fd, temporary = tempfile.mkstemp(dir=destination.parent, prefix=".restore-")
            try:
                with os.fdopen(fd, "wb") as file:
                    repository.restore_stream(stream, file)
                os.chmod(temporary, stream.meta.get("mode", 0o644))
                os.replace(temporary, destination)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            mtime = stream.meta.get("mtime")
            if mtime is not None:
                os.utime(destination, (mtime, mtime))

    def inventory(self) -> Inventory:
        """Each file's size and SHA-256 (symlinks: their target)."""
        result: Inventory = {}
        for path in self._files():
            relative = path.relative_to(self.path).as_posix()
            if path.is_symlink():
                result[relative] = ["symlink", os.readlink(path)]
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as file:
                while block := file.read(1024 * 1024):
                    digest.update(block)
            result[relative] = [path.stat().st_size, digest.hexdigest()]
        return result

    @staticmethod
    def inventory_of(snapshot: Snapshot) -> Inventory:
        """The same inventory, from a snapshot's records."""
        result: Inventory = {}
        for stream in snapshot.streams:
            relative = stream.name.removeprefix(PREFIX)
            if "symlink" in stream.meta:
                result[relative] = ["symlink", stream.meta["symlink"]]
            else:
                result[relative] = [stream.size, stream.sha256]
        return result


_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
