"""Final schedules: rotations, layers, overrides, merging, DST handoffs."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from incidents.models import Rotation, ScheduleOverride
from incidents.oncall import rotations
from incidents.oncall import services as oncall
from tests.conftest import make_user
from tocsin.models import Event, Membership, Role
from tocsin.services import ServiceError

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def people(crew):
    """Three responders in the crew's team: alice, bob, carol."""
    users = []
    for name in ("alice", "bob", "carol"):
        user = make_user(name)
        Membership.objects.create(team=crew.team, user=user, role=Role.RESPONDER)
        users.append(user)
    return users


def make_schedule(crew, tz="UTC", name="Primary"):
    return oncall.create_schedule(crew.team, name, time_zone=tz, actor=crew.manager)


def names(shifts):
    return [(s.user.username, s.start, s.end, s.source) for s in shifts]


def test_daily_rotation_hands_off_at_the_handoff_time(crew, people):
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Days",
        participants=people,
        rotation=Rotation.DAILY,
        handoff_time=time(9),
        starts_at=utc(2026, 1, 5, 9),
    )
    got = rotations.shifts(schedule, utc(2026, 1, 5, 0), utc(2026, 1, 8, 12))
    assert names(got) == [
        ("alice", utc(2026, 1, 5, 9), utc(2026, 1, 6, 9), "Days"),
        ("bob", utc(2026, 1, 6, 9), utc(2026, 1, 7, 9), "Days"),
        ("carol", utc(2026, 1, 7, 9), utc(2026, 1, 8, 9), "Days"),
        ("alice", utc(2026, 1, 8, 9), utc(2026, 1, 8, 12), "Days"),
    ]


def test_rotation_far_from_its_start_keeps_the_order(crew, people):
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Days",
        participants=people,
        rotation=Rotation.DAILY,
        handoff_time=time(9),
        starts_at=utc(2026, 1, 1, 9),
    )
    # 100 days later: 100 % 3 == 1 → bob.
    got = rotations.shifts(schedule, utc(2026, 4, 11, 10), utc(2026, 4, 11, 11))
    assert [s.user.username for s in got] == ["bob"]


def test_rotation_start_between_handoffs_gives_first_person_a_partial_shift(crew, people):
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Days",
        participants=people[:2],
        rotation=Rotation.DAILY,
        handoff_time=time(9),
        starts_at=utc(2026, 1, 5, 15),
    )
    got = rotations.shifts(schedule, utc(2026, 1, 5), utc(2026, 1, 7))
    assert names(got) == [
        ("alice", utc(2026, 1, 5, 15), utc(2026, 1, 6, 9), "Days"),
        ("bob", utc(2026, 1, 6, 9), utc(2026, 1, 7), "Days"),
    ]


def test_weekly_rotation_hands_off_on_the_weekday(crew, people):
    schedule = make_schedule(crew)
    # 2026-01-07 is a Wednesday; handoff Mondays 10:00.
    oncall.add_layer(
        schedule,
        name="Weeks",
        participants=people[:2],
        rotation=Rotation.WEEKLY,
        handoff_weekday=0,
        handoff_time=time(10),
        starts_at=utc(2026, 1, 7),
    )
    got = rotations.shifts(schedule, utc(2026, 1, 7), utc(2026, 1, 27))
    assert names(got) == [
        ("alice", utc(2026, 1, 7), utc(2026, 1, 12, 10), "Weeks"),
        ("bob", utc(2026, 1, 12, 10), utc(2026, 1, 19, 10), "Weeks"),
        ("alice", utc(2026, 1, 19, 10), utc(2026, 1, 26, 10), "Weeks"),
        ("bob", utc(2026, 1, 26, 10), utc(2026, 1, 27), "Weeks"),
    ]


def test_custom_rotation_counts_real_hours(crew, people):
    schedule = make_schedule(crew, tz="Europe/Berlin")
    oncall.add_layer(
        schedule,
        name="Twelves",
        participants=people[:2],
        rotation=Rotation.CUSTOM,
        shift_length_hours=12,
        starts_at=utc(2026, 3, 28, 20),
    )
    got = rotations.shifts(schedule, utc(2026, 3, 28, 20), utc(2026, 3, 30, 8))
    assert [(s.user.username, s.duration) for s in got] == [
        ("alice", timedelta(hours=12)),
        ("bob", timedelta(hours=12)),
        ("alice", timedelta(hours=12)),
    ]


