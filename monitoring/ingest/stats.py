"""In-process counters for ingest, for /metrics to expose; no dependencies, no I/O.

The ingest views call :func:`observe` for every request: how many alerts of each pipeline
result (``created``, ``resent``, …; ``empty`` counts requests without alerts) or which refusal
(``invalid``, ``not_found``, ``rate_limited``, …) came from each source, and how long the
request took. The exporter reads :func:`snapshot`.
Each web process counts its own requests (as a Prometheus target per process would).
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

# Upper bounds (seconds) of the request-latency histogram; Prometheus's default buckets.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_lock = threading.Lock()
# (source, result) → how many alerts (or refused requests) ended that way.
_counts: dict[tuple[str, str], int] = {}
# source → per-bucket request counts (non-cumulative; the last one is +Inf), sum and count.
_latency: dict[str, list[int]] = {}
_latency_sum: dict[str, float] = {}
# Pipeline batches run, and the requests they held (group commit: requests per batch).
_batches = {"batches": 0, "requests": 0}


def observe(source: str, result: str, seconds: float | None = None, count: int = 1) -> None:
    """Count ``count`` outcomes of ``result`` from ``source``.

    ``seconds``, when given, is one request's duration; a request whose alerts had several
    results passes it with only one of its calls, so each request is timed once.
    """
    with _lock:
        key = (source, result)
        _counts[key] = _counts.get(key, 0) + count
        if seconds is not None:
            buckets = _latency.setdefault(source, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            _latency_sum[source] = _latency_sum.get(source, 0.0) + seconds


def observe_batch(requests: int) -> None:
    """One pipeline batch ran, holding ``requests`` requests (several when they were merged)."""
    with _lock:
        _batches["batches"] += 1
        _batches["requests"] += requests


def snapshot() -> dict[str, Any]:
    """A copy: ``{"counts": {(source, result): n}, "latency": {source: {"buckets": [(le, cumulative
    count), …, (inf, n)], "sum": s, "count": n}}, "batches": {"batches": n, "requests": n}}``."""
    with _lock:
        latency = {}
        for source, buckets in _latency.items():
            cumulative, running = [], 0
            for bound, n in zip((*BUCKETS, float("inf")), buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            latency[source] = {
                "buckets": cumulative,
                "sum": _latency_sum[source],
                "count": running,
            }
        return {"counts": dict(_counts), "latency": latency, "batches": dict(_batches)}


def reset() -> None:
    with _lock:
        _counts.clear()
        _latency.clear()
        _latency_sum.clear()
        _batches.update(batches=0, requests=0)
