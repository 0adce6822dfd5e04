"""Retention policies keep what restic's ``forget --keep-*`` keeps.

Most expectations are restic's own: its documentation's examples and the golden files of its
``TestApplyPolicy`` (``internal/data/snapshot_policy_test.go`` and ``testdata/
policy_keep_snapshots_<n>`` in restic/restic, 0.18), over the same 103 snapshot times. The
two-year simulation computes its expectation from the calendar by hand, not with the module.
No database: plain functions on plain datetimes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from backups.engine.retention import Decision, Duration, Policy, apply

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True)
class Snap:
    """A snapshot as restic's test builds it: its place in the input list, and its time."""

    n: int
    time: datetime


def _times(text: str) -> list[datetime]:
    """restic's ``parseTimeUTC`` spelling, one time a line."""
    return [datetime.fromisoformat(line.strip()).replace(tzinfo=UTC) for line in text.split("\n")]


# restic's testExpireSnapshots, in restic's (unsorted) order; five snapshots share 2015-10-22.
RESTIC_TIMES = _times(
    """2014-09-01 10:20:30
    2014-09-02 10:20:30
    2014-09-05 10:20:30
    2014-09-06 10:20:30
    2014-09-08 10:20:30
    2014-09-09 10:20:30
    2014-09-10 10:20:30
    2014-09-11 10:20:30
    2014-09-20 10:20:30
    2014-09-22 10:20:30
    2014-08-08 10:20:30
    2014-08-10 10:20:30
    2014-08-12 10:20:30
    2014-08-13 10:20:30
    2014-08-13 10:20:30.1
    2014-08-15 10:20:30
    2014-08-18 10:20:30
    2014-08-20 10:20:30
    2014-08-21 10:20:30
    2014-08-22 10:20:30
    2014-10-01 10:20:30
    2014-10-02 10:20:30
    2014-10-05 10:20:30
    2014-10-06 10:20:30
    2014-10-08 10:20:30
    2014-10-09 10:20:30
    2014-10-10 10:20:30
    2014-10-11 10:20:30
    2014-10-20 10:20:30
    2014-10-22 10:20:30
    2014-11-08 10:20:30
    2014-11-10 10:20:30
    2014-11-12 10:20:30
    2014-11-13 10:20:30
    2014-11-13 10:20:30.1
    2014-11-15 10:20:30
    2014-11-18 10:20:30
    2014-11-20 10:20:30
    2014-11-21 10:20:30
    2014-11-22 10:20:30
    2015-09-01 10:20:30
    2015-09-02 10:20:30
    2015-09-05 10:20:30
    2015-09-06 10:20:30
    2015-09-08 10:20:30
    2015-09-09 10:20:30
    2015-09-10 10:20:30
    2015-09-11 10:20:30
    2015-09-20 10:20:30
    2015-09-22 10:20:30
    2015-08-08 10:20:30
    2015-08-10 10:20:30
    2015-08-12 10:20:30
    2015-08-13 10:20:30
    2015-08-13 10:20:30.1
    2015-08-15 10:20:30
    2015-08-18 10:20:30
    2015-08-20 10:20:30
    2015-08-21 10:20:30
    2015-08-22 10:20:30
    2015-10-01 10:20:30
    2015-10-02 10:20:30
    2015-10-05 10:20:30
    2015-10-06 10:20:30
    2015-10-08 10:20:30
    2015-10-09 10:20:30
    2015-10-10 10:20:30
    2015-10-11 10:20:30
    2015-10-20 10:20:30
    2015-10-22 10:20:30
    2015-10-22 10:20:30
    2015-10-22 10:20:30
    2015-10-22 10:20:30
    2015-10-22 10:20:30
    2015-11-08 10:20:30
    2015-11-10 10:20:30
    2015-11-12 10:20:30
    2015-11-13 10:20:30
    2015-11-13 10:20:30.1
    2015-11-15 10:20:30
    2015-11-18 10:20:30
    2015-11-20 10:20:30
    2015-11-21 10:20:30
    2015-11-22 10:20:30
    2016-01-01 01:02:03
    2016-01-01 01:03:03
    2016-01-01 07:08:03
    2016-01-03 07:02:03
    2016-01-04 10:23:03
    2016-01-04 11:23:03
    2016-01-04 12:23:03
    2016-01-04 12:24:03
    2016-01-04 12:28:03
    2016-01-04 12:30:03
    2016-01-04 16:23:03
    2016-01-05 09:02:03
    2016-01-06 08:02:03
    2016-01-07 10:02:03
    2016-01-08 20:02:03
    2016-01-09 21:02:03
    2016-01-12 21:02:03
    2016-01-12 21:08:03
    2016-01-18 12:02:03"""
)
RESTIC_SNAPSHOTS = [Snap(n, t) for n, t in enumerate(RESTIC_TIMES)]
NEWEST_FIRST = sorted(RESTIC_TIMES, reverse=True)


