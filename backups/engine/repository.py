"""A backup repository: deduplicated, compressed, optionally encrypted, checksummed chunks on a
storage, and the snapshots that name them.

Layout on the storage::

    config                     what the repository is: format, chunk sizes, wrapped keys
    chunks/<ab>/<id>           one chunk each (``id``: SHA-256 of its bytes, keyed when encrypted)
    snapshots/<snapshot id>    one finished run: its streams and their chunk lists, metadata

Every object is ``TCS1`` + a flags byte + a body: the bytes zstd-compressed, then (encrypted
repositories) AES-256-GCM with a random nonce, the object's key as associated data (a chunk
cannot be passed off as another, nor a snapshot swapped). A chunk's id is checked again after
every read, so a flipped byte anywhere is caught, encrypted or not.

A snapshot object is written last, after every chunk it names is stored: a run that fails or is
killed leaves chunks nobody names (``prune`` removes them) and no snapshot, so nothing that
``verify`` or a restore would accept. Chunks already stored — by an earlier run or another plan
on the same storage — are not written again: that is the incremental run, and every snapshot
still restores on its own.

Keys: the chunks are encrypted with the repository's own random master key; the config holds it
wrapped (AES-256-GCM) under a key derived (scrypt) from each passphrase given at creation or
added later. Rotating the passphrase re-wraps the master key (``add_passphrase`` then
``remove_passphrase``); no chunk is rewritten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, BinaryIO

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from backups.engine.chunking import DEFAULT_SIZES, ChunkSizes, chunks
from backups.engine.records import ChunkRef, Snapshot, StreamRecord, VerifyReport, WriteStats
from backups.engine.storage import ObjectMissing, Storage, StorageError

FORMAT = 1
MAGIC = b"TCS1"
COMPRESSED = 0x01
ENCRYPTED = 0x02
# Chunks stored or read at once per stream: enough to keep the storage and the compressor busy
# on every core, few enough that memory stays a few chunks whatever the stream's size.
IN_FLIGHT = 8


class RepositoryError(Exception):
    """The repository cannot be used as asked (missing, wrong key, unknown format)."""


class RepositoryExists(RepositoryError):
    """Another repository is there already (perhaps created a moment ago by another run)."""


class CorruptObject(RepositoryError):
    """An object failed its check: bad header, failed authentication, or bytes whose id differs."""


def _kdf(passphrase: bytes, salt: bytes) -> bytes:
    # scrypt: a passphrase typed by a person is as safe as a random key from settings.
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


class Repository:
    """Open one with :meth:`create` or :meth:`open`."""

    def __init__(self, storage: Storage, config: dict[str, Any], master: bytes | None) -> None:
        self.storage = storage
        self.config = config
        self.sizes = ChunkSizes.from_dict(config["chunk_sizes"])
        self.level = config.get("compression_level", 3)
        self._aead = AESGCM(master[:32]) if master else None
        self._id_key = master[32:] if master else None
        self._master = master
        self._local = threading.local()
        # Full runs: store every chunk again (``write_stream``'s ``rewrite`` for every stream).
        self.rewrite_all = False
        # Called with the size of every chunk a restore reads (its progress), when set.
        self.on_read: Callable[[int], None] | None = None

    # ----- creating and opening

    @classmethod
    def create(
        cls,
        storage: Storage,
        passphrase: bytes | None = None,
        *,
        sizes: ChunkSizes = DEFAULT_SIZES,
        compression_level: int = 3,
    ) -> Repository:
        """A new, empty repository on ``storage``; encrypted when a passphrase is given."""
        master = os.urandom(64) if passphrase else None
        config: dict[str, Any] = {
            "format": FORMAT,
            "id": uuid.uuid4().hex,
            "created_at": datetime.now(UTC).isoformat(),
            "chunk_sizes": sizes.as_dict(),
            "compression_level": compression_level,
            "encryption": "aes-256-gcm" if master else "none",
            "key_slots": [cls._wrap(master, passphrase)] if master and passphrase else [],
        }
        if not storage.create("config", json.dumps(config, indent=1).encode()):
            raise RepositoryExists(f"{storage.describe()} already holds a repository")
        return cls(storage, config, master)

    @classmethod
    def open(cls, storage: Storage, passphrases: Iterable[bytes] = ()) -> Repository:
        """The repository on ``storage``; an encrypted one needs one of its passphrases."""
        try:
            config = json.loads(storage.get("config"))
        except ObjectMissing:
            raise RepositoryError(f"no repository at {storage.describe()}") from None
        except ValueError:
            raise RepositoryError(f"unreadable repository config at {storage.describe()}") from None
        if config.get("format") != FORMAT:
            raise RepositoryError(f"unknown repository format {config.get('format')!r}")
        master = None
        if config["encryption"] != "none":
            master = cls._unwrap(config["key_slots"], list(passphrases))
            if master is None:
                raise RepositoryError(
                    f"the repository at {storage.describe()} is encrypted and none of the "
                    "configured backup keys opens it"
                )
        return cls(storage, config, master)

    @classmethod
    def open_or_create(
        cls, storage: Storage, passphrase: bytes | None, older: Iterable[bytes] = ()
    ) -> Repository:
        passphrases = [p for p in (passphrase, *older) if p]
        if storage.exists("config"):
            return cls.open(storage, passphrases)
        try:
            return cls.create(storage, passphrase)
        except RepositoryExists:  # another run created it first: use theirs
            return cls.open(storage, passphrases)

    @staticmethod
    def _wrap(master: bytes, passphrase: bytes) -> dict[str, str]:
        salt, nonce = os.urandom(16), os.urandom(12)
        wrapped = AESGCM(_kdf(passphrase, salt)).encrypt(nonce, master, b"tocsin master key")
        return {"salt": _b64(salt), "nonce": _b64(nonce), "wrapped": _b64(wrapped)}

    @staticmethod
    def _unwrap(slots: list[dict[str, str]], passphrases: list[bytes]) -> bytes | None:
        for passphrase in passphrases:
            for slot in slots:
                kek = _kdf(passphrase, _unb64(slot["salt"]))
                try:
                    return AESGCM(kek).decrypt(
                        _unb64(slot["nonce"]), _unb64(slot["wrapped"]), b"tocsin master key"
                    )
                except InvalidTag:
                    continue
        return None

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def add_passphrase(self, passphrase: bytes) -> None:
        """Let ``passphrase`` open the repository too (the first half of a key rotation)."""
        if self._master is None:
            raise RepositoryError("the repository is not encrypted")
        if self._unwrap(self.config["key_slots"], [passphrase]) is not None:
            return  # it opens the repository already
        self.config["key_slots"].append(self._wrap(self._master, passphrase))
        self.storage.put("config", json.dumps(self.config, indent=1).encode())

    def remove_passphrase(self, passphrase: bytes) -> None:
        """Stop ``passphrase`` opening the repository (the second half); never the last one."""
        keep = [s for s in self.config["key_slots"] if self._unwrap([s], [passphrase]) is None]
        if not keep:
            raise RepositoryError("that is the only passphrase left; add another one first")
        self.config["key_slots"] = keep
        self.storage.put("config", json.dumps(self.config, indent=1).encode())

    # ----- objects

    def chunk_id(self, data: bytes) -> str:
        if self._id_key is not None:
            return hmac.new(self._id_key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    @staticmethod
    def chunk_key(chunk_id: str) -> str:
        return f"chunks/{chunk_id[:2]}/{chunk_id}"

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=self.level)
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        return decompressor

    def encode(self, key: str, data: bytes) -> bytes:
        body = self._compressor().compress(data)
        flags = COMPRESSED
        if self._aead is not None:
            nonce = os.urandom(12)
            body = nonce + self._aead.encrypt(nonce, body, key.encode())
            flags |= ENCRYPTED
        return MAGIC + bytes([flags]) + body

    def decode(self, key: str, blob: bytes) -> bytes:
        if len(blob) < 5 or blob[:4] != MAGIC:
            raise CorruptObject(f"{key}: not a repository object")
        flags, body = blob[4], blob[5:]
        if flags & ENCRYPTED:
            if self._aead is None:
                raise CorruptObject(f"{key}: encrypted, but the repository is not")
            try:
                body = self._aead.decrypt(body[:12], body[12:], key.encode())
            except InvalidTag:
                raise CorruptObject(f"{key}: failed authentication (altered or corrupt)") from None
        elif self._aead is not None:
            raise CorruptObject(f"{key}: not encrypted in an encrypted repository")
        if flags & COMPRESSED:
            try:
                body = self._decompressor().decompress(body)
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"{key}: cannot be decompressed ({exc})") from None
        return body

    def read_chunk(self, chunk_id: str) -> bytes:
        key = self.chunk_key(chunk_id)
        data = self.decode(key, self.storage.get(key))
        if not hmac.compare_digest(self.chunk_id(data), chunk_id):
            raise CorruptObject(f"{key}: its bytes do not match its checksum")
        return data

    # ----- writing

    def write_stream(
        self,
        name: str,
        stream: BinaryIO,
        stats: WriteStats,
        *,
        meta: dict[str, Any] | None = None,
        progress: Callable[[WriteStats], None] | None = None,
        known: set[str] | None = None,
        whole_digest: bool = True,
        rewrite: bool = False,
    ) -> StreamRecord:
        """Store ``stream``'s chunks that the storage lacks; its record for a snapshot.

        ``known`` (shared by the streams of a run) remembers chunks seen in this run, so
        repeated content costs one existence check. ``whole_digest``: also the whole stream's
        SHA-256 (a folder's files are compared by it after a restore); a database dump goes
        without — each chunk's checksum and their order in the snapshot already prove it, and
        hashing every byte twice costs a tenth of a backup's time. ``rewrite``: store every
        chunk again even where the storage has it (a full run: a damaged copy is replaced).
        """
        known = known if known is not None else set()
        rewrite = rewrite or self.rewrite_all
        digest = hashlib.sha256() if whole_digest else None
        refs: list[ChunkRef] = []
        size = 0
        pending: deque[Future] = deque()
        lock = threading.Lock()

        def store(chunk_id: str, data: bytes) -> None:
            key = self.chunk_key(chunk_id)
            if not rewrite and self.storage.exists(key):
                return
            blob = self.encode(key, data)
            self.storage.put(key, blob)
            with lock:
                stats.new_chunks += 1
                stats.new_bytes += len(data)
                stats.stored_bytes += len(blob)

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
            try:
                for data in chunks(stream, self.sizes):
                    if digest is not None:
                        digest.update(data)
                    chunk_id = self.chunk_id(data)
                    refs.append(ChunkRef(chunk_id, len(data)))
                    size += len(data)
                    with lock:
                        stats.bytes_read += len(data)
                        stats.chunks += 1
                    if chunk_id not in known:
                        known.add(chunk_id)
                        pending.append(pool.submit(store, chunk_id, data))
                    while len(pending) >= IN_FLIGHT or (pending and pending[0].done()):
                        pending.popleft().result()
                    if progress is not None:
                        progress(stats)
                while pending:
                    pending.popleft().result()
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        whole = digest.hexdigest() if digest is not None else ""
        return StreamRecord(name, size, whole, refs, meta or {})

    def commit(
        self,
        streams: list[StreamRecord],
        *,
        metadata: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        snapshot_id: str | None = None,
    ) -> Snapshot:
        """Write the snapshot naming ``streams`` — the last step of a run."""
        snapshot = Snapshot(
            id=snapshot_id or uuid.uuid4().hex,
            created_at=datetime.now(UTC),
            streams=streams,
            metadata=metadata or {},
            tags=tags or {},
        )
        key = f"snapshots/{snapshot.id}"
        self.storage.put(key, self.encode(key, json.dumps(snapshot.as_dict()).encode()))
        return snapshot

    # ----- reading

    def snapshot(self, snapshot_id: str) -> Snapshot:
        key = f"snapshots/{snapshot_id}"
        try:
            blob = self.storage.get(key)
        except ObjectMissing:
            raise RepositoryError(
                f"no snapshot {snapshot_id} in {self.storage.describe()}"
            ) from None
        try:
            return Snapshot.from_dict(json.loads(self.decode(key, blob)))
        except (ValueError, KeyError) as exc:
            raise CorruptObject(f"{key}: unreadable ({exc})") from None

    def snapshot_ids(self) -> list[str]:
        return [key.removeprefix("snapshots/") for key, _size in self.storage.list("snapshots/")]

    def snapshots(self) -> list[Snapshot]:
        return [self.snapshot(snapshot_id) for snapshot_id in self.snapshot_ids()]

    def read_stream(self, stream: StreamRecord) -> Iterator[bytes]:
        """The stream's bytes, chunk by chunk, each checked; then the whole stream's SHA-256
        where the snapshot has it."""
        digest = hashlib.sha256() if stream.sha256 else None
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
            pending: deque[Future] = deque()
            refs = iter(stream.chunks)
            for ref in refs:
                pending.append(pool.submit(self.read_chunk, ref.id))
                if len(pending) >= IN_FLIGHT:
                    break
            while pending:
                data = pending.popleft().result()
                next_ref = next(refs, None)
                if next_ref is not None:
                    pending.append(pool.submit(self.read_chunk, next_ref.id))
                if digest is not None:
                    digest.update(data)
                if self.on_read is not None:
                    self.on_read(len(data))
                yield data
        if digest is not None and digest.hexdigest() != stream.sha256:
            raise CorruptObject(f"stream {stream.name}: reassembled bytes differ from the backup")

    def restore_stream(self, stream: StreamRecord, out: BinaryIO) -> int:
        written = 0
        for data in self.read_stream(stream):
            out.write(data)
            written += len(data)
        return written

    # ----- checking and pruning

    def verify(
        self,
        snapshot_ids: Iterable[str] | None = None,
        *,
        read_data: bool = True,
        subset: tuple[int, int] | None = None,
        progress: Callable[[VerifyReport], None] | None = None,
    ) -> VerifyReport:
        """Check snapshots: each readable, each chunk present, and (``read_data``) each chunk
        read back and its checksum recomputed. ``subset=(k, n)`` reads only the k-th of n
        slices of the chunks (by id), as restic's ``--read-data-subset k/n``: a schedule that
        rotates k checks every chunk once every n runs."""
        report = VerifyReport()
        seen: set[str] = set()
        ids = list(snapshot_ids) if snapshot_ids is not None else self.snapshot_ids()
        for snapshot_id in ids:
            try:
                snapshot = self.snapshot(snapshot_id)
            except (RepositoryError, StorageError) as exc:
                report.problems.append(str(exc))
                continue
            report.snapshots += 1
            for stream in snapshot.streams:
                for ref in stream.chunks:
                    if ref.id in seen:
                        continue
                    seen.add(ref.id)
                    problem = self._check_chunk(ref, read_data, subset, report)
                    if problem:
                        report.problems.append(f"snapshot {snapshot_id}, {stream.name}: {problem}")
                    if progress is not None:
                        progress(report)
        return report

    def _check_chunk(
        self,
        ref: ChunkRef,
        read_data: bool,
        subset: tuple[int, int] | None,
        report: VerifyReport,
    ) -> str | None:
        key = self.chunk_key(ref.id)
        in_subset = subset is None or int(ref.id[:8], 16) % subset[1] == subset[0] % subset[1]
        try:
            if not (read_data and in_subset):
                report.chunks_skipped += 1
                return None if self.storage.exists(key) else f"{key} is missing"
            data = self.read_chunk(ref.id)
        except ObjectMissing:
            return f"{key} is missing"
        except (CorruptObject, StorageError) as exc:
            return str(exc)
        report.chunks_checked += 1
        report.bytes_checked += len(data)
        if len(data) != ref.size:
            return f"{key}: {len(data)} bytes, the snapshot says {ref.size}"
        return None

    def forget(self, snapshot_id: str) -> None:
        self.storage.delete(f"snapshots/{snapshot_id}")

    def prune(
        self,
        *,
        older_than: float = 0.0,
        dry_run: bool = False,
        still_alone: Callable[[], None] | None = None,
    ) -> tuple[int, int]:
        """Delete chunks no snapshot names; returns (chunks, bytes) removed (or that would be).

        Run it only while no backup writes to this storage (the caller holds the storage's
        lease): a run in progress has stored chunks its snapshot does not name yet.
        ``older_than`` (seconds, local folders only) spares chunks younger than that anyway.
        ``still_alone`` is called before every delete and raises when that no longer holds.
        """
        referenced: set[str] = set()
        for snapshot in self.snapshots():
            referenced |= snapshot.chunk_ids()
        removed = removed_bytes = 0
        cutoff = time.time() - older_than
        for key, size in list(self.storage.list("chunks/")):
            if key.rsplit("/", 1)[-1] in referenced:
                continue
            if older_than and _modified(self.storage, key) > cutoff:
                continue
            if not dry_run:
                if still_alone is not None:
                    still_alone()
                self.storage.delete(key)
            removed += 1
            removed_bytes += size
        return removed, removed_bytes


def _modified(storage: Storage, key: str) -> float:
    root = getattr(storage, "root", None)
    if root is None:
        return 0.0
    return os.path.getmtime(os.path.join(root, *key.split("/")))
