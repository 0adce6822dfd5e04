"""What runs leave behind: ``Result`` (one run, kept 48 h) and ``Rollup`` (per minute, hour, day).

Rollups are small on purpose (the Uptime Kuma lesson: unbounded raw results): counts per
status, latency percentiles in whole milliseconds, and a fixed 12-bin latency histogram packed
into 48 bytes. Minute rows take their percentiles from the raw results exactly; hour and day
rows merge the histograms of the level below exactly (sums per bin) and read approximate
percentiles from them (interpolated within a bin), so coarser levels never need raw results.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterable

from django.db import models

from probes.checks.choices import ANY_LOCATION, MAX_TIMEOUT, Period, ResultStatus

# Upper edges (ms) of the histogram's bins; the last bin holds everything slower.
HISTOGRAM_EDGES = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
BINS = len(HISTOGRAM_EDGES) + 1
_PACK = struct.Struct(f"<{BINS}I")


def empty_histogram() -> list[int]:
    return [0] * BINS


def histogram_of(latencies: Iterable[float]) -> list[int]:
    counts = empty_histogram()
    for value in latencies:
        counts[bisect_right(HISTOGRAM_EDGES, value)] += 1
    return counts


def pack(counts: list[int]) -> bytes:
    return _PACK.pack(*counts)


def unpack(data: bytes | memoryview | None) -> list[int]:
    return list(_PACK.unpack(bytes(data))) if data else empty_histogram()


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

    probe = models.ForeignKey("probes.Check", on_delete=models.CASCADE, related_name="results")
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


class Rollup(models.Model):
    """Counts and latency percentiles of one check over one minute, hour or day."""

    probe = models.ForeignKey("probes.Check", on_delete=models.CASCADE, related_name="rollups")
    period = models.CharField(max_length=1, choices=Period.choices)
    bucket_start = models.DateTimeField()
    up = models.PositiveIntegerField(default=0)
    degraded = models.PositiveIntegerField(default=0)
    down = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    p50 = models.PositiveIntegerField(null=True, blank=True)  # ms
    p95 = models.PositiveIntegerField(null=True, blank=True)
    p99 = models.PositiveIntegerField(null=True, blank=True)
    histogram = models.BinaryField(max_length=_PACK.size, default=bytes(_PACK.size))

    class Meta:
        ordering = ["probe", "period", "-bucket_start"]
        constraints = [
            # One row per bucket (the roll-ups upsert on it); also the uptime bars' index:
            # a check's days (or hours) in a range.
            models.UniqueConstraint(
                fields=["probe", "period", "bucket_start"], name="rollup_one_per_bucket"
            ),
        ]
        indexes = [
            # rollups.prune: each level's rows older than its retention; the hour and day
            # roll-ups read the level below in a time range.
            models.Index(fields=["period", "bucket_start"], name="rollup_period_time"),
        ]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.get_period_display()} {self.bucket_start:%Y-%m-%d %H:%M}"

    @property
    def team_id(self) -> int:
        return self.probe.service.team_id

    @property
    def total(self) -> int:
        return self.up + self.degraded + self.down + self.unknown

    @property
    def uptime(self) -> float | None:
        """Share of known runs that were up or degraded (unknown gaps are not downtime)."""
        known = self.up + self.degraded + self.down
        return (self.up + self.degraded) / known if known else None

    def counts(self) -> list[int]:
        return unpack(self.histogram)


__all__ = [
    "BINS",
    "HISTOGRAM_EDGES",
    "Result",
    "Rollup",
    "exact_percentile",
    "histogram_of",
    "histogram_percentile",
    "pack",
    "unpack",
]
