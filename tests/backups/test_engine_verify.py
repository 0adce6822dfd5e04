"""verify re-reads chunks and checks every checksum; a killed run leaves nothing verify or a
restore accepts; prune removes only chunks no snapshot names."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from backups.engine.records import WriteStats
from backups.engine.repository import (
    CorruptObject,
    Repository,
    RepositoryError,
    RepositoryExists,
)
from backups.engine.storage import LocalStorage
from backups.engine.targets import DirectoryTarget

PASSPHRASE = b"verify me"


@pytest.fixture(params=[None, PASSPHRASE], ids=["plain", "encrypted"])
def repository(request, tmp_path: Path) -> Repository:
    return Repository.create(LocalStorage(tmp_path / "repository"), request.param)


def folder_snapshot(repository: Repository, folder: Path, files: dict[str, bytes]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    streams, metadata = DirectoryTarget(folder).backup(repository, WriteStats())
    return repository.commit(streams, metadata=metadata).id


def flip_one_byte(storage: LocalStorage, key: str, at: int) -> None:
    path = storage.root / key
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_accepts_an_intact_repository(repository: Repository, tmp_path: Path):
    snapshot_id = folder_snapshot(repository, tmp_path / "d", {"a": os.urandom(3_000_000)})
    report = repository.verify()
    assert report.ok, report.problems
    assert report.snapshots == 1
    assert report.chunks_checked == len(repository.snapshot(snapshot_id).chunk_ids())
    assert report.bytes_checked == 3_000_000


@pytest.mark.parametrize("where", ["header", "middle", "last byte"])
def test_a_flipped_byte_in_any_chunk_is_caught(repository: Repository, tmp_path: Path, where):
    # 9 MB: at least three chunks whatever the content (a chunk is at most 4 MiB).
    folder_snapshot(repository, tmp_path / "d", {"a": os.urandom(9_000_000), "b": b"x" * 10})
    storage = repository.storage
    keys = [key for key, _size in storage.list("chunks/")]
    assert len(keys) >= 3
    for key in keys:
        size = (storage.root / key).stat().st_size
        at = {"header": 4, "middle": size // 2, "last byte": size - 1}[where]
        original = (storage.root / key).read_bytes()
        flip_one_byte(storage, key, at)
        report = repository.verify()
        assert not report.ok and key in report.problems[0], (key, where)
        (storage.root / key).write_bytes(original)
    assert repository.verify().ok


def test_a_chunk_swapped_for_another_is_caught(repository: Repository, tmp_path: Path):
    folder_snapshot(repository, tmp_path / "d", {"a": os.urandom(600_000), "b": os.urandom(9)})
    storage = repository.storage
    first, second = [storage.root / key for key, _size in storage.list("chunks/")][:2]
    first.write_bytes(second.read_bytes())
    report = repository.verify()
    assert not report.ok


def test_a_missing_chunk_is_caught_even_without_reading_data(repository: Repository, tmp_path):
    folder_snapshot(repository, tmp_path / "d", {"a": os.urandom(100_000)})
    key, _size = next(iter(repository.storage.list("chunks/")))
    repository.storage.delete(key)
    report = repository.verify(read_data=False)
    assert not report.ok and "missing" in report.problems[0]


def test_a_restore_refuses_a_corrupt_chunk(repository: Repository, tmp_path: Path):
    snapshot_id = folder_snapshot(repository, tmp_path / "d", {"a": os.urandom(100_000)})
    key, _size = next(iter(repository.storage.list("chunks/")))
    flip_one_byte(repository.storage, key, 100)
    with pytest.raises(CorruptObject):
        DirectoryTarget(tmp_path / "out").restore(repository, repository.snapshot(snapshot_id))


def test_subsets_rotate_over_every_chunk(repository: Repository, tmp_path: Path):
    files = {f"f{n}": os.urandom(1000 + n) for n in range(40)}
    folder_snapshot(repository, tmp_path / "d", files)
    all_chunks = len(list(repository.storage.list("chunks/")))
    checked = [repository.verify(subset=(k, 4)).chunks_checked for k in range(4)]
    assert sum(checked) == all_chunks
    assert all(0 < n < all_chunks for n in checked)


class Killed(Exception):
    pass


class DiesHalfWay(io.RawIOBase):
    """A dump that dies after ``limit`` bytes, as a killed pg_dump does."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise Killed("the dump died")
        n = min(size, self.left)
        self.left -= n
        return os.urandom(n)


def test_a_killed_run_leaves_nothing_verify_or_a_restore_accepts(
    repository: Repository, tmp_path: Path
):
    with pytest.raises(Killed):
        repository.write_stream("dump", DiesHalfWay(20_000_000), WriteStats())
    assert list(repository.storage.list("chunks/"))  # some chunks got stored…
    assert repository.snapshot_ids() == []  # …but no snapshot names them
    report = repository.verify()
    assert report.snapshots == 0 and report.chunks_checked == 0
    with pytest.raises(RepositoryError):
        repository.snapshot("anything")
    # prune clears what the dead run left
    removed, removed_bytes = repository.prune()
    assert removed > 0 and removed_bytes > 0
    assert list(repository.storage.list("chunks/")) == []


def test_prune_keeps_every_chunk_a_remaining_snapshot_names(repository: Repository, tmp_path):
    common = os.urandom(2_000_000)
    old = folder_snapshot(repository, tmp_path / "one", {"common": common, "old": os.urandom(5)})
    new = folder_snapshot(repository, tmp_path / "two", {"common": common, "new": os.urandom(7)})
    repository.forget(old)
    preview = repository.prune(dry_run=True)
    assert preview[0] == 1  # only the chunk of "old"
    assert repository.prune() == preview
    assert repository.verify().ok
    DirectoryTarget(tmp_path / "out").restore(repository, repository.snapshot(new))
    assert (tmp_path / "out" / "common").read_bytes() == common


def test_two_first_runs_at_once_share_one_repository(tmp_path: Path):
    """Both see no repository and create one: the second must use the first's (its master
    key), not overwrite it and strand the chunks written under the first."""
    storage = LocalStorage(tmp_path / "repository")
    first = Repository.create(storage, PASSPHRASE)
    with pytest.raises(RepositoryExists):
        Repository.create(storage, PASSPHRASE)
    second = Repository.open_or_create(storage, PASSPHRASE)
    assert second.config["id"] == first.config["id"]
    snapshot_id = folder_snapshot(first, tmp_path / "d", {"a": os.urandom(10_000)})
    assert second.verify([snapshot_id]).ok