@pytest.mark.parametrize(
    ("tz", "day", "expected_hours"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29), 23),  # spring forward
        ("Europe/Berlin", datetime(2026, 10, 25), 25),  # fall back
        ("America/New_York", datetime(2026, 3, 8), 23),
        ("America/New_York", datetime(2026, 11, 1), 25),
    ],
)
def test_daily_handoff_stays_at_local_time_across_dst(crew, people, tz, day, expected_hours):
    zone = ZoneInfo(tz)
    schedule = make_schedule(crew, tz=tz)
    start = datetime(2026, 1, 1, 9, tzinfo=zone)
    oncall.add_layer(
        schedule,
        name="Days",
        participants=people[:2],
        rotation=Rotation.DAILY,
        handoff_time=time(9),
        starts_at=start,
    )
    window_start = (day - timedelta(days=2)).replace(tzinfo=zone)
    got = rotations.shifts(schedule, window_start, window_start + timedelta(days=4))
    # Every handoff is at 09:00 local time.
    for shift in got[1:]:
        assert shift.start.astimezone(zone).time() == time(9)
    across = [s for s in got if s.start.astimezone(zone).date() == (day - timedelta(days=1)).date()]
    assert len(across) == 1
    assert across[0].duration == timedelta(hours=expected_hours)


def test_weekly_handoff_across_dst_stays_at_local_time(crew, people):
    schedule = make_schedule(crew, tz="America/New_York")
    oncall.add_layer(
        schedule,
        name="Weeks",
        participants=people[:2],
        rotation=Rotation.WEEKLY,
        handoff_weekday=0,
        handoff_time=time(9),
        starts_at=datetime(2026, 2, 23, 9, tzinfo=NY),
    )
    got = rotations.shifts(
        schedule, datetime(2026, 3, 2, 9, tzinfo=NY), datetime(2026, 3, 16, 9, tzinfo=NY)
    )
    assert [s.duration for s in got] == [timedelta(hours=167), timedelta(hours=168)]
    assert all(s.start.astimezone(NY).time() == time(9) for s in got)


def test_handoff_in_the_skipped_hour_happens_just_after_the_gap(crew, people):
    schedule = make_schedule(crew, tz="Europe/Berlin")
    oncall.add_layer(
        schedule,
        name="Nights",
        participants=people[:2],
        rotation=Rotation.DAILY,
        handoff_time=time(2, 30),
        starts_at=datetime(2026, 3, 27, 2, 30, tzinfo=BERLIN),
    )
    got = rotations.shifts(schedule, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    starts = [s.start for s in got[1:]]
    assert utc(2026, 3, 29, 1, 30) in starts  # 03:30 CEST, the first moment after 02:00
    assert all(a < b for a, b in pairwise(starts))


def test_higher_layer_wins_and_lower_layer_fills_the_gaps(crew, people):
    alice, bob, _ = people
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Base",
        participants=[alice],
        rotation=Rotation.DAILY,
        starts_at=utc(2026, 1, 1),
        handoff_time=time(0),
        priority=0,
    )
    oncall.add_layer(
        schedule,
        name="Office",
        participants=[bob],
        rotation=Rotation.DAILY,
        starts_at=utc(2026, 1, 1),
        handoff_time=time(0),
        priority=1,
        restrict_start=time(9),
        restrict_end=time(17),
    )
    got = rotations.shifts(schedule, utc(2026, 1, 5), utc(2026, 1, 6))
    assert names(got) == [
        ("alice", utc(2026, 1, 5), utc(2026, 1, 5, 9), "Base"),
        ("bob", utc(2026, 1, 5, 9), utc(2026, 1, 5, 17), "Office"),
        ("alice", utc(2026, 1, 5, 17), utc(2026, 1, 6), "Base"),
    ]


def test_restriction_wrapping_midnight(crew, people):
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Nights",
        participants=[people[2]],
        rotation=Rotation.WEEKLY,
        starts_at=utc(2026, 1, 1),
        restrict_start=time(22),
        restrict_end=time(6),
    )
    got = rotations.shifts(schedule, utc(2026, 1, 5, 12), utc(2026, 1, 6, 12))
    assert names(got) == [("carol", utc(2026, 1, 5, 22), utc(2026, 1, 6, 6), "Nights")]