def _decide(policy: Policy, snapshots: list[Snap] = RESTIC_SNAPSHOTS) -> list[Decision[Snap]]:
    return apply(policy, snapshots, time_of=lambda snap: snap.time)


def _kept(policy: Policy, snapshots: list[Snap] = RESTIC_SNAPSHOTS) -> list[datetime]:
    return [d.snapshot.time for d in _decide(policy, snapshots) if d.keep]


def _kept_with_reasons(policy: Policy) -> list[tuple[datetime, tuple[str, ...]]]:
    return [(d.snapshot.time, d.reasons) for d in _decide(policy) if d.keep]


# --- restic's golden files, keep lists copied newest first ------------------------------------

RESTIC_GOLDEN = {
    # policy_keep_snapshots_1
    "last-10": (
        Policy(last=10),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2016-01-12 21:02:03
        2016-01-09 21:02:03
        2016-01-08 20:02:03
        2016-01-07 10:02:03
        2016-01-06 08:02:03
        2016-01-05 09:02:03
        2016-01-04 16:23:03
        2016-01-04 12:30:03""",
    ),
    # policy_keep_snapshots_5
    "hourly-20": (
        Policy(hourly=20),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2016-01-09 21:02:03
        2016-01-08 20:02:03
        2016-01-07 10:02:03
        2016-01-06 08:02:03
        2016-01-05 09:02:03
        2016-01-04 16:23:03
        2016-01-04 12:30:03
        2016-01-04 11:23:03
        2016-01-04 10:23:03
        2016-01-03 07:02:03
        2016-01-01 07:08:03
        2016-01-01 01:03:03
        2015-11-22 10:20:30
        2015-11-21 10:20:30
        2015-11-20 10:20:30
        2015-11-18 10:20:30
        2015-11-15 10:20:30
        2015-11-13 10:20:30.1""",
    ),
    # policy_keep_snapshots_6
    "daily-3": (
        Policy(daily=3),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2016-01-09 21:02:03""",
    ),
    # policy_keep_snapshots_8
    "daily-30": (
        Policy(daily=30),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2016-01-09 21:02:03
        2016-01-08 20:02:03
        2016-01-07 10:02:03
        2016-01-06 08:02:03
        2016-01-05 09:02:03
        2016-01-04 16:23:03
        2016-01-03 07:02:03
        2016-01-01 07:08:03
        2015-11-22 10:20:30
        2015-11-21 10:20:30
        2015-11-20 10:20:30
        2015-11-18 10:20:30
        2015-11-15 10:20:30
        2015-11-13 10:20:30.1
        2015-11-12 10:20:30
        2015-11-10 10:20:30
        2015-11-08 10:20:30
        2015-10-22 10:20:30
        2015-10-20 10:20:30
        2015-10-11 10:20:30
        2015-10-10 10:20:30
        2015-10-09 10:20:30
        2015-10-08 10:20:30
        2015-10-06 10:20:30
        2015-10-05 10:20:30
        2015-10-02 10:20:30
        2015-10-01 10:20:30
        2015-09-22 10:20:30""",
    ),
    # policy_keep_snapshots_11
    "weekly-2": (
        Policy(weekly=2),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03""",
    ),
    # policy_keep_snapshots_15
    "daily-2-weekly-2-monthly-6": (
        Policy(daily=2, weekly=2, monthly=6),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2015-11-22 10:20:30
        2015-10-22 10:20:30
        2015-09-22 10:20:30
        2015-08-22 10:20:30
        2014-11-22 10:20:30""",
    ),
    # policy_keep_snapshots_16: ten years asked, three in the data, so the oldest is kept too
    "yearly-10": (
        Policy(yearly=10),
        """2016-01-18 12:02:03
        2015-11-22 10:20:30
        2014-11-22 10:20:30
        2014-08-08 10:20:30""",
    ),
    # policy_keep_snapshots_27
    "within-13d23h": (
        Policy(within="13d23h"),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2016-01-12 21:02:03
        2016-01-09 21:02:03
        2016-01-08 20:02:03
        2016-01-07 10:02:03
        2016-01-06 08:02:03
        2016-01-05 09:02:03
        2016-01-04 16:23:03""",
    ),
    # policy_keep_snapshots_32
    "within-weekly-1y2m3d3h": (
        Policy(within_weekly="1y2m3d3h"),
        """2016-01-18 12:02:03
        2016-01-12 21:08:03
        2016-01-09 21:02:03
        2016-01-03 07:02:03
        2015-11-22 10:20:30
        2015-11-15 10:20:30
        2015-11-08 10:20:30
        2015-10-22 10:20:30
        2015-10-11 10:20:30
        2015-10-02 10:20:30
        2015-09-22 10:20:30
        2015-09-20 10:20:30
        2015-09-11 10:20:30
        2015-09-06 10:20:30
        2015-08-22 10:20:30
        2015-08-15 10:20:30
        2015-08-08 10:20:30
        2014-11-22 10:20:30
        2014-11-15 10:20:30""",
    ),
}


@pytest.mark.parametrize("name", RESTIC_GOLDEN)
def test_keep_sets_match_restics_golden_files(name: str) -> None:
    policy, expected = RESTIC_GOLDEN[name]
    assert _kept(policy) == _times(expected)


def test_keep_within_uses_calendar_arithmetic_like_restics_golden_files() -> None:
    # policy_keep_snapshots_26: 2016-01-18 12:02:03 minus 1y1m1d is 2014-12-17 12:02:03, so
    # every snapshot of 2015 and 2016 and none of 2014.
    assert _kept(Policy(within="1y1d1m")) == [t for t in NEWEST_FIRST if t.year >= 2015]
    # policy_keep_snapshots_29: minus 1y2m3d is 2014-11-15 12:02:03, minus 3h 09:02:03.
    assert _kept(Policy(within="1y2m3d3h")) == [t for t in NEWEST_FIRST if t.year >= 2015] + _times(
        """2014-11-22 10:20:30
        2014-11-21 10:20:30
        2014-11-20 10:20:30
        2014-11-18 10:20:30
        2014-11-15 10:20:30"""
    )


def test_keep_daily_weekly_monthly_yearly_combination_matches_restic() -> None:
    # policy_keep_snapshots_17 (--keep-daily 7 --keep-weekly 2 --keep-monthly 3
    # --keep-yearly 10). The golden file stored for it predates restic 0.17's oldest-snapshot
    # rule; the last line is what that rule adds, exactly as golden file 16 (yearly 10) shows:
    # the yearly policy still has seven years left when it reaches the oldest snapshot.
    assert _kept_with_reasons(Policy(daily=7, weekly=2, monthly=3, yearly=10)) == [
        (
            datetime(2016, 1, 18, 12, 2, 3, tzinfo=UTC),
            ("daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"),
        ),
        (datetime(2016, 1, 12, 21, 8, 3, tzinfo=UTC), ("daily snapshot", "weekly snapshot")),
        (datetime(2016, 1, 9, 21, 2, 3, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2016, 1, 8, 20, 2, 3, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2016, 1, 7, 10, 2, 3, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2016, 1, 6, 8, 2, 3, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2016, 1, 5, 9, 2, 3, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2015, 11, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot", "yearly snapshot")),
        (datetime(2015, 10, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (datetime(2014, 11, 22, 10, 20, 30, tzinfo=UTC), ("yearly snapshot",)),
        (datetime(2014, 8, 8, 10, 20, 30, tzinfo=UTC), ("oldest yearly snapshot",)),
    ]


def test_unlimited_counts_keep_every_bucket_with_restics_reasons() -> None:
    # policy_keep_snapshots_39: --keep-daily 3 --keep-weekly 2 --keep-monthly unlimited
    # --keep-yearly unlimited.
    assert _kept_with_reasons(Policy(daily=3, weekly=2, monthly=-1, yearly=-1)) == [
        (
            datetime(2016, 1, 18, 12, 2, 3, tzinfo=UTC),
            ("daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"),
        ),
        (datetime(2016, 1, 12, 21, 8, 3, tzinfo=UTC), ("daily snapshot", "weekly snapshot")),
        (datetime(2016, 1, 9, 21, 2, 3, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2015, 11, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot", "yearly snapshot")),
        (datetime(2015, 10, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (datetime(2015, 9, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (datetime(2015, 8, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (datetime(2014, 11, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot", "yearly snapshot")),
        (datetime(2014, 10, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (datetime(2014, 9, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (datetime(2014, 8, 22, 10, 20, 30, tzinfo=UTC), ("monthly snapshot",)),
        (
            datetime(2014, 8, 8, 10, 20, 30, tzinfo=UTC),
            ("oldest monthly snapshot", "oldest yearly snapshot"),
        ),
    ]


def test_keep_monthly_30_keeps_the_newest_of_every_month_and_the_oldest_snapshot() -> None:
    # Nine months have snapshots, so 30 never runs out: the monthly column of golden file 39.
    assert _kept(Policy(monthly=30)) == _times(
        """2016-01-18 12:02:03
        2015-11-22 10:20:30
        2015-10-22 10:20:30
        2015-09-22 10:20:30
        2015-08-22 10:20:30
        2014-11-22 10:20:30
        2014-10-22 10:20:30
        2014-09-22 10:20:30
        2014-08-22 10:20:30
        2014-08-08 10:20:30"""
    )


def test_keep_within_windows_per_bucket_match_restic_with_reasons() -> None:
    # policy_keep_snapshots_35: --keep-within 1h --keep-within-hourly 1d --keep-within-daily 7d
    # --keep-within-weekly 1m --keep-within-monthly 1y --keep-within-yearly 9999y.
    policy = Policy(
        within="1h",
        within_hourly="1d",
        within_daily="7d",
        within_weekly="1m",
        within_monthly="1y",
        within_yearly="9999y",
    )
    assert _kept_with_reasons(policy) == [
        (
            datetime(2016, 1, 18, 12, 2, 3, tzinfo=UTC),
            (
                "within 1h",
                "hourly within 1d",
                "daily within 7d",
                "weekly within 1m",
                "monthly within 1y",
                "yearly within 9999y",
            ),
        ),
        (datetime(2016, 1, 12, 21, 8, 3, tzinfo=UTC), ("daily within 7d", "weekly within 1m")),
        (datetime(2016, 1, 9, 21, 2, 3, tzinfo=UTC), ("weekly within 1m",)),
        (datetime(2016, 1, 3, 7, 2, 3, tzinfo=UTC), ("weekly within 1m",)),
        (
            datetime(2015, 11, 22, 10, 20, 30, tzinfo=UTC),
            ("monthly within 1y", "yearly within 9999y"),
        ),
        (datetime(2015, 10, 22, 10, 20, 30, tzinfo=UTC), ("monthly within 1y",)),
        (datetime(2015, 9, 22, 10, 20, 30, tzinfo=UTC), ("monthly within 1y",)),
        (datetime(2015, 8, 22, 10, 20, 30, tzinfo=UTC), ("monthly within 1y",)),
        (datetime(2014, 11, 22, 10, 20, 30, tzinfo=UTC), ("yearly within 9999y",)),
        (datetime(2014, 8, 8, 10, 20, 30, tzinfo=UTC), ("oldest yearly within 9999y",)),
    ]


def test_keep_last_unlimited_keeps_every_snapshot() -> None:
    # policy_keep_snapshots_36 (and 37: unlimited hourly adds nothing to it).
    decisions = _decide(Policy(last=-1, hourly=-1))
    assert [d.snapshot.time for d in decisions if d.keep] == NEWEST_FIRST
    assert all(d.reasons[0] == "last snapshot" for d in decisions)


def test_keep_hourly_unlimited_keeps_the_newest_snapshot_of_each_hour() -> None:
    newest_of_hour = {}
    for t in NEWEST_FIRST:
        newest_of_hour.setdefault((t.date(), t.hour), t)
    assert _kept(Policy(hourly=-1)) == list(newest_of_hour.values())
    assert len(newest_of_hour) == 90  # 103 snapshots, 13 of them share an hour with a newer


def test_empty_policy_keeps_everything() -> None:
    # restic refuses to apply an empty policy (it would forget everything); we keep all.
    decisions = _decide(Policy())
    assert [d.snapshot.time for d in decisions] == NEWEST_FIRST
    assert all(d.keep and d.reasons == ("policy is empty",) for d in decisions)
    assert Policy(within="0d").is_empty()
    assert not Policy(daily=-1).is_empty()


def test_snapshots_with_the_same_time_keep_the_order_they_were_given_in() -> None:
    # restic sorts with a stable sort; policy_keep_snapshots_29 lists the five 2015-10-22
    # snapshots in input order.
    same_time = [d.snapshot.n for d in _decide(Policy(last=-1))]
    assert [
        n for n in same_time if RESTIC_TIMES[n] == datetime(2015, 10, 22, 10, 20, 30, tzinfo=UTC)
    ] == [69, 70, 71, 72, 73]


def test_decisions_cover_every_snapshot_newest_first_with_no_reasons_for_removed_ones() -> None:
    decisions = _decide(Policy(daily=3))
    assert [d.snapshot.time for d in decisions] == NEWEST_FIRST
    # 2016-01-18, then 2016-01-12 21:08 (not 21:02, the same day), then 2016-01-09.
    assert [n for n, d in enumerate(decisions) if d.keep] == [0, 1, 3]
    assert sum(d.keep for d in decisions) == 3
    assert all(d.reasons == () for d in decisions if not d.keep)
    assert apply(Policy(daily=3), [], time_of=lambda snap: snap) == []


# --- restic's documentation ("Removing backup snapshots") ------------------------------------


def test_keep_daily_4_over_twelve_sundays_keeps_the_last_four_sundays() -> None:
    sundays = [datetime(2019, 9, 1, 11, tzinfo=UTC) + timedelta(weeks=i) for i in range(12)]
    decisions = apply(Policy(daily=4), sundays, time_of=lambda t: t)
    assert [(d.snapshot, d.reasons) for d in decisions if d.keep] == [
        (datetime(2019, 11, 17, 11, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2019, 11, 10, 11, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2019, 11, 3, 11, tzinfo=UTC), ("daily snapshot",)),
        (datetime(2019, 10, 27, 11, tzinfo=UTC), ("daily snapshot",)),
    ]


def test_a_century_of_daily_backups_keeps_what_restics_documentation_counts() -> None:
    # "suppose you make one backup every day for 100 years. Then forget --keep-daily 7
    # --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 would keep the most recent 7 daily
    # snapshots and 4 last-day-of-the-week ones (since the 7 dailies already include 1
    # weekly). Additionally, 12 or 11 last-day-of-the-month snapshots [...] And finally 75 or
    # 74 last-day-of-the-year snapshots". The last run is a Sunday, so the dailies are one week.
    last = date(2024, 12, 29)
    days = [last - timedelta(days=i) for i in range(36_525)]
    runs = [datetime.combine(day, time(3), tzinfo=UTC) for day in days]
    policy = Policy(daily=7, weekly=5, monthly=12, yearly=75)
    kept = {
        d.snapshot.date(): d.reasons for d in apply(policy, runs, time_of=lambda t: t) if d.keep
    }

    assert sum("daily snapshot" in reasons for reasons in kept.values()) == 7
    only = {
        kind: sorted(day for day, reasons in kept.items() if reasons == (f"{kind} snapshot",))
        for kind in ("weekly", "monthly", "yearly")
    }
    assert only["weekly"] == [
        date(2024, 12, 1),
        date(2024, 12, 8),
        date(2024, 12, 15),
        date(2024, 12, 22),
    ]
    assert len(only["monthly"]) == 11
    assert only["monthly"][0] == date(2024, 1, 31)
    assert only["yearly"] == [date(year, 12, 31) for year in range(1950, 2024)]  # 74
    assert len(kept) == 7 + 4 + 11 + 74


def test_keep_within_reaches_back_from_the_newest_snapshot_by_calendar_months() -> None:
    # "2y5m7d3h will keep all snapshots made in the two years, five months, seven days and three
    # hours before the latest (most recent) snapshot" — by the calendar, as Go's AddDate:
    # 2024-08-10 12:00 minus 2y5m7d is 2022-03-03 12:00, minus 3h is 09:00; strictly after.
    newest = datetime(2024, 8, 10, 12, tzinfo=UTC)
    edge = datetime(2022, 3, 3, 9, tzinfo=UTC)
    snapshots = [newest, edge + timedelta(seconds=1), edge]
    assert _kept_times(Policy(within="2y5m7d3h"), snapshots) == snapshots[:2]

    # A month back from 31 March is "31 February", which Go normalises to 2 March (2024 is a
    # leap year); restic keeps what is newer than that, not than 29 February.
    newest = datetime(2024, 3, 31, 12, tzinfo=UTC)
    snapshots = [
        newest,
        datetime(2024, 3, 2, 12, 0, 1, tzinfo=UTC),
        datetime(2024, 3, 2, 12, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
    ]
    assert _kept_times(Policy(within="1m"), snapshots) == snapshots[:2]


def test_keep_within_is_relative_to_the_newest_snapshot_not_to_now() -> None:
    # A plan whose backups stopped a year ago still keeps its last week of snapshots.
    old = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
    assert _kept_times(Policy(within="7d"), old) == sorted(old, reverse=True)[:7]


def test_snapshots_dated_after_now_do_not_move_the_window() -> None:
    # A skewed clock wrote a snapshot a year ahead; restic takes the newest snapshot before now
    # as the reference, and keeps the future one too (it is newer than any cutoff).
    now = datetime(2024, 6, 10, 12, tzinfo=UTC)
    past = [now - timedelta(days=i, hours=1) for i in range(10)]
    future = datetime(2025, 6, 10, tzinfo=UTC)
    snapshots = [future, *past]
    assert _kept_times(Policy(within="3d"), snapshots, now=now) == [future, *past[:3]]
    assert _kept_times(Policy(within="3d"), snapshots) == [future]


# --- time zones and DST ----------------------------------------------------------------------


def test_a_day_in_a_window_is_a_calendar_day_and_an_hour_is_elapsed_time() -> None:
    # Berlin springs forward on 2024-03-31: that calendar day has 23 hours. "1d" back from
    # 12:00 CEST is 12:00 CET the day before (23 elapsed hours), "24h" is 11:00 CET.
    newest = datetime(2024, 3, 31, 12, tzinfo=BERLIN)
    between = datetime(2024, 3, 30, 11, 30, tzinfo=BERLIN)  # 23.5 elapsed hours earlier
    assert _kept_times(Policy(within="1d"), [newest, between]) == [newest]
    assert _kept_times(Policy(within="24h"), [newest, between]) == [newest, between]
    assert _kept_times(Policy(within="1d1h"), [newest, between]) == [newest, between]


def test_a_window_ending_on_a_repeated_wall_time_resolves_it_as_go_does() -> None:
    # Berlin falls back on 2024-10-27: 02:30 happens twice. "1d" back from 02:30 CET on the 28th
    # is 02:30 on the 27th, which Go's time.Date (and so restic) reads as the second one, CET.
    newest = datetime(2024, 10, 28, 2, 30, tzinfo=BERLIN)
    first_0245 = datetime(2024, 10, 27, 0, 45, tzinfo=UTC)  # 02:45 CEST
    second_0245 = datetime(2024, 10, 27, 1, 45, tzinfo=UTC)  # 02:45 CET
    decisions = apply(
        Policy(within="1d"),
        [newest, first_0245, second_0245],
        time_of=lambda t: t.astimezone(BERLIN),
    )
    assert [(d.snapshot, d.keep) for d in decisions] == [
        (newest, True),
        (second_0245, True),
        (first_0245, False),
    ]


def test_buckets_count_in_the_time_zone_time_of_gives() -> None:
    # Runs at 00:30 in Berlin: the one on 1 March is still 29 February in UTC.
    runs = [
        datetime(2024, day.month, day.day, 0, 30, tzinfo=BERLIN)
        for day in (date(2024, 3, 1), date(2024, 2, 29), date(2024, 2, 28))
    ]
    stored = [run.astimezone(UTC) for run in runs]
    in_berlin = apply(Policy(monthly=2), stored, time_of=lambda t: t.astimezone(BERLIN))
    assert [(d.keep, d.reasons) for d in in_berlin] == [
        (True, ("monthly snapshot",)),  # March
        (True, ("monthly snapshot",)),  # February; both months used, so no oldest
        (False, ()),
    ]
    in_utc = apply(Policy(monthly=2), stored, time_of=lambda t: t)
    assert [(d.keep, d.reasons) for d in in_utc] == [
        (True, ("monthly snapshot",)),  # all three are February in UTC
        (False, ()),
        (True, ("oldest monthly snapshot",)),
    ]


def _kept_times(
    policy: Policy, snapshots: list[datetime], now: datetime | None = None
) -> list[datetime]:
    decisions = apply(policy, snapshots, time_of=lambda t: t, now=now)
    return [d.snapshot for d in decisions if d.keep]


# --- two years of daily runs -----------------------------------------------------------------


def _expected_two_year_keep(first: date, last: date) -> dict[date, tuple[str, ...]]:
    """Daily 7, weekly 4, monthly 12, yearly 3 over one run a day from ``first`` to ``last``,
    worked out from the calendar: the newest run of a week is that week's Sunday (or ``last``
    for its own week), of a month its last day, of a year 31 December."""
    assert first.year == last.year - 1  # two calendar years: "yearly 3" has one year left over

    def previous_month_end(day: date) -> date:
        return day.replace(day=1) - timedelta(days=1)

    daily = [last - timedelta(days=i) for i in range(7)]
    sunday = last - timedelta(days=last.isoweekday() % 7 or 7)  # the Sunday before last
    weekly = [last] + [sunday - timedelta(weeks=i) for i in range(3)]
    monthly = [last]
    while len(monthly) < 12:
        monthly.append(previous_month_end(monthly[-1]))
    yearly = [last, date(last.year - 1, 12, 31)]

    expected: dict[date, list[str]] = {}
    for kind, days in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
        for day in days:
            expected.setdefault(day, []).append(f"{kind} snapshot")
    for day in yearly:
        expected.setdefault(day, []).append("yearly snapshot")
    # The yearly policy reaches the oldest run with a year unused: restic keeps it as well.
    expected.setdefault(first, []).append("oldest yearly snapshot")
    return {day: tuple(reasons) for day, reasons in expected.items()}


@pytest.mark.parametrize(
    "run_at",
    [
        time(2, 30),  # on DST nights 02:30 is skipped (March) or repeated (October)
        time(0, 30),  # the UTC date is the day before: buckets must use Berlin's calendar
    ],
    ids=["02:30", "00:30"],
)
def test_retention_over_two_years_of_daily_runs_keeps_exactly_the_expected_set(
    run_at: time,
) -> None:
    first, last = date(2023, 1, 1), date(2024, 12, 30)  # 730 runs; 30 Dec 2024 is in ISO 2025-W01
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert len(days) == 730
    # Stored as a database would, in UTC, and in no particular order.
    runs = [datetime.combine(day, run_at, tzinfo=BERLIN).astimezone(UTC) for day in days]
    random.Random(730).shuffle(runs)

    policy = Policy(daily=7, weekly=4, monthly=12, yearly=3)
    decisions = apply(policy, runs, time_of=lambda t: t.astimezone(BERLIN))

    local_days = [d.snapshot.astimezone(BERLIN).date() for d in decisions]
    assert local_days == sorted(days, reverse=True)  # one run per Berlin day, newest first
    kept = {day: d.reasons for day, d in zip(local_days, decisions, strict=True) if d.keep}
    expected = _expected_two_year_keep(first, last)
    assert kept == expected
    assert len(kept) == 22
    assert kept[last] == (
        "daily snapshot",
        "weekly snapshot",
        "monthly snapshot",
        "yearly snapshot",
    )
    assert kept[date(2023, 12, 31)] == ("yearly snapshot",)  # the 12 months are all 2024's
    assert kept[first] == ("oldest yearly snapshot",)


# --- durations and validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duration", "spelled"),
    [
        ("2y5m7d3h", Duration(years=2, months=5, days=7, hours=3), "2y5m7d3h"),
        ("9h", Duration(hours=9), "9h"),
        ("5d7m", Duration(months=7, days=5), "7m5d"),  # restic's own parse tests
        ("4h3d9m", Duration(months=9, days=3, hours=4), "9m3d4h"),
        ("  7d ", Duration(days=7), "7d"),
        ("0d", Duration(), ""),
    ],
)
def test_parse_duration_reads_restics_syntax(text: str, duration: Duration, spelled: str) -> None:
    assert Policy.parse_duration(text) == duration
    assert str(duration) == spelled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("3x", "unknown unit 'x' after 3"),
        ("2w", "for weeks write 14d"),
        ("5", "5 has no unit"),
        ("d", "expected a number at 'd'"),
        ("1y4m-5d", "durations cannot be negative"),
        ("1d2d", "unit 'd' given twice"),
        ("5d 3h", "expected a number at ' 3h'"),
        ("\u0660d", "expected a number"),  # an Arabic-Indic zero: ASCII digits only, as restic
    ],
)
def test_parse_duration_rejects_bad_input_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.parse_duration(text)


@pytest.mark.parametrize("field", ["last", "hourly", "daily", "weekly", "monthly", "yearly"])
def test_negative_counts_other_than_unlimited_are_refused_naming_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=rf"Policy\.{field} must be 0 or more, or -1"):
        Policy(**{field: -2})
    assert getattr(Policy(**{field: -1}), field) == -1


@pytest.mark.parametrize(
    "field",
    ["within", "within_hourly", "within_daily", "within_weekly", "within_monthly", "within_yearly"],
)
def test_bad_durations_are_refused_naming_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=rf"Policy\.{field}: invalid duration '3x'"):
        Policy(**{field: "3x"})


def test_wrong_types_and_naive_datetimes_are_refused() -> None:
    with pytest.raises(TypeError, match=r"Policy\.daily"):
        Policy(daily=True)
    with pytest.raises(TypeError, match=r"Policy\.within"):
        Policy(within=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive datetime"):
        apply(Policy(daily=1), [datetime(2024, 1, 1)], time_of=lambda t: t)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        apply(
            Policy(within="1d"),
            [datetime(2024, 1, 1, tzinfo=UTC)],
            time_of=lambda t: t,
            now=datetime(2024, 1, 2),
        )
