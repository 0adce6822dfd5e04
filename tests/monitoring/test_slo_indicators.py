"""The metric-ratio and incidents SLIs over real rows: counters (with a restart) and gauges
read from raw samples and from monitoring's own rollups alike; minutes with an open P1/P2
incident of the service; config errors named per field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incidents.lifecycle.models import Incident
from monitoring.metrics.rollups import downsample_and_prune
from monitoring.models import MetricRollup, MetricSample, Service
from monitoring.slos import registry
from monitoring.slos.budget import figures
from monitoring.slos.compute import Counter
from monitoring.slos.services import SLOInvalid
from tests.monitoring.test_slo_support import make_slo, samples, series, service

__all__ = ["service"]  # fixture

T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
Tally = registry.Tally


def counter_values(step_before: int, after: int, restart: int) -> list[float]:
    """From T0 - 1 h, one value a minute for three hours: rising by ``step_before`` until
    minute ``restart`` after T0, where the counter restarts at 4 x ``after``, then rising by
    ``after``."""
    values = []
    for minute in range(-60, 120):
        if minute < restart:
            values.append(step_before * (minute + 60))
        else:
            values.append(4 * after + after * (minute - restart))
    return values


@pytest.fixture
def counters(service):
    total = series(service, "http_requests_total", "counter", code="all")
    good = series(service, "http_requests_ok_total", "counter", code="all")
    samples(total, T0 - timedelta(hours=1), counter_values(100, 10, 30))
    samples(good, T0 - timedelta(hours=1), counter_values(90, 9, 30))
    return make_slo(
        service,
        sli_kind="metric_ratio",
        sli_config={"good": "http_requests_ok_total", "total": 'http_requests_total{code="all"}'},
        window="rolling_7d",
    )


def test_counters_count_increases_across_a_restart(counters):
    # 30 minutes of +100, the restart (40), 89 minutes of +10: 3930 requests, 3537 good.
    counter = Counter(counters, T0 + timedelta(hours=3))
    assert counter.range(T0, T0 + timedelta(hours=2)) == Tally(3537.0, 3930.0)
    assert counter.range(T0 + 25 * MINUTE, T0 + 35 * MINUTE) == Tally(
        5 * 90 + 36 + 4 * 9, 5 * 100 + 40 + 4 * 10
    )


def test_counters_read_the_same_from_monitorings_rollups(counters):
    downsample_and_prune(T0 + timedelta(days=3))
    assert not MetricSample.objects.exists()  # only the 1-minute and 1-hour rollups are left
    assert MetricRollup.objects.filter(resolution="1h").count() == 6
    counter = Counter(counters, T0 + timedelta(days=3))
    assert counter.range(T0, T0 + timedelta(hours=2)) == Tally(3537.0, 3930.0)
    assert counter.range(T0 + 25 * MINUTE, T0 + 35 * MINUTE) == Tally(522.0, 580.0)


def test_gauges_sum_their_samples(service):
    total = series(service, "requests_per_minute", region="eu")
    other = series(service, "requests_per_minute", region="us")
    good = series(service, "good_requests_per_minute", region="eu")
    samples(total, T0, [1000.0] * 60)
    samples(other, T0, [500.0] * 60)  # left out by the matcher
    samples(good, T0, [990.0] * 10 + [900.0] * 5 + [990.0] * 45)
    slo = make_slo(
        service,
        sli_kind="metric_ratio",
        sli_config={
            "good": 'good_requests_per_minute{region="eu"}',
            "total": 'requests_per_minute{region=~"eu|eu-west"}',
        },
    )
    counter = Counter(slo, T0 + timedelta(hours=1))
    assert counter.range(T0, T0 + timedelta(hours=1)) == Tally(60 * 990.0 - 5 * 90, 60000.0)
    assert counter.read("minute", T0 + 9 * MINUTE, T0 + 11 * MINUTE) == [
        Tally(990.0, 1000.0),
        Tally(900.0, 1000.0),
    ]
    assert counter.read("minute", T0 - MINUTE, T0) == [None]  # nothing measured


def incident(service: Service, priority: str, opened: datetime, resolved: datetime | None):
    return Incident.objects.create(
        team=service.team,
        service=service,
        title=f"{priority} at {opened:%H:%M}",
        priority=priority,
        status="resolved" if resolved else "triggered",
        created_at=opened,
        resolved_at=resolved,
    )


def test_minutes_with_an_open_p1_or_p2_incident_are_bad(service, crew):
    other = Service.objects.create(team=crew.team, name="Search")
    at = T0 + timedelta(minutes=10, seconds=30)
    incident(service, "P1", at, at + timedelta(minutes=7, seconds=15))  # minutes 10-17
    incident(service, "P2", T0 + 12 * MINUTE, T0 + 14 * MINUTE)  # inside the first
    incident(service, "P3", T0 + 30 * MINUTE, T0 + 40 * MINUTE)  # not counted
    incident(other, "P1", T0, T0 + 50 * MINUTE)  # another service
    incident(service, "P2", T0 + 50 * MINUTE, None)  # still open
    slo = make_slo(service, sli_kind="incidents", objective="99.9", window="calendar_month")
    counter = Counter(slo, T0 + timedelta(hours=2))
    assert counter.read("hour", T0, T0 + timedelta(hours=2)) == [Tally(42, 60), Tally(0, 60)]
    minutes = counter.read("minute", T0 + 9 * MINUTE, T0 + 19 * MINUTE)
    assert [t.good for t in minutes] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    p1_only = make_slo(
        service, name="P1 only", sli_kind="incidents", sli_config={"priorities": ["P1"]}
    )
    assert Counter(p1_only, T0 + timedelta(hours=2)).range(T0, T0 + timedelta(hours=1)) == Tally(
        52, 60
    )


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("metric_ratio", {"good": "ok{"}, "sli_config.good"),
        ("metric_ratio", {"good": "a", "total": "b", "bad": "c"}, "sli_config.bad"),
        ("probe_latency", {"threshold_ms": 300}, "sli_config.threshold_ms"),
        ("probe_availability", {"checks": [999999]}, "sli_config.checks"),
        ("incidents", {"priorities": ["P9"]}, "sli_config.priorities"),
        ("nonsense", {}, "sli_kind"),
    ],
)
def test_bad_configs_are_refused_per_field(service, kind, config, field):
    with pytest.raises(SLOInvalid) as caught:
        make_slo(service, sli_kind=kind, sli_config=config)
    assert field in caught.value.fields


def test_the_slo_itself_is_validated_per_field(service):
    with pytest.raises(SLOInvalid) as caught:
        make_slo(
            service,
            name=" ",
            objective="100",
            window="rolling_1d",
            time_zone="Mars/Olympus",
            timeslice_minutes=7,
        )
    assert set(caught.value.fields) == {
        "name",
        "objective",
        "window",
        "time_zone",
        "timeslice_minutes",
    }


def test_a_metric_history_gives_attainment_budget_and_burn_rate_to_the_minute(service):
    # A calendar week from Monday 00:00 UTC: 1,000 requests a minute, 10 of them failing in
    # the first 100 minutes of Tuesday, none otherwise.
    monday = datetime(2025, 6, 9, tzinfo=UTC)
    total = series(service, "requests")
    good = series(service, "good_requests")
    minutes = 2 * 1440
    samples(total, monday, [1000.0] * minutes)
    failing = range(1440, 1540)
    samples(good, monday, [990.0 if m in failing else 1000.0 for m in range(minutes)])
    slo = make_slo(
        service,
        sli_kind="metric_ratio",
        sli_config={"good": "good_requests", "total": "requests"},
        objective="99.9",
        window="calendar_week",
    )
    for minute in (1440 + 30, 1440 + 100, 1440 + 160):
        now = monday + minute * MINUTE + timedelta(seconds=20)
        found = figures(slo, now)
        bad = 10 * min(100, minute - 1440)
        assert (found.tally.good, found.tally.total) == (1000 * minute - bad, 1000 * minute)
        assert found.attainment == pytest.approx(1 - bad / (1000 * minute))
        assert found.budget_remaining == pytest.approx(1 - (bad / (1000 * minute)) / 0.001)
        last_hour_bad = 10 * len([m for m in failing if minute - 60 <= m < minute])
        assert found.burn_rate == pytest.approx(last_hour_bad / 60_000 / 0.001)
