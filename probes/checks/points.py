"""Rollup points and how a day of them is packed into one row.

A point is one minute, hour or day of a check: counts per status, latency percentiles (whole
ms) and, for hours and days, the latency histogram that lets coarser levels merge exactly.
A day's 24 hour points and 1,440 minute points are stored packed in that day's rollup row
(``Rollup.hours`` and ``Rollup.minutes``), not as rows: a row costs 100-200 bytes with its
index entries whatever it holds, and 14 days of minute rows alone made 4 MB per check, where
Uptime Kuma's users complain of gigabytes. Packed, a year of one check is tens of kilobytes.

The packing is columnar: each field of every slot in a row, then the next field, as unsigned
32-bit integers, the bytes of those integers shuffled by significance (all lowest bytes, then
the next ones…) and compressed with zlib. Percentiles are stored as deltas (p95 - p50, p99 -
p95, never negative for nearest-rank or histogram percentiles), so a check whose runs agree
stores mostly zeros, and quiet minutes (no runs) cost next to nothing.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from probes.checks.results import BINS, StatusCounts, empty_histogram, histogram_percentile

HOURS_PER_DAY = 24
MINUTES_PER_DAY = 24 * 60
COUNTED = ("up", "degraded", "down", "unknown")
SHARES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
_VERSION = 1


@dataclass
class Point(StatusCounts):
    up: int = 0
    degraded: int = 0
    down: int = 0
    unknown: int = 0
    p50: int | None = None
    p95: int | None = None
    p99: int | None = None
    histogram: list[int] = field(default_factory=empty_histogram)

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTED}

    def percentiles(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in SHARES}


def merge(points: Iterable[Point | None]) -> Point | None:
    """Counts and histograms summed (exact); percentiles read from the merged histogram."""
    merged = Point()
    seen = False
    for point in points:
        if point is None:
            continue
        seen = True
        for name in COUNTED:
            setattr(merged, name, getattr(merged, name) + getattr(point, name))
        merged.histogram = [a + b for a, b in zip(merged.histogram, point.histogram, strict=True)]
    if not seen:
        return None
    for name, share in SHARES.items():
        setattr(merged, name, histogram_percentile(merged.histogram, share))
    return merged


def _fields(histograms: bool) -> int:
    return len(COUNTED) + len(SHARES) + (BINS if histograms else 0)


def _row(point: Point | None, histograms: bool) -> list[int]:
    if point is None:
        return [0] * _fields(histograms)
    p50, p95, p99 = point.p50, point.p95, point.p99
    # 0 is "no latency"; otherwise p50 + 1 and the (non-negative) steps up to p95 and p99.
    latency = (
        [0, 0, 0] if p50 is None else [p50 + 1, (p95 or p50) - p50, (p99 or p50) - (p95 or p50)]
    )
    values = [point.up, point.degraded, point.down, point.unknown, *latency]
    return values + (list(point.histogram) if histograms else [])


def encode(points: Sequence[Point | None], histograms: bool) -> bytes:
    """A day's points (None where nothing ran) as one compressed blob; b"" when all are None."""
    if all(point is None for point in points):
        return b""
    empty = [0] * _fields(histograms)
    rows = [empty if point is None else _row(point, histograms) for point in points]
    columns = array("I", chain.from_iterable(zip(*rows, strict=True)))  # column after column
    if columns.itemsize != 4:  # pragma: no cover - every platform Tocsin runs on
        raise RuntimeError("array('I') is not 32-bit here")
    raw = columns.tobytes()
    if array("I", [1]).tobytes()[0] != 1:  # big-endian host: store little-endian anyway
        columns.byteswap()
        raw = columns.tobytes()
    shuffled = b"".join(raw[offset::4] for offset in range(4))
    return bytes([_VERSION, len(points) >> 8, len(points) & 0xFF]) + zlib.compress(shuffled, 9)


def _columns(blob: bytes | memoryview, histograms: bool) -> tuple[int, Iterable[tuple[int, ...]]]:
    """How many slots a blob packs, and its rows (one tuple of raw fields per slot)."""
    blob = bytes(blob)
    if blob[0] != _VERSION:
        raise ValueError(f"unknown rollup packing version {blob[0]}")
    count = (blob[1] << 8) | blob[2]
    shuffled = zlib.decompress(blob[3:])
    quarter = len(shuffled) // 4
    raw = bytearray(len(shuffled))
    for offset in range(4):
        raw[offset::4] = shuffled[offset * quarter : (offset + 1) * quarter]
    columns = array("I")
    columns.frombytes(bytes(raw))
    if array("I", [1]).tobytes()[0] != 1:  # pragma: no cover - big-endian host
        columns.byteswap()
    width = _fields(histograms)
    # Back to one tuple per slot (zip does the transposition in C).
    return count, zip(*(columns[n * count : (n + 1) * count] for n in range(width)), strict=True)


def decode(blob: bytes | memoryview | None, slots: int, histograms: bool) -> list[Point | None]:
    """The points ``encode`` packed; ``slots`` Nones for an empty (or pruned) blob."""
    if not blob:
        return [None] * slots
    _, rows = _columns(blob, histograms)
    points: list[Point | None] = []
    for slot, row in enumerate(rows):
        if slot >= slots:
            break
        up, degraded, down, unknown, p50, step95, step99 = row[:7]
        histogram = list(row[7:]) if histograms else empty_histogram()
        if not (up or degraded or down or unknown):
            points.append(None)
            continue
        low = p50 - 1 if p50 else None
        points.append(
            Point(
                up,
                degraded,
                down,
                unknown,
                low,
                None if low is None else low + step95,
                None if low is None else low + step95 + step99,
                histogram,
            )
        )
    return points + [None] * (slots - len(points))


def decode_rows(blob: bytes | memoryview | None, histograms: bool) -> list[tuple[int, ...]]:
    """A packed blob's raw rows, without building points: (up, degraded, down, unknown,
    p50 + 1 or 0, p95 - p50, p99 - p95[, histogram bins…]) per slot. For readers that scan
    months of minutes (SLOs, reports) and need only the counts; [] for an empty blob."""
    if not blob:
        return []
    return list(_columns(blob, histograms)[1])


def decode_columns(
    blob: bytes | memoryview | None, histograms: bool, fields: int | None = None
) -> np.ndarray | None:
    """A packed blob's first ``fields`` fields (all by default) as one (fields, slots) array
    of unsigned 32-bit integers, the unshuffling done by numpy: months of minutes are read
    without a Python step per slot (rows as ``decode_rows`` gives them, transposed); None for
    an empty blob."""
    if not blob:
        return None
    blob = bytes(blob)
    if blob[0] != _VERSION:
        raise ValueError(f"unknown rollup packing version {blob[0]}")
    count = (blob[1] << 8) | blob[2]
    width = _fields(histograms) if fields is None else min(fields, _fields(histograms))
    planes = np.frombuffer(zlib.decompress(blob[3:]), dtype=np.uint8).reshape(4, -1)
    # Byte planes back to little-endian integers: plane k holds byte k of every integer, field
    # after field, so the first fields are the planes' first columns.
    integers = np.ascontiguousarray(planes[:, : width * count].T).view("<u4").reshape(-1)
    return integers.reshape(width, count)


__all__ = [
    "COUNTED",
    "HOURS_PER_DAY",
    "MINUTES_PER_DAY",
    "SHARES",
    "Point",
    "decode",
    "decode_columns",
    "decode_rows",
    "encode",
    "merge",
]
