"""Rollups (minute rows with exact percentiles, hour and day rows merged from histograms),
retention pruning, and the storage rollups take."""

from __future__ import annotations

from datetime import timedelta

from django.test.utils import override_settings

from probes.checks import rollups
from probes.checks.choices import DAY_RETENTION, HOUR_RETENTION, MINUTE_RETENTION, Period
from probes.checks.models import Result, ResultStatus, Rollup
from probes.checks.results import BINS, histogram_of, histogram_percentile
from tests.probes import test_check_target as support
from tests.probes.test_check_target import T0, make_check

service, target = support.service, support.target  # fixtures


def results(check, start, latencies, status=ResultStatus.UP, spacing=0.5):
    for i, latency in enumerate(latencies):
        at = start + timedelta(seconds=i * spacing)
        Result.objects.create(
            probe=check, slot_at=at, started_at=at, status=status, latency_ms=latency
        )


def row(check, period, start) -> Rollup:
    return Rollup.objects.get(probe=check, period=period, bucket_start=start)


def test_a_minute_row_counts_each_status_and_takes_exact_percentiles(service, target):
    check = make_check(service, target)
    results(check, T0, [float(ms) for ms in range(1, 101)])  # 1 … 100 ms within the minute
    results(check, T0 + timedelta(seconds=55), [900.0], ResultStatus.DOWN)
    Result.objects.create(
        probe=check,
        slot_at=T0 + timedelta(seconds=56),
        started_at=T0 + timedelta(seconds=56),
        status=ResultStatus.UNKNOWN,
        slots=4,
    )

    rollups.rollup(T0 + timedelta(minutes=1))

    minute = row(check, Period.MINUTE, T0)
    assert (minute.up, minute.degraded, minute.down, minute.unknown) == (100, 0, 1, 4)
    assert (minute.p50, minute.p95, minute.p99) == (51, 96, 100)
    assert sum(minute.counts()) == 101
    assert minute.uptime == 100 / 101  # unknown slots are not downtime


def test_an_unfinished_minute_is_not_rolled_up(service, target):
    check = make_check(service, target)
    results(check, T0, [10.0])

    rollups.rollup(T0 + timedelta(seconds=30))

    assert not Rollup.objects.filter(period=Period.MINUTE).exists()


def test_hours_and_days_merge_the_minutes_exactly_and_read_percentiles_from_the_histogram(
    service, target
):
    check = make_check(service, target)
    for minute in range(3):
        results(check, T0 + timedelta(minutes=minute), [20.0, 40.0, 80.0, 300.0])

    rollups.rollup(T0 + timedelta(minutes=3))

    hour = row(check, Period.HOUR, T0.replace(minute=0))
    day = row(check, Period.DAY, T0.replace(hour=0, minute=0))
    for merged in (hour, day):
        assert merged.up == 12
        assert merged.counts() == [3 * n for n in histogram_of([20, 40, 80, 300])]
    # Approximate: interpolated within the histogram bin of the true value.
    assert 25 <= hour.p50 <= 50
    assert 250 <= hour.p99 <= 500


def test_rolling_up_twice_writes_the_same_rows(service, target):
    check = make_check(service, target)
    results(check, T0, [10.0, 20.0])
    rollups.rollup(T0 + timedelta(minutes=1))
    before = list(Rollup.objects.values_list("period", "up", "p50").order_by("period"))

    rollups.rollup(T0 + timedelta(minutes=1, seconds=30))

    assert list(Rollup.objects.values_list("period", "up", "p50").order_by("period")) == before


def test_histogram_percentiles():
    counts = [0] * BINS
    assert histogram_percentile(counts, 0.5) is None
    counts[3] = 10  # ten runs between 50 and 100 ms
    assert histogram_percentile(counts, 0.5) == 75
    assert histogram_percentile(counts, 1.0) == 100


def test_pruning_keeps_each_level_for_its_retention(service, target):
    check = make_check(service, target)
    now = T0 + timedelta(days=800)
    results(check, now - timedelta(hours=47), [1.0])
    results(check, now - timedelta(hours=49), [1.0])
    for period, keep in (
        (Period.MINUTE, MINUTE_RETENTION),
        (Period.HOUR, HOUR_RETENTION),
        (Period.DAY, DAY_RETENTION),
    ):
        for age in (keep - timedelta(hours=1), keep + timedelta(hours=1)):
            Rollup.objects.create(probe=check, period=period, bucket_start=now - age, up=1)

    deleted = rollups.prune(now)

    assert deleted == {"results": 1, "minute": 1, "hour": 1, "day": 1}
    assert Result.objects.count() == 1
    assert Rollup.objects.count() == 3


@override_settings(TOCSIN_CHECK_RESULT_RETENTION=3600, TOCSIN_CHECK_DAY_RETENTION=timedelta(days=1))
def test_retention_is_read_from_settings(service, target):
    check = make_check(service, target)
    now = T0 + timedelta(days=10)
    results(check, now - timedelta(hours=2), [1.0])
    Rollup.objects.create(probe=check, period=Period.DAY, bucket_start=now - timedelta(days=2))

    assert rollups.prune(now) == {"results": 1, "minute": 0, "hour": 0, "day": 1}


# -- storage --------------------------------------------------------------------------------------
# PostgreSQL's sizes: a heap tuple's header (23 bytes, aligned to 24) and its line pointer (4);
# an index tuple's header (8) and line pointer (4); columns as stored, with their alignment.
TUPLE, LINE_POINTER, INDEX_TUPLE = 24, 4, 8
COLUMNS = [  # (bytes, alignment) of a Rollup row's columns, in table order
    (8, 8),  # id bigint
    (8, 8),  # probe_id bigint
    (2, 1),  # period varchar(1): 1-byte header + 1 character
    (8, 8),  # bucket_start timestamptz
    (4, 4),  # up
    (4, 4),  # degraded
    (4, 4),  # down
    (4, 4),  # unknown
    (4, 4),  # p50
    (4, 4),  # p95
    (4, 4),  # p99
    (1 + 4 * BINS, 1),  # histogram bytea: 1-byte header + 12 uint32
]
INDEXES = [8, 8 + 2 + 8, 2 + 8]  # pkey; (probe, period, bucket_start); (period, bucket_start)


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


def rollup_row_bytes() -> int:
    data = 0
    for size, alignment in COLUMNS:
        data = _align(data, alignment) + size
    heap = _align(TUPLE + data, 8) + LINE_POINTER
    return heap + sum(_align(INDEX_TUPLE + key, 8) + LINE_POINTER for key in INDEXES)


def test_a_rollup_row_stays_small():
    assert len(Rollup._meta.concrete_fields) == len(COLUMNS)  # the estimate names every column
    assert rollup_row_bytes() <= 256


def test_a_year_of_day_rollups_for_1000_checks_stays_under_100_mb():
    """The rows that accumulate with time are the day rows (2 years kept); minute and hour
    rows are fixed windows (14 and 90 days) whatever the age of the installation."""
    checks, per_year = 1000, 365
    year_of_days = rollup_row_bytes() * per_year * checks
    assert year_of_days < 100 * 1024 * 1024

    # The fixed windows, for the record (and the README): minute rows dominate.
    per_check = {
        "minute": MINUTE_RETENTION / timedelta(minutes=1),
        "hour": HOUR_RETENTION / timedelta(hours=1),
        "day": DAY_RETENTION / timedelta(days=1),
    }
    total = sum(per_check.values()) * rollup_row_bytes() * checks
    assert total < 6 * 1024**3  # about 5 GB for 1,000 checks at steady state
