"""Things that are up or down over time (probe checks, later heartbeats), as one registry.

SLOs, SLA reports and status pages need the history of a service's checks, but monitoring may
not import the apps that feed it. So each feeding app registers a ``Source`` here when it
starts (``AppConfig.ready``), and readers ask the registry: ``source("probe").counts(…)``.

A source answers in buckets of a minute, an hour or a day (UTC), read from its own rollups so
that 90 days cost tens of rows, not 130,000 minutes. A bucket is ``None`` when nothing ran in it
(a paused check, or one created later): readers decide whether that counts (an SLA report
counts it as unmeasured, not as up).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

STEPS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


@dataclass(frozen=True)
class Target:
    """One thing a source watches: a probe check, say."""

    kind: str
    id: int
    name: str
    service_id: int
    team_id: int
    # Seconds between runs: a run speaks for the minutes until the next one.
    interval: int = 60


@dataclass(frozen=True)
class Counts:
    """The runs of one target in one bucket, by how they ended (runs that could not tell are
    left out). ``fast`` is how many runs answered within the latency threshold asked for
    (``None`` when none was asked)."""

    up: int = 0
    degraded: int = 0
    down: int = 0
    fast: int | None = None

    @property
    def total(self) -> int:
        return self.up + self.degraded + self.down

    @property
    def good(self) -> int:
        """Runs that reached the service (degraded is slow, not down)."""
        return self.up + self.degraded


class Source(ABC):
    kind: str
    label: str
    # The latency thresholds (ms) ``counts`` can answer exactly; others are refused.
    latency_thresholds: tuple[int, ...] = ()

    @abstractmethod
    def targets(
        self,
        *,
        service_ids: Collection[int] | None = None,
        target_ids: Collection[int] | None = None,
    ) -> list[Target]:
        """The targets of these services (or these targets), by name."""

    @abstractmethod
    def counts(
        self,
        target_ids: Collection[int],
        start: datetime,
        end: datetime,
        step: str,
        *,
        latency_ms: int | None = None,
    ) -> dict[int, list[Counts | None]]:
        """For each target, one entry per bucket of ``step`` in [start, end) (both aligned to
        the step, UTC); ``None`` where nothing ran."""

    def count_columns(
        self,
        target_ids: Collection[int],
        start: datetime,
        end: datetime,
        step: str,
        *,
        latency_ms: int | None = None,
    ) -> dict[int, np.ndarray]:
        """``counts`` as arrays: for each target, a (4, buckets) float array of up, degraded,
        down and fast runs (fast: 0 when no threshold is asked; zeros where nothing ran).
        Sources that keep columns override it to read months of minutes without a Python
        step per bucket."""
        found = {}
        series_of = self.counts(target_ids, start, end, step, latency_ms=latency_ms)
        for target, series in series_of.items():
            columns = np.zeros((4, len(series)))
            for index, bucket in enumerate(series):
                if bucket is not None:
                    columns[:, index] = (bucket.up, bucket.degraded, bucket.down, bucket.fast or 0)
            found[target] = columns
        return found

    @abstractmethod
    def states(self, target_ids: Collection[int]) -> dict[int, str]:
        """Each target's state now: "up", "degraded", "down", "unknown" or "paused"."""


_SOURCES: dict[str, Source] = {}


def register(source: Source) -> None:
    _SOURCES[source.kind] = source


def source(kind: str) -> Source | None:
    return _SOURCES.get(kind)


def sources() -> list[Source]:
    return list(_SOURCES.values())


def buckets(start: datetime, end: datetime, step: str) -> int:
    """How many buckets of ``step`` lie in [start, end); a ValueError if either end is not on
    the step's boundary (a caller's bug, not user input)."""
    length = STEPS[step]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for moment in (start, end):
        if (moment - epoch) % length:
            raise ValueError(f"{moment.isoformat()} is not on a {step} boundary")
    return max(0, (end - start) // length)
