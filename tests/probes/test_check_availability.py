"""Checks' history as monitoring reads it (``monitoring.availability``): per day, hour and minute,
from the day rows, the packed hours and minutes and the minutes not packed yet."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring.availability import Counts, buckets, source
from probes.checks import rollups
from probes.checks.models import ResultStatus
from tests.probes import test_check_target as support
from tests.probes.test_check_rollups import results
from tests.probes.test_check_target import T0, make_check

service, target = support.service, support.target  # fixtures

DAY = T0.replace(hour=0)


@pytest.fixture
def history(service, target):
    """Minute 0: three fast runs; minute 1: one slow run and one down; minute 2: nothing;
    an hour later: two runs, one degraded (packed minutes for the first hour, recent ones
    for the second)."""
    check = make_check(service, target)
    results(check, T0, [5.0, 7.0, 9.0])
    results(check, T0 + timedelta(minutes=1), [300.0])
    results(check, T0 + timedelta(minutes=1, seconds=30), [12.0], status=ResultStatus.DOWN)
    rollups.rollup(T0 + timedelta(minutes=3))
    rollups.rollup(T0 + timedelta(hours=1, minutes=11))  # the first hour's minutes packed
    later = T0 + timedelta(hours=1, minutes=20)
    results(check, later, [20.0])
    results(check, later + timedelta(seconds=10), [40.0], status=ResultStatus.DEGRADED)
    rollups.rollup(T0 + timedelta(hours=1, minutes=22))
    return check


def test_it_is_registered_by_the_probes_app(service, target):
    probe = source("probe")
    check = make_check(service, target)
    assert probe is not None and probe.kind == "probe"
    [found] = probe.targets(service_ids=[service.pk])
    assert (found.id, found.name, found.service_id, found.team_id) == (
        check.pk,
        "Shop front",
        service.pk,
        service.team_id,
    )
    assert found.interval == 60
    assert probe.states([check.pk]) == {check.pk: "unknown"}


def test_minutes_come_from_packed_and_recent_rows(history):
    start = T0
    series = source("probe").counts([history.pk], start, start + timedelta(hours=2), "minute")
    minutes = series[history.pk]
    assert len(minutes) == 120
    assert minutes[0] == Counts(up=3)
    assert minutes[1] == Counts(up=1, down=1)
    assert minutes[2] is None
    assert minutes[80] == Counts(up=1, degraded=1)
    assert sum(1 for m in minutes if m is not None) == 3


def test_hours_and_days_sum_the_runs_and_count_fast_ones_exactly(history):
    probe = source("probe")
    hours = probe.counts([history.pk], DAY, DAY + timedelta(days=1), "hour", latency_ms=25)
    assert hours[history.pk][12] == Counts(up=4, down=1, fast=4)  # 5, 7, 9, 12 ms < 25 ms
    assert hours[history.pk][13] == Counts(up=1, degraded=1, fast=1)
    assert hours[history.pk][11] is None
    days = probe.counts([history.pk], DAY, DAY + timedelta(days=2), "day", latency_ms=250)
    assert days[history.pk] == [Counts(up=5, degraded=1, down=1, fast=6), None]


def test_packed_minutes_count_fast_runs_no_higher_than_their_percentiles_prove(history):
    minutes = source("probe").counts(
        [history.pk], T0, T0 + timedelta(minutes=2), "minute", latency_ms=250
    )[history.pk]
    # Minute 0: p99 = 9 ms < 250: all three. Minute 1 (300 and 12 ms): p50 = 12 < 250 but
    # p95 = 300: half of two runs.
    assert [m.fast for m in minutes] == [3, 1]


def test_a_window_inside_a_day_reads_only_its_slots(history):
    start = T0 + timedelta(minutes=1)
    minutes = source("probe").counts([history.pk], start, start + timedelta(minutes=1), "minute")
    assert minutes == {history.pk: [Counts(up=1, down=1)]}


def test_thresholds_off_the_histogram_and_unaligned_windows_are_refused(history):
    probe = source("probe")
    with pytest.raises(ValueError, match="latency thresholds"):
        probe.counts([history.pk], DAY, DAY + timedelta(days=1), "day", latency_ms=300)
    with pytest.raises(ValueError, match="boundary"):
        buckets(T0 + timedelta(seconds=30), T0 + timedelta(hours=1), "minute")


def test_it_reads_any_number_of_checks_in_few_queries(
    service, target, django_assert_max_num_queries
):
    checks = [make_check(service, target, name=f"c{n}") for n in range(5)]
    for check in checks:
        results(check, T0, [5.0])
    rollups.rollup(T0 + timedelta(minutes=3))
    with django_assert_max_num_queries(2):
        days = source("probe").counts([c.pk for c in checks], DAY, DAY + timedelta(days=1), "day")
    assert all(days[c.pk] == [Counts(up=1)] for c in checks)
