"""record_samples: validation, series upsert, denormalised last values, cheap batches."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.metrics import MAX_BATCH, SampleError, SampleInput, record_samples
from monitoring.models import MetricSample, MetricSeries
from tocsin.services import ServiceError


def test_a_sample_creates_its_series_with_the_last_value(crew):
    now = timezone.now()
    recorded = record_samples(
        crew.team, SampleInput("queue_depth", 7, {"queue": "mail"}, time=now), now=now
    )
    assert (recorded.samples, recorded.series, recorded.new_series) == (1, 1, 1)
    series = MetricSeries.objects.get()
    assert (series.team, series.name, series.labels, series.kind) == (
        crew.team,
        "queue_depth",
        {"queue": "mail"},
        "gauge",
    )
    assert (series.last_value, series.last_at) == (7.0, now)
    assert str(series) == 'queue_depth{queue="mail"}'
    assert MetricSample.objects.get().value == 7.0


def test_it_accepts_dicts_and_defaults_the_time_to_now(crew):
    now = timezone.now()
    record_samples(crew.team, [{"name": "up", "value": 1}], now=now)
    assert MetricSample.objects.get().time == now


def test_label_order_does_not_make_a_new_series(crew):
    record_samples(crew.team, SampleInput("x", 1, {"a": "1", "b": "2"}))
    recorded = record_samples(crew.team, SampleInput("x", 2, {"b": "2", "a": "1"}))
    assert recorded.new_series == 0
    assert MetricSeries.objects.count() == 1
    assert MetricSample.objects.count() == 2


def test_series_are_per_team(crew):
    record_samples(crew.team, SampleInput("x", 1))
    record_samples(crew.other_team, SampleInput("x", 1))
    assert MetricSeries.objects.count() == 2


def test_a_batch_costs_a_few_queries_whatever_its_size(crew, django_assert_max_num_queries):
    now = timezone.now()
    record_samples(crew.team, [SampleInput("cpu", 1, {"host": f"h{i}"}) for i in range(50)])
    batch = [
        SampleInput("cpu", i, {"host": f"h{i % 100}"}, time=now - timedelta(seconds=i % 7))
        for i in range(500)
    ]
    # series read, create missing + read back, samples insert, last-value update (+ savepoint)
    with django_assert_max_num_queries(8):
        recorded = record_samples(crew.team, batch, now=now)
    assert (recorded.samples, recorded.series, recorded.new_series) == (500, 100, 50)
    assert MetricSample.objects.count() == 550


def test_the_last_value_only_moves_forward(crew):
    now = timezone.now()
    record_samples(crew.team, SampleInput("x", 5, time=now), now=now)
    record_samples(crew.team, SampleInput("x", 1, time=now - timedelta(minutes=1)), now=now)
    series = MetricSeries.objects.get()
    assert (series.last_value, series.last_at) == (5.0, now)
    later = now + timedelta(seconds=10)
    record_samples(crew.team, SampleInput("x", 9, time=later), now=later)
    series.refresh_from_db()
    assert (series.last_value, series.last_at) == (9.0, later)


def test_within_a_batch_the_newest_sample_is_the_last_value(crew):
    now = timezone.now()
    record_samples(
        crew.team,
        [SampleInput("x", 3, time=now), SampleInput("x", 2, time=now - timedelta(seconds=5))],
        now=now,
    )
    assert MetricSeries.objects.get().last_value == 3.0


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        (SampleInput("1bad", 1), "name"),
        (SampleInput("has-dash", 1), "name"),
        (SampleInput("", 1), "name"),
        (SampleInput("x" * 201, 1), "name"),
        (SampleInput("ok", math.nan), "value"),
        (SampleInput("ok", math.inf), "value"),
        (SampleInput("ok", True), "value"),
        (SampleInput("ok", "3"), "value"),  # type: ignore[arg-type]
        (SampleInput("ok", 1, {"bad-name": "x"}), "labels"),
        (SampleInput("ok", 1, {"__reserved": "x"}), "labels"),
        (SampleInput("ok", 1, {"host": 3}), "labels"),  # type: ignore[dict-item]
        (SampleInput("ok", 1, kind="histogram"), "kind"),
    ],
)
def test_invalid_samples_are_refused_and_nothing_is_stored(crew, sample, field):
    good = SampleInput("fine", 1)
    with pytest.raises(SampleError) as caught:
        record_samples(crew.team, [good, sample])
    assert (caught.value.index, caught.value.sample_field) == (1, field)
    assert MetricSeries.objects.count() == 0
    assert MetricSample.objects.count() == 0


def test_times_must_be_aware_recent_and_not_in_the_future(crew):
    now = timezone.now()
    for when in (
        now.replace(tzinfo=None),
        now - timedelta(hours=2),
        now + timedelta(hours=1),
    ):
        with pytest.raises(SampleError) as caught:
            record_samples(crew.team, SampleInput("x", 1, time=when), now=now)
        assert caught.value.sample_field == "time"
    assert MetricSample.objects.count() == 0


def test_a_gauge_cannot_receive_counter_samples(crew):
    record_samples(crew.team, SampleInput("x", 1, kind="gauge"))
    with pytest.raises(SampleError, match="gauge") as caught:
        record_samples(crew.team, [SampleInput("y", 1), SampleInput("x", 2, kind="counter")])
    assert caught.value.index == 1
    assert MetricSample.objects.count() == 1
    assert not MetricSeries.objects.filter(name="y").exists()


def test_a_new_series_takes_the_kind_it_was_sent_with(crew):
    record_samples(crew.team, SampleInput("requests_total", 10, kind="counter"))
    record_samples(crew.team, SampleInput("requests_total", 12))  # kind left out: fine
    assert MetricSeries.objects.get().kind == "counter"


def test_a_batch_has_a_size_limit(crew):
    with pytest.raises(ServiceError, match=str(MAX_BATCH)):
        record_samples(crew.team, [SampleInput("x", i) for i in range(MAX_BATCH + 1)])
    assert MetricSample.objects.count() == 0
