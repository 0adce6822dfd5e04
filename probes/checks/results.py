"""What runs leave behind: ``Result`` (one run, kept 48 h), ``Rollup`` (a check's day, with its
hours and minutes packed) and ``RecentMinute`` (minutes not packed yet).

Rollups are small on purpose (the Uptime Kuma lesson: unbounded raw results): counts per
status, latency percentiles in whole milliseconds, and a fixed 12-bin latency histogram packed
as varints (12-20 bytes). Minutes take their percentiles from the raw results exactly; hours
and days merge the histograms of the level below exactly (sums per bin) and read approximate
percentiles from them (interpolated within a bin), so coarser levels never need raw results.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db import models
from django.db.models import Q

from probes.checks.choices import ANY_LOCATION, MAX_TIMEOUT, ResultStatus

# Upper edges (ms) of the histogram's bins; the last bin holds everything slower.
HISTOGRAM_EDGES = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
BINS = len(HISTOGRAM_EDGES) + 1
# A histogram is stored as one unsigned LEB128 varint per bin: most bins are empty (one byte)
# and a row pays 12-20 bytes for it, not 48.
HISTOGRAM_MAX_BYTES = BINS * 5


def empty_histogram() -> list[int]:
    return [0] * BINS


def histogram_of(latencies: Iterable[float]) -> list[int]:
    counts = empty_histogram()
    for value in latencies:
        counts[bisect_right(HISTOGRAM_EDGES, value)] += 1
    return counts


def pack(counts: list[int]) -> bytes:
    out = bytearray()
    for count in counts:
        while count >= 0x80:
            out.append((count & 0x7F) | 0x80)
            count >>= 7
        out.append(count)
    return bytes(out)


def unpack(data: bytes | memoryview | None) -> list[int]:
    if not data:
        return empty_histogram()
    data = bytes(data)
    if len(data) == BINS and max(data) < 0x80:  # every bin under 128 runs: one byte each
        return list(data)
    counts, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            counts.append(value)
            value, shift = 0, 0
    if len(counts) != BINS:
        raise ValueError(f"a latency histogram has {BINS} bins, not {len(counts)}")
    return counts


def exact_percentile(ordered: list[float], share: float) -> int | None:
    """Nearest-rank percentile of sorted values, in whole milliseconds."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * share // 1))  # ceil, at least the first
    return round(ordered[int(rank) - 1])


def histogram_percentile(counts: list[int], share: float) -> int | None:
    """The percentile read from a histogram, interpolated linearly inside its bin."""
    total = sum(counts)
    if not total:
        return None
    target = total * share
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= target:
            low = HISTOGRAM_EDGES[index - 1] if index else 0
            high = HISTOGRAM_EDGES[index] if index < len(HISTOGRAM_EDGES) else MAX_TIMEOUT * 1000
            return round(low + (high - low) * (target - seen) / count)
        seen += count
    return None


class Result(models.Model):
    """One run of a check at one location (or, status unknown, a gap in which none ran)."""

    # No index of its own: the unique (probe, slot_at, location) index leads with the check.
    probe = models.ForeignKey(
        "probes.Check", on_delete=models.CASCADE, related_name="results", db_index=False
    )
    location = models.CharField(max_length=40, default=ANY_LOCATION)
    slot_at = models.DateTimeField()  # the scheduled time this run was for
    started_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=ResultStatus.choices)
    latency_ms = models.FloatField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)  # phase → ms
    error = models.CharField(max_length=500, blank=True)
    excerpt = models.TextField(blank=True)  # at most kinds.base.EXCERPT_LIMIT characters
    explanation = models.TextField(blank=True)  # the failed conditions, values resolved
    details = models.JSONField(default=dict, blank=True)
    # An unknown gap stands for this many slots in which no run happened.
    slots = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-slot_at", "-id"]
        constraints = [
            # A slot is recorded once, whichever worker ran it; also the check's history index
            # (recent results of a check, newest first).
            models.UniqueConstraint(
                fields=["probe", "slot_at", "location"], name="result_one_per_slot"
            ),
        ]
        indexes = [
            # rollups.roll_minutes (results of the last minutes) and rollups.prune.
            models.Index(fields=["started_at"], name="result_started_at"),
        ]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.status} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def team_id(self) -> int:
        return self.probe.service.team_id


class StatusCounts:
    """Runs per status of a bucket (a rollup row or point): the total and the uptime."""

    up: int
    degraded: int
    down: int
    unknown: int

    @property
    def total(self) -> int:
        return self.up + self.degraded + self.down + self.unknown

    @property
    def uptime(self) -> float | None:
        """Share of known runs that were up or degraded (unknown gaps are not downtime)."""
        known = self.up + self.degraded + self.down
        return (self.up + self.degraded) / known if known else None


