"""Content-defined chunks of a stream (FastCDC), for deduplication across runs and plans.

A chunk ends where the content says so, not at a fixed offset: an insert near the start of a
dump shifts every later byte, but the chunk boundaries move with the content, so an
incremental run stores only the chunks around what changed. FastCDC decides each boundary from
at most ``max_size`` bytes after the chunk's start; reading the stream in blocks and cutting
only where that window was complete gives exactly the chunks of the whole stream at once, with
memory bounded by a few blocks whatever the stream's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fastcdc import fastcdc


@dataclass(frozen=True)
class ChunkSizes:
    """restic's sizes, about; a chunk per megabyte keeps the index small and dedup useful."""

    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 4 * 1024 * 1024

    def as_dict(self) -> dict[str, int]:
        return {"min": self.min_size, "avg": self.avg_size, "max": self.max_size}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> ChunkSizes:
        return cls(data["min"], data["avg"], data["max"])


DEFAULT_SIZES = ChunkSizes()


def chunks(stream: BinaryIO, sizes: ChunkSizes = DEFAULT_SIZES) -> Iterator[bytes]:
    """The stream's chunks, in order; concatenated they are the stream.

    Read with ``readinto`` into one buffer, so each byte is copied twice (from the stream into
    the buffer, from the buffer into its chunk), whatever the stream's size.
    """
    block = max(8 * 1024 * 1024, 2 * sizes.max_size)
    buffer = bytearray(2 * block)
    view = memoryview(buffer)
    start = end = 0  # the undecided bytes are buffer[start:end]
    at_end = False
    while not at_end:
        if len(buffer) - end < block:  # move the undecided tail to the front
            view[: end - start] = view[start:end]
            start, end = 0, end - start
        read = _read_into(stream, view[end : end + block])
        end += read
        at_end = read == 0
        if end == start or (not at_end and end - start < block):
            continue
        window = view[start:end]
        cut = 0
        for chunk in fastcdc(window, sizes.min_size, sizes.avg_size, sizes.max_size):
            if not at_end and chunk.offset + sizes.max_size > len(window):
                break  # its boundary may lie past what has been read: decide it next round
            yield bytes(window[chunk.offset : chunk.offset + chunk.length])
            cut = chunk.offset + chunk.length
        window.release()
        start += cut


def _read_into(stream: BinaryIO, target: memoryview) -> int:
    """Fill ``target`` as far as the stream goes (a pipe gives what it has, a bit at a time);
    0 only at the end of the stream."""
    filled = 0
    readinto = getattr(stream, "readinto", None)
    while filled < len(target):
        if readinto is not None:
            try:
                n = readinto(target[filled:])
            except NotImplementedError:  # a raw stream that only reads
                readinto = None
                continue
        else:
            data = stream.read(len(target) - filled)
            n = len(data)
            target[filled : filled + n] = data
        if not n:
            break
        filled += n
    return filled