def test_overrides_win_over_every_layer_and_latest_override_wins(crew, people):
    alice, bob, carol = people
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Base",
        participants=[alice],
        rotation=Rotation.WEEKLY,
        starts_at=utc(2026, 1, 1),
    )
    oncall.create_override(
        schedule, bob, utc(2026, 1, 5, 10), utc(2026, 1, 5, 14), actor=crew.manager
    )
    oncall.create_override(
        schedule, carol, utc(2026, 1, 5, 12), utc(2026, 1, 5, 13), actor=crew.manager
    )
    got = rotations.shifts(schedule, utc(2026, 1, 5, 8), utc(2026, 1, 5, 16))
    assert names(got) == [
        ("alice", utc(2026, 1, 5, 8), utc(2026, 1, 5, 10), "Base"),
        ("bob", utc(2026, 1, 5, 10), utc(2026, 1, 5, 12), "override"),
        ("carol", utc(2026, 1, 5, 12), utc(2026, 1, 5, 13), "override"),
        ("bob", utc(2026, 1, 5, 13), utc(2026, 1, 5, 14), "override"),
        ("alice", utc(2026, 1, 5, 14), utc(2026, 1, 5, 16), "Base"),
    ]
    assert rotations.on_call_users(schedule, utc(2026, 1, 5, 12, 30)) == [carol]
    assert rotations.on_call_users(schedule, utc(2026, 1, 5, 14)) == [alice]


def test_adjacent_shifts_of_the_same_user_merge(crew, people):
    alice, bob, _ = people
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Solo",
        participants=[alice],
        rotation=Rotation.DAILY,
        starts_at=utc(2026, 1, 1),
        handoff_time=time(9),
    )
    got = rotations.shifts(schedule, utc(2026, 1, 5), utc(2026, 1, 9))
    assert names(got) == [("alice", utc(2026, 1, 5), utc(2026, 1, 9), "Solo")]
    # Two overrides of bob back to back read as one.
    oncall.create_override(schedule, bob, utc(2026, 1, 6), utc(2026, 1, 6, 12), actor=crew.manager)
    oncall.create_override(schedule, bob, utc(2026, 1, 6, 12), utc(2026, 1, 7), actor=crew.manager)
    got = rotations.shifts(schedule, utc(2026, 1, 5), utc(2026, 1, 9))
    assert [(s.user.username, s.start, s.end) for s in got] == [
        ("alice", utc(2026, 1, 5), utc(2026, 1, 6)),
        ("bob", utc(2026, 1, 6), utc(2026, 1, 7)),
        ("alice", utc(2026, 1, 7), utc(2026, 1, 9)),
    ]


def test_nobody_on_call_before_the_rotation_starts_or_without_layers(crew, people):
    schedule = make_schedule(crew)
    assert rotations.on_call_users(schedule, utc(2026, 1, 1)) == []
    oncall.add_layer(schedule, name="L", participants=people, starts_at=utc(2026, 2, 1))
    assert rotations.shifts(schedule, utc(2026, 1, 1), utc(2026, 1, 31)) == []


def test_on_call_now_lists_each_schedule_of_the_team(crew, people, django_assert_max_num_queries):
    first = make_schedule(crew, name="A")
    second = make_schedule(crew, name="B")
    oncall.add_layer(first, name="L", participants=[people[0]], starts_at=utc(2026, 1, 1))
    oncall.add_layer(second, name="L", participants=[people[1]], starts_at=utc(2026, 1, 1))
    with django_assert_max_num_queries(5):
        now = rotations.on_call_now(crew.team)
    assert [(s.name, [u.username for u in users]) for s, users in now.items()] == [
        ("A", ["alice"]),
        ("B", ["bob"]),
    ]


