"""Timing a page in-process, as the page benches do: Django's test client (the view, the ORM and
the templates, without HTTP), warm once, then ``repeat`` requests."""

from __future__ import annotations

import statistics
import time

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


def measure(client: Client, url: str, repeat: int) -> dict[str, float | int]:
    """p50/p95 wall time, this process's CPU p50 and the queries of the last request."""
    response = client.get(url)  # warm caches (templates, static manifest) once
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    times, cpu = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, -(-len(times) * 95 // 100) - 1)], 1),
        # This process's CPU alone (Python: view, ORM, templates); the rest of the wall time is
        # the database and, on a shared machine, waiting for a core.
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "queries": len(queries),
        "kb": round(len(response.content) / 1024),
    }