class _Counts(StatusCounts, models.Model):
    """Counts per status, latency percentiles (ms) and the latency histogram of a bucket."""

    # No index of its own: each model's unique index leads with the check.
    probe = models.ForeignKey(
        "probes.Check", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    up = models.PositiveIntegerField(default=0)
    degraded = models.PositiveIntegerField(default=0)
    down = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    p50 = models.PositiveIntegerField(null=True, blank=True)  # ms
    p95 = models.PositiveIntegerField(null=True, blank=True)
    p99 = models.PositiveIntegerField(null=True, blank=True)
    histogram = models.BinaryField(max_length=HISTOGRAM_MAX_BYTES, default=bytes(BINS))

    class Meta:
        abstract = True

    @property
    def team_id(self) -> int:
        return self.probe.service.team_id

    def counts(self) -> list[int]:
        return unpack(self.histogram)


# A rollup row's key: the check's id, then the day as days since 1970 in the low DAY_BITS bits
# (enough until the year 4840).
EPOCH = date(1970, 1, 1)
DAY_BITS = 20


class RollupManager(models.Manager["Rollup"]):
    def bulk_create(self, objs: Iterable[Rollup], *args: Any, **kwargs: Any) -> list[Rollup]:
        objs = list(objs)
        for obj in objs:
            obj.fill_key()
        return super().bulk_create(objs, *args, **kwargs)


class Rollup(_Counts):
    """One check's day (UTC): the day's counts and percentiles as columns (what uptime bars
    and SLOs over days read), its 24 hour points and 1,440 minute points packed
    (``probes.checks.points``). Pruning empties ``minutes`` after 14 days and ``hours`` after
    90, and deletes the row after 2 years: a year of a check is tens of kilobytes.

    The primary key is the check and the day in one number (``key``), so a check's days are
    one range of it and the table needs no other index: a (check, day) index cost more than
    a fifth of a year of rollups on PostgreSQL. Pruning, hourly, and deleting a check scan
    the table instead."""

    id = models.BigIntegerField(primary_key=True, editable=False)
    probe = models.ForeignKey(
        "probes.Check", on_delete=models.CASCADE, related_name="rollups", db_index=False
    )
    day = models.DateField()
    hours = models.BinaryField(default=b"", blank=True)
    minutes = models.BinaryField(default=b"", blank=True)

    objects = RollupManager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.day:%Y-%m-%d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fill_key()
        super().save(*args, **kwargs)

    @staticmethod
    def key(probe_id: int, day: date) -> int:
        return (probe_id << DAY_BITS) | (day - EPOCH).days

    @classmethod
    def days_of(cls, probe_id: int, since: date | None = None, until: date | None = None) -> Q:
        """A check's rows from ``since`` to ``until`` (both included; open when None)."""
        low = cls.key(probe_id, since) if since else probe_id << DAY_BITS
        high = cls.key(probe_id, until) if until else ((probe_id + 1) << DAY_BITS) - 1
        return Q(pk__gte=low, pk__lte=high)

    def fill_key(self) -> None:
        if self.pk is None:
            self.pk = self.key(self.probe_id, self.day)


class RecentMinute(_Counts):
    """A minute of a check whose hour is not packed yet (``rollups.pack_minutes`` moves it
    into its day row's ``minutes`` once the hour is past the roll-up's lookback): about an
    hour of rows per check, whatever the age of the installation.

    Its histogram is a column per bin (``bin_0`` … ``bin_11``, ``BIN_FIELDS``), not packed:
    every minute the roll-up sums the current hour's minutes of every check, and the database
    sums columns faster than Python unpacks blobs."""

    histogram = None  # the bins below instead
    minute = models.DateTimeField()

    class Meta:
        ordering = ["probe", "-minute"]
        constraints = [
            models.UniqueConstraint(fields=["probe", "minute"], name="recent_minute_one_per_check"),
        ]
        indexes = [models.Index(fields=["minute"], name="recent_minute_time")]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.minute:%Y-%m-%d %H:%M}"

    def counts(self) -> list[int]:
        return [getattr(self, name) for name in BIN_FIELDS]

    def set_counts(self, counts: list[int]) -> None:
        for name, count in zip(BIN_FIELDS, counts, strict=True):
            setattr(self, name, count)


BIN_FIELDS = tuple(f"bin_{n}" for n in range(BINS))
for _name in BIN_FIELDS:
    RecentMinute.add_to_class(_name, models.PositiveIntegerField(default=0))


__all__ = [
    "BINS",
    "BIN_FIELDS",
    "HISTOGRAM_EDGES",
    "RecentMinute",
    "Result",
    "Rollup",
    "StatusCounts",
    "exact_percentile",
    "histogram_of",
    "histogram_percentile",
    "pack",
    "unpack",
]
