"""How the SLA report classifies minutes, on small hand-made series (no database): the rules
of ``incidents.reports.sla_minutes`` one at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from incidents.reports.sla_minutes import classify, month_bounds, occurrences
from monitoring.availability import Counts

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
UP, DOWN = Counts(up=1), Counts(down=1)


def tally(minutes, *, hours=None, holds=None, maintenance=(), n=None, start=T0):
    n = n if n is not None else len(minutes[0])
    return classify(
        start,
        n,
        maintenance,
        minutes,
        hours if hours is not None else [[] for _ in minutes],
        holds or [1] * len(minutes),
    )


def test_a_check_is_down_when_most_of_its_runs_in_the_minute_are():
    series = [
        Counts(up=1, down=1),  # a tie: not down
        Counts(up=1, down=2),  # most: down
        Counts(degraded=2, down=1),  # degraded reached the service
        Counts(degraded=1, down=2),
    ]
    t = tally([series])
    assert (t.measured, t.down) == (4, 2)


def test_any_one_check_down_makes_the_minute_down_and_overlaps_count_once():
    front = [DOWN, DOWN, UP, None]
    api = [UP, DOWN, DOWN, None]
    t = tally([front, api])
    assert (t.measured, t.down, t.unmeasured) == (3, 3, 1)


def test_a_verdict_stands_until_the_next_run_of_a_slower_check():
    every_five = [DOWN, None, None, None, None, UP, None, None, None, None, None, None]
    t = tally([every_five], holds=[5])
    # minutes 0-4 down, 5-9 up, 10-11 unmeasured (no run for longer than the interval)
    assert (t.down, t.up, t.unmeasured) == (5, 5, 2)


def test_maintenance_takes_a_minute_whose_first_second_it_covers():
    series = [DOWN] * 10
    window = (T0 + 2 * M + timedelta(seconds=30), T0 + 5 * M)  # covers minutes 3 and 4
    t = tally([series], maintenance=[window])
    assert (t.maintenance, t.down_in_maintenance, t.down) == (2, 2, 8)


def test_hours_without_minutes_are_estimated_from_the_largest_down_share():
    start = T0
    n = 120
    first_hour = [UP] * 60 + [None] * 60  # minutes only in the first hour
    hours = [[Counts(up=60), Counts(up=45, down=15)]]
    other = [[None] * n]
    other_hours = [[None, Counts(up=30, down=30)]]
    t = tally(
        [first_hour, *other],
        hours=[*hours, *other_hours],
        holds=[1, 1],
        maintenance=[(start + 60 * M, start + 80 * M)],
        n=n,
    )
    # second hour: 40 free minutes x max(15/60, 30/60) = 20 estimated down
    assert (t.maintenance, t.measured, t.estimated, t.down) == (20, 100, 40, 20)


def test_months_are_counted_in_real_minutes_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    for month, hours in (
        (date(2026, 3, 1), 743),
        (date(2026, 10, 1), 745),
        (date(2026, 6, 1), 720),
    ):
        start, end = month_bounds(month, berlin)
        assert (end - start) / timedelta(hours=1) == hours


def test_a_recurring_window_keeps_its_local_start_across_dst_and_may_cross_midnight():
    window = SimpleNamespace(
        is_recurring=True,
        weekdays=[5],  # Saturday
        start_time=time(23, 0),
        duration=timedelta(hours=2),
        time_zone="Europe/Berlin",
        starts_at=None,
        ends_at=None,
    )
    start, end = month_bounds(date(2026, 3, 1), ZoneInfo("Europe/Berlin"))
    found = occurrences(window, start, end)
    # Saturdays 7, 14, 21 at 22:00Z (CET); 28 March 23:00 CET = 22:00Z, ending 01:00 CEST on
    # the 29th = 00:00Z (two elapsed hours over the jump); and 28 Feb 23:00 CET overlaps the
    # month's first hour.
    assert [(s.isoformat(), e - s) for s, e in found] == [
        ("2026-02-28T22:00:00+00:00", timedelta(hours=2)),
        ("2026-03-07T22:00:00+00:00", timedelta(hours=2)),
        ("2026-03-14T22:00:00+00:00", timedelta(hours=2)),
        ("2026-03-21T22:00:00+00:00", timedelta(hours=2)),
        ("2026-03-28T22:00:00+00:00", timedelta(hours=2)),
    ]
