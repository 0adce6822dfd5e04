"""The first computation of an SLO is as cheap as every later one (issue #12: 100 SLOs over 90
days "computed in under a second in total", the first time too).

Time-slice SLOs count their settled days from one read of all their minutes (numpy over the
packed columns), not day by day; the days are remembered with their minutes, so a rolling
window's start is still counted to the minute after the probes dropped their minutes. The
probes' column reader agrees with their row-by-row reader bucket for bucket, latency included.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.availability import source
from monitoring.models import SLODay
from monitoring.slos.budget import figures
from monitoring.slos.compute import Counter, reading_together
from probes.checks.results import Rollup
from tests.monitoring.test_slo_budget import NOW, N, W, brute, history
from tests.monitoring.test_slo_support import check, make_slo, service, target

__all__ = ["check", "history", "service", "target"]  # fixtures


def first_computation_queries(slo) -> int:
    with CaptureQueriesContext(connection) as queries:
        figures(slo, NOW)
    return len(queries)


def test_a_new_time_slice_slo_reads_its_days_at_once(service, history):
    week = make_slo(service, name="week", window="rolling_7d", budgeting="timeslices")
    quarter = make_slo(service, name="quarter", window="rolling_90d", budgeting="timeslices")
    # 7 or 90 settled days to count for the first time: the same queries (day by day, each
    # day cost a read of its rollups, of its recent minutes and a write of its own).
    assert first_computation_queries(quarter) == first_computation_queries(week)
    assert SLODay.objects.filter(slo=quarter).count() == 90  # March 12 (partial) … June 9
    # One-minute slices of one run a minute: a slice is good exactly when its minute was up.
    found = figures(week, NOW)
    assert (found.tally.good, found.tally.total) == brute(history, W, N)
    with CaptureQueriesContext(connection) as again:
        assert figures(week, NOW).tally == found.tally
    assert len(again) <= first_computation_queries(week)


def test_time_slices_outlive_the_probes_minutes(service, history):
    slo = make_slo(service, window="rolling_7d", budgeting="timeslices")
    first = figures(slo, NOW)
    settled = SLODay.objects.filter(slo=slo)
    assert settled.count() == 7 and not settled.filter(minutes=b"").exists()
    # The probes prune their settled days' minutes; the window's first (partial) day is still
    # counted minute by minute, from what the SLO remembered.
    Rollup.objects.filter(day__lte=datetime(2025, 6, 9).date()).update(minutes=b"", hours=b"")
    assert figures(slo, NOW).tally == first.tally


def test_an_evaluation_remembers_its_days_together(service, history):
    slos = [
        make_slo(service, name=f"slo {n}", slug=f"slo-{n}", budgeting="timeslices")
        for n in range(3)
    ]
    with reading_together(slos, NOW):
        tallies = [Counter(slo, NOW).range(W, N) for slo in slos]
        assert not SLODay.objects.exists()  # written once, when the evaluation ends
    assert SLODay.objects.count() == 3 * 7
    assert tallies == [Counter(slo, NOW).range(W, N) for slo in slos]  # read back alike


@pytest.mark.parametrize("latency_ms", [None, 10, 25, 250])
@pytest.mark.parametrize("step", ["minute", "hour", "day"])
def test_the_column_reader_agrees_with_the_row_reader(check, history, step, latency_ms):
    probes = source("probe")
    start = datetime(2025, 6, 2, tzinfo=UTC) if step == "day" else W.replace(minute=0)
    end = datetime(2025, 6, 11, tzinfo=UTC) if step == "day" else N.replace(minute=0)
    rows = probes.counts([check.pk], start, end, step, latency_ms=latency_ms)[check.pk]
    columns = probes.count_columns([check.pk], start, end, step, latency_ms=latency_ms)[check.pk]
    expected = np.zeros_like(columns)
    for index, bucket in enumerate(rows):
        if bucket is not None:
            expected[:, index] = (bucket.up, bucket.degraded, bucket.down, bucket.fast or 0)
    assert columns.shape == (4, len(rows))
    assert (columns == expected).all()
    assert columns[2].sum() > 0  # the history's down minutes are in range