def test_schedule_services_record_events(crew, people):
    schedule = make_schedule(crew, tz="Europe/Berlin")
    layer = oncall.add_layer(schedule, name="L", participants=people, actor=crew.manager)
    oncall.update_layer(layer, participants=people[:1], actor=crew.manager)
    oncall.update_schedule(schedule, name="Renamed", actor=crew.manager)
    oncall.delete_layer(layer, actor=crew.manager)
    kinds = list(Event.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [
        "schedule.created",
        "schedule.layer_added",
        "schedule.layer_updated",
        "schedule.updated",
        "schedule.layer_removed",
    ]


def test_bad_input_is_refused(crew, people):
    with pytest.raises(ServiceError) as exc:
        oncall.create_schedule(crew.team, "X", time_zone="Mars/Olympus")
    assert exc.value.field == "time_zone"
    schedule = make_schedule(crew)
    with pytest.raises(ServiceError) as exc:
        oncall.create_schedule(crew.team, "Primary")
    assert exc.value.code == "duplicate"
    with pytest.raises(ServiceError) as exc:
        oncall.add_layer(schedule, name="C", participants=people, rotation=Rotation.CUSTOM)
    assert exc.value.field == "shift_length_hours"
    with pytest.raises(ServiceError) as exc:
        oncall.add_layer(schedule, name="V", participants=[crew.viewer])
    assert exc.value.field == "participants"
    with pytest.raises(ServiceError) as exc:
        oncall.create_override(
            schedule, people[0], utc(2026, 1, 2), utc(2026, 1, 1), actor=crew.manager
        )
    assert exc.value.field == "end"
    assert ScheduleOverride.objects.count() == 0
    assert Event.objects.filter(kind__startswith="schedule.layer").count() == 0


def test_responder_overrides_only_for_themselves(crew, people):
    from django.core.exceptions import PermissionDenied

    schedule = make_schedule(crew)
    oncall.create_override(
        schedule, crew.responder, utc(2026, 1, 1), utc(2026, 1, 2), actor=crew.responder
    )
    with pytest.raises(PermissionDenied):
        oncall.create_override(
            schedule, people[0], utc(2026, 1, 1), utc(2026, 1, 2), actor=crew.responder
        )
    with pytest.raises(PermissionDenied):
        oncall.create_override(
            schedule, crew.viewer, utc(2026, 1, 1), utc(2026, 1, 2), actor=crew.viewer
        )
    assert Event.objects.filter(kind="override.created").count() == 1


def test_merge_sources_joins_a_users_stretch_across_layers_and_overrides(crew, people):
    alice, bob, _ = people
    schedule = make_schedule(crew)
    oncall.add_layer(
        schedule,
        name="Base",
        participants=[alice],
        rotation=Rotation.DAILY,
        starts_at=utc(2026, 1, 1),
        handoff_time=time(0),
        priority=0,
    )
    oncall.add_layer(
        schedule,
        name="Office",
        participants=[bob],
        rotation=Rotation.DAILY,
        starts_at=utc(2026, 1, 1),
        handoff_time=time(0),
        priority=1,
        restrict_start=time(9),
        restrict_end=time(17),
    )
    oncall.create_override(
        schedule, bob, utc(2026, 1, 5, 17), utc(2026, 1, 5, 19), actor=crew.manager
    )
    window = (utc(2026, 1, 5, 8), utc(2026, 1, 5, 20))
    assert len(rotations.shifts(schedule, *window)) == 4
    assert names(rotations.shifts(schedule, *window, merge_sources=True)) == [
        ("alice", utc(2026, 1, 5, 8), utc(2026, 1, 5, 9), "Base"),
        ("bob", utc(2026, 1, 5, 9), utc(2026, 1, 5, 19), "Office + override"),
        ("alice", utc(2026, 1, 5, 19), utc(2026, 1, 5, 20), "Base"),
    ]


def test_times_given_in_the_schedule_zone_are_handled_as_instants(crew, people):
    """Python subtracts datetimes of one zone on wall-clock time; shifts() must not."""
    schedule = make_schedule(crew, tz="Europe/Berlin")
    layer = oncall.add_layer(
        schedule,
        name="Custom",
        participants=people[:2],
        rotation=Rotation.CUSTOM,
        shift_length_hours=24,
        starts_at=datetime(2026, 3, 27, 12, tzinfo=BERLIN),
    )
    window = (datetime(2026, 3, 30, 12, tzinfo=BERLIN), datetime(2026, 4, 1, 12, tzinfo=BERLIN))
    fresh = rotations.shifts(schedule, *window)
    layer.refresh_from_db()
    schedule.refresh_from_db()
    reloaded = rotations.shifts(schedule, *window)
    assert names(fresh) == names(reloaded)
    assert all(s.start.utcoffset() == timedelta(0) for s in fresh)
    # 24 real hours from 12:00 CET: after the change the handoffs are at 13:00 CEST.
    assert [s.start.astimezone(BERLIN).hour for s in fresh[1:]] == [13, 13]
