"""Ordering guard for tailing an id-ordered table that concurrent transactions write.

On PostgreSQL an id is taken when a row is inserted, not when it commits: event 11 can become
visible before event 10. A tailer that only remembered "the highest id seen" would skip 10 forever.
The tracker remembers the holes below the highest id for a while and keeps asking for them by
id (so a hole never makes the relay re-read the rows after it); a hole that stays empty (the
transaction rolled back) is forgotten after ``gap_timeout`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

MAX_TRACKED_GAPS = 2000


class GapTracker:
    def __init__(
        self,
        start_after: int,
        gap_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cursor = start_after
        self.gap_timeout = gap_timeout
        self.clock = clock
        self.gaps: dict[int, float] = {}

    def missing(self) -> list[int]:
        """The holes below the cursor still worth asking for (ascending); fetch these and the
        rows past ``cursor`` to see both late rows and new ones."""
        self._expire()
        return sorted(self.gaps)

    def accept(self, ids: Iterable[int]) -> list[int]:
        """Return, of the fetched ids (ascending), those not delivered before."""
        now = self.clock()
        fresh: list[int] = []
        for row_id in ids:
            if row_id > self.cursor:
                first_missing = max(self.cursor + 1, row_id - MAX_TRACKED_GAPS)
                for missing in range(first_missing, row_id):
                    self.gaps[missing] = now
                self.cursor = row_id
                fresh.append(row_id)
            elif self.gaps.pop(row_id, None) is not None:
                fresh.append(row_id)
        if len(self.gaps) > MAX_TRACKED_GAPS:
            for stale in sorted(self.gaps)[: len(self.gaps) - MAX_TRACKED_GAPS]:
                del self.gaps[stale]
        return fresh

    def _expire(self) -> None:
        limit = self.clock() - self.gap_timeout
        for row_id in [i for i, seen in self.gaps.items() if seen < limit]:
            del self.gaps[row_id]
