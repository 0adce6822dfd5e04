"""What a repository records: snapshots, their streams and chunk lists, and run reports.

Plain data with their JSON forms; a snapshot object on the storage is ``Snapshot.as_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ChunkRef:
    id: str
    size: int

    def as_list(self) -> list[Any]:
        return [self.id, self.size]


@dataclass
class StreamRecord:
    """One stream of a snapshot (a dump, a database file, a file of a folder)."""

    name: str
    size: int
    sha256: str
    chunks: list[ChunkRef]
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "chunks": [chunk.as_list() for chunk in self.chunks],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamRecord:
        return cls(
            name=data["name"],
            size=data["size"],
            sha256=data["sha256"],
            chunks=[ChunkRef(chunk_id, size) for chunk_id, size in data["chunks"]],
            meta=data.get("meta", {}),
        )


@dataclass
class Snapshot:
    id: str
    created_at: datetime
    streams: list[StreamRecord]
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "streams": [stream.as_dict() for stream in self.streams],
            "metadata": self.metadata,
            "tags": self.tags,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            id=data["id"],
            created_at=datetime.fromisoformat(data["created_at"]),
            streams=[StreamRecord.from_dict(stream) for stream in data["streams"]],
            metadata=data.get("metadata", {}),
            tags=data.get("tags", {}),
        )

    def chunk_ids(self) -> set[str]:
        return {chunk.id for stream in self.streams for chunk in stream.chunks}

    @property
    def size(self) -> int:
        return sum(stream.size for stream in self.streams)


@dataclass
class WriteStats:
    """What one run read and what it had to store (the rest was there already)."""

    bytes_read: int = 0
    chunks: int = 0
    new_chunks: int = 0
    new_bytes: int = 0  # before compression
    stored_bytes: int = 0  # after compression (and encryption)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class VerifyReport:
    snapshots: int = 0
    chunks_checked: int = 0
    bytes_checked: int = 0
    chunks_skipped: int = 0  # outside this run's subset
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems
