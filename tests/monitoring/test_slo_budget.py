"""Error budgets to the minute, over real probe histories: attainment, budget remaining, burn
rate and time to exhaustion; calendar windows start with exactly 100 %; finished days are
remembered and read back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.models import SLODay
from monitoring.slos.budget import figures, sparkline
from monitoring.slos.compute import Counter, segments
from monitoring.slos.windows import bounds
from tests.monitoring.test_slo_support import (
    DOWN,
    MINUTE,
    UP,
    check,
    make_slo,
    runs,
    service,
    target,
)

__all__ = ["check", "service", "target"]  # fixtures

NOW = datetime(2025, 6, 10, 12, 37, 20, tzinfo=UTC)
N = NOW.replace(second=0)
W = N - timedelta(days=7)
HISTORY_START = W - timedelta(minutes=90)


def history_spans() -> list[tuple[int, str]]:
    """Minute by minute from 90 minutes before the 7-day window: 40 down minutes across the
    window's start (10 inside), 20 in the middle of a day, 6 in the last hour, and the minute
    in progress at NOW down (it must not count yet)."""
    mid = datetime(2025, 6, 6, 3, 0, tzinfo=UTC)
    plan = [
        (HISTORY_START, UP),
        (W - timedelta(minutes=30), DOWN),
        (W + timedelta(minutes=10), UP),
        (mid, DOWN),
        (mid + timedelta(minutes=20), UP),
        (N - timedelta(minutes=60), DOWN),
        (N - timedelta(minutes=54), UP),
        (N, DOWN),
        (N + timedelta(minutes=3), None),
    ]
    return [((plan[i + 1][0] - at) // MINUTE, status) for i, (at, status) in enumerate(plan[:-1])]


def statuses() -> dict[datetime, str]:
    out, at = {}, HISTORY_START
    for minutes, status in history_spans():
        for _ in range(minutes):
            out[at] = status
            at += MINUTE
    return out


@pytest.fixture
def history(check):
    runs(check, HISTORY_START, history_spans())
    return statuses()


def brute(minutes: dict[datetime, str], start: datetime, end: datetime) -> tuple[int, int]:
    inside = [s for at, s in minutes.items() if start <= at < end]
    return len(inside) - inside.count(DOWN), len(inside)


def test_segments_cut_at_hours_and_days():
    start = datetime(2025, 6, 1, 22, 37, tzinfo=UTC)
    end = datetime(2025, 6, 4, 1, 5, tzinfo=UTC)
    assert [
        (step, a.isoformat()[5:16], b.isoformat()[5:16]) for step, a, b in segments(start, end)
    ] == [
        ("minute", "06-01T22:37", "06-01T23:00"),
        ("hour", "06-01T23:00", "06-02T00:00"),
        ("day", "06-02T00:00", "06-04T00:00"),
        ("hour", "06-04T00:00", "06-04T01:00"),
        ("minute", "06-04T01:00", "06-04T01:05"),
    ]
    short = datetime(2025, 6, 1, 23, 50, tzinfo=UTC)
    assert [s for s, _, _ in segments(short, short + timedelta(hours=2))] == [
        "minute",
        "hour",
        "minute",
    ]


def test_a_rolling_window_counts_every_minute_exactly(service, history):
    slo = make_slo(service, window="rolling_7d", objective="99")
    found = figures(slo, NOW)
    assert (found.start, found.end, found.now) == (W, N, N)
    assert (found.tally.good, found.tally.total) == (10080 - 36, 10080)
    assert found.attainment == pytest.approx((10080 - 36) / 10080)
    assert found.budget_remaining == pytest.approx(1 - (36 / 10080) / 0.01)
    assert found.burn_rate == pytest.approx((6 / 60) / 0.01)
    assert found.time_to_exhaustion == timedelta(days=7) * found.budget_remaining / 10
    assert found.status == "ok"


def test_it_agrees_with_a_minute_by_minute_count_at_any_minute(service, history):
    slo = make_slo(service, window="rolling_7d", objective="99")
    for offset in (0, 1, 7, 23, 60, 61, 600, 1441):
        now = NOW - timedelta(minutes=offset)
        end = N - timedelta(minutes=offset)
        found = figures(slo, now)
        good, total = brute(history, end - timedelta(days=7), end)
        assert (found.tally.good, found.tally.total) == (good, total), offset
        good, total = brute(history, end - timedelta(hours=1), end)
        assert found.burn_rate == pytest.approx(((total - good) / total) / 0.01), offset


def test_finished_days_are_remembered_and_read_back_unchanged(
    service, history, django_assert_max_num_queries
):
    slo = make_slo(service, window="rolling_7d", objective="99")
    first = figures(slo, NOW)
    # Days that ended two hours before NOW: June 3 … June 9; of the window's first day (a
    # partial one) its minutes too, read once from the probes.
    days = dict(SLODay.objects.filter(slo=slo).values_list("day", "minutes"))
    assert sorted(days) == [datetime(2025, 6, d).date() for d in range(3, 10)]
    assert [day.day for day, minutes in days.items() if minutes] == [3]
    # Remembered days are what the next computation reads, not the probe rollups.
    SLODay.objects.filter(slo=slo, day=datetime(2025, 6, 6).date()).update(good=0)
    with django_assert_max_num_queries(12):
        again = figures(slo, NOW)
    assert again.tally.total == first.tally.total
    assert again.tally.good == first.tally.good - (1440 - 20)


def test_a_calendar_month_starts_with_exactly_the_whole_budget(service, check):
    # June starts at 22:00 UTC on May 31 in Berlin; the 30 minutes before it were all down.
    june = datetime(2025, 5, 31, 22, 0, tzinfo=UTC)
    runs(check, june - timedelta(hours=2), [(90, UP), (30, DOWN), (1, UP), (1, DOWN)])
    monthly = make_slo(
        service, window="calendar_month", time_zone="Europe/Berlin", objective="99.9"
    )
    sliced = make_slo(
        service,
        name="Checkout minutes",
        window="calendar_month",
        time_zone="Europe/Berlin",
        objective="99.9",
        budgeting="timeslices",
    )
    rolling = make_slo(service, name="Checkout weekly", window="rolling_7d", objective="99.9")

    at_start = figures(monthly, june + timedelta(seconds=40))
    assert (at_start.start, at_start.end) == (june, datetime(2025, 6, 30, 22, 0, tzinfo=UTC))
    assert at_start.budget_remaining == 1.0
    assert at_start.attainment is None
    assert figures(sliced, june).budget_remaining == 1.0
    assert figures(rolling, june).budget_remaining < 0  # the rolling window still sees May

    # The first minute was up: still exactly the whole budget, attainment 100 %.
    first = figures(monthly, june + MINUTE + timedelta(seconds=40))
    assert (first.budget_remaining, first.attainment) == (1.0, 1.0)
    # The second was down: occurrences see half the runs bad; slices see one bad minute of
    # the 43.2 the month allows (0.1 % of 30 days).
    second = june + 2 * MINUTE
    assert figures(monthly, second).budget_remaining == pytest.approx(1 - 0.5 / 0.001)
    assert figures(sliced, second).budget_remaining == pytest.approx(1 - 1 / 43.2)


def test_calendar_windows_follow_the_time_zone_across_a_dst_change():
    during = datetime(2025, 3, 27, 12, 0, tzinfo=UTC)
    start, end = bounds("calendar_week", "Europe/Berlin", during)
    assert start == datetime(2025, 3, 23, 23, 0, tzinfo=UTC)  # Monday 00:00 CET
    assert end == datetime(2025, 3, 30, 22, 0, tzinfo=UTC)  # Monday 00:00 CEST
    start, end = bounds("calendar_quarter", "UTC", during)
    assert (start.month, end.month, start.day, end.day) == (1, 4, 1, 1)
    start, end = bounds("calendar_month", "Asia/Kolkata", during)
    assert start == datetime(2025, 2, 28, 18, 30, tzinfo=UTC)


def test_time_slices_count_slices_that_reach_their_target(service, check):
    start = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
    # Three runs a minute: 10 minutes with one down run in three, 5 all up, 5 with two down.
    two_of_three = [UP, DOWN, UP]
    one_of_three = [DOWN, DOWN, UP]
    end = runs(check, start, [(10, "pattern")], pattern=two_of_three)
    end = runs(check, end, [(5, UP)], per_minute=3)
    end = runs(check, end, [(5, "pattern")], pattern=one_of_three)
    slo = make_slo(
        service,
        window="rolling_7d",
        objective="99",
        budgeting="timeslices",
        timeslice_target="60",
    )
    counter = Counter(slo, end)
    tally = counter.range(start, end)
    assert (tally.good, tally.total) == (15, 20)  # 2/3 ≥ 60 %, 1/3 is not
    slo.timeslice_target, slo.timeslice_minutes = None, 5  # 100 % of each 5 minutes
    assert Counter(slo, end).range(start, end) == type(tally)(1, 4)
    slo.timeslice_target = "65"  # 10/15 of a five-minute slice is good enough
    assert Counter(slo, end).range(start, end) == type(tally)(3, 4)


def test_probe_latency_counts_runs_within_the_threshold(service, check):
    start = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
    end = runs(check, start, [(30, UP, 100.0), (10, UP, 400.0), (20, DOWN, 30.0)])
    slo = make_slo(
        service, sli_kind="probe_latency", sli_config={"threshold_ms": 250}, window="rolling_7d"
    )
    tally = Counter(slo, end).range(start, end)
    assert (tally.good, tally.total) == (50, 60)  # a quick "down" still answered in time


def test_the_sparkline_ends_at_the_budget_now(service, history):
    slo = make_slo(service, window="rolling_7d", objective="99")
    line = sparkline(slo, NOW)
    assert len(line) == 8  # the partial first day, six days, today so far
    assert line[-1] == pytest.approx(figures(slo, NOW).budget_remaining, abs=1e-5)
    assert line[0] == pytest.approx(1 - (10 / 683) / 0.01, abs=1e-5)  # 12:37 to midnight
