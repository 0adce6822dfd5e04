"""Downsampling and retention: rollups aggregate right, storage stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.metrics import (
    MINUTE_RETENTION,
    RAW_RETENTION,
    downsample_and_prune,
    series_points,
)
from monitoring.models import MetricRollup, MetricSample, MetricSeries, series_key

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def series(crew) -> MetricSeries:
    return MetricSeries.objects.create(
        team=crew.team, name="cpu", labels={"host": "a"}, key=series_key("cpu", {"host": "a"})
    )


def add(series, start: datetime, values: list[float], step: int = 10) -> None:
    MetricSample.objects.bulk_create(
        MetricSample(series=series, time=start + timedelta(seconds=i * step), value=v)
        for i, v in enumerate(values)
    )


def test_raw_samples_become_one_minute_rollups_after_an_hour(series):
    add(series, T0, [1, 5, 3, 2, 4, 6])  # minute 0
    add(series, T0 + timedelta(minutes=1), [10, 0])  # minute 1
    add(series, T0 + timedelta(minutes=90), [7])  # too recent to roll at the time below
    done = downsample_and_prune(now=T0 + timedelta(minutes=75))
    assert done["rolled_1m"] == 2
    first, second = MetricRollup.objects.filter(resolution="1m").order_by("bucket_start")
    assert (first.bucket_start, first.min, first.max, first.sum, first.count, first.last) == (
        T0,
        1,
        6,
        21,
        6,
        6,
    )
    assert first.avg == 3.5
    assert (second.min, second.max, second.count, second.last) == (0, 10, 2, 0)
    # Raw samples stay for their retention, the rollup is not made twice.
    assert MetricSample.objects.count() == 9
    assert downsample_and_prune(now=T0 + timedelta(minutes=76))["rolled_1m"] == 0
    assert MetricRollup.objects.count() == 2


def test_minute_rollups_become_hourly_ones_after_two_days(series):
    add(series, T0, [1, 2, 3], step=60)  # three minutes in hour 0
    add(series, T0 + timedelta(minutes=30), [9], step=60)
    add(series, T0 + timedelta(hours=1), [4, 4], step=60)  # hour 1
    downsample_and_prune(now=T0 + timedelta(hours=3))
    assert not MetricRollup.objects.filter(resolution="1h").exists()
    downsample_and_prune(now=T0 + timedelta(days=2, hours=3))
    hours = list(MetricRollup.objects.filter(resolution="1h").order_by("bucket_start"))
    assert [(h.bucket_start, h.min, h.max, h.sum, h.count, h.last) for h in hours] == [
        (T0, 1, 9, 15, 4, 9),
        (T0 + timedelta(hours=1), 4, 4, 8, 2, 4),
    ]


def test_storage_stays_bounded_over_weeks(series):
    """A sample every 10 minutes for 20 days, downsampling every 6 hours: what is kept stays
    within each tier's retention and nothing is dropped before it is rolled up."""
    now = T0
    for _step in range(20 * 4):
        add(series, now, [float(i) for i in range(36)], step=600)
        now += timedelta(hours=6)
        downsample_and_prune(now=now)
    raw_per_day = 144
    assert MetricSample.objects.count() <= raw_per_day * (RAW_RETENTION.days + 1)
    oldest_raw = MetricSample.objects.order_by("time").first().time
    assert oldest_raw >= now - RAW_RETENTION - timedelta(hours=6)
    minutes = MetricRollup.objects.filter(resolution="1m")
    assert minutes.count() <= raw_per_day * (MINUTE_RETENTION.days + 1)
    assert minutes.order_by("bucket_start").first().bucket_start >= now - MINUTE_RETENTION - (
        timedelta(hours=6)
    )
    hours = MetricRollup.objects.filter(resolution="1h")
    # Every hour from the start until two days ago is summarised exactly once, nothing lost.
    assert hours.order_by("bucket_start").first().bucket_start == T0
    assert sum(hours.values_list("count", flat=True)) == hours.count() * 6


def test_old_series_are_forgotten(series, crew):
    series.last_at = T0
    series.save()
    downsample_and_prune(now=T0 + timedelta(days=401))
    assert not MetricSeries.objects.exists()


def test_points_reach_up_to_now_at_every_resolution(series):
    add(series, T0, [float(i) for i in range(180)], step=60)  # three hours, one a minute
    now = T0 + timedelta(hours=3)
    downsample_and_prune(now=now)  # rolls the first two hours into 1m buckets
    minute = series_points(series, since=T0, until=now, resolution="1m")
    assert len(minute) == 180
    assert [p["last"] for p in minute] == [float(i) for i in range(180)]
    hourly = series_points(series, since=T0, until=now, resolution="1h")
    assert [(p["time"], p["count"], p["min"], p["max"]) for p in hourly] == [
        (T0, 60, 0, 59),
        (T0 + timedelta(hours=1), 60, 60, 119),
        (T0 + timedelta(hours=2), 60, 120, 179),
    ]
    raw = series_points(series, since=now - timedelta(minutes=5), until=now, resolution="raw")
    assert [p["value"] for p in raw] == [175, 176, 177, 178, 179]
