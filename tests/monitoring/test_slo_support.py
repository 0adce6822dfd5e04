"""Histories for the SLO tests, built through the real components: probe runs as probes'
``Result`` rows rolled up by probes' own roll-up, metric samples as ``MetricSample`` rows (and
rolled up by monitoring's downsampling where a test asks), incidents as ``Incident`` rows.

Imported by the other ``test_slo_*`` files; its own tests show the histories read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitoring.availability import source
from monitoring.models import MetricSample, MetricSeries, Service
from monitoring.models.metrics import series_key
from monitoring.slos import services
from probes.checks import rollups
from probes.checks.choices import ResultStatus
from probes.checks.models import Check, Result
from tests.probes import test_check_target as probe_support

make_check, target = probe_support.make_check, probe_support.target  # target: a fixture

MINUTE = timedelta(minutes=1)
UP, DOWN, DEGRADED = ResultStatus.UP, ResultStatus.DOWN, ResultStatus.DEGRADED


@pytest.fixture
def service(crew: Any) -> Service:
    return Service.objects.create(team=crew.team, name="Checkout API")


@pytest.fixture
def check(service: Service, target: Any) -> Check:
    return make_check(service, target)


def runs(
    check: Check,
    start: datetime,
    spans: Iterable[tuple],
    *,
    per_minute: int = 1,
    latency: float = 20.0,
    pattern: list[str] | None = None,
) -> datetime:
    """Probe runs from ``start``: (minutes, status[, latency]) spans, ``per_minute`` runs a
    minute (or, for status "pattern", the statuses of ``pattern`` each minute), rolled up by
    probes' roll-up; returns the end of the history."""
    rows, at = [], start
    for minutes, status, *rest in spans:
        ms = rest[0] if rest else latency
        for _ in range(minutes):
            statuses = pattern if pattern is not None and status == "pattern" else None
            statuses = statuses or [status] * per_minute
            for k, each in enumerate(statuses):
                moment = at + timedelta(seconds=k * 60 / len(statuses))
                rows.append(
                    Result(
                        probe=check,
                        slot_at=moment,
                        started_at=moment,
                        status=each,
                        latency_ms=ms,
                    )
                )
            at += MINUTE
    Result.objects.bulk_create(rows, batch_size=2000)
    rollups.rollup(at + 3 * MINUTE, lookback=at - start + 3 * MINUTE)
    return at


def series(service: Service, name: str, kind: str = "gauge", **labels: str) -> MetricSeries:
    return MetricSeries.objects.create(
        team=service.team, name=name, labels=labels, key=series_key(name, labels), kind=kind
    )


def samples(series_row: MetricSeries, start: datetime, values: Iterable[float]) -> datetime:
    """One sample a minute (at :30) from ``start``; returns the end."""
    rows, at = [], start
    for value in values:
        rows.append(MetricSample(series=series_row, time=at + timedelta(seconds=30), value=value))
        at += MINUTE
    MetricSample.objects.bulk_create(rows, batch_size=2000)
    return at


def make_slo(service: Service, **fields: Any):
    fields.setdefault("name", "Checkout availability")
    fields.setdefault("sli_kind", "probe_availability")
    fields.setdefault("objective", "99")
    return services.create_slo(service, **fields)


T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def test_a_probe_history_reads_back_per_minute(check):
    end = runs(check, T0, [(2, UP), (1, DOWN), (1, "pattern")], pattern=[UP, DOWN, UP])
    counts = source("probe").counts([check.pk], T0, end, "minute")[check.pk]
    assert [(c.good, c.total) for c in counts] == [(1, 1), (1, 1), (0, 1), (2, 3)]
