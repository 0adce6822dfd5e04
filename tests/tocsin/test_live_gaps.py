"""The relay must not skip an event that commits after a higher id was already seen."""

from tocsin.live.gaps import GapTracker


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_it_delivers_new_ids_once():
    tracker = GapTracker(start_after=10)
    assert tracker.accept([11, 12]) == [11, 12]
    assert (tracker.cursor, tracker.missing()) == (12, [])
    assert tracker.accept([11, 12]) == []


def test_it_keeps_asking_for_a_hole_and_delivers_the_late_row():
    tracker = GapTracker(start_after=10)
    assert tracker.accept([11, 13]) == [11, 13]
    # 12 was inserted before 13 but has not committed yet: keep asking for it by id.
    assert (tracker.cursor, tracker.missing()) == (13, [12])
    assert tracker.accept([]) == []
    assert tracker.accept([12, 14]) == [12, 14]
    assert (tracker.cursor, tracker.missing()) == (14, [])


def test_a_hole_that_never_fills_is_forgotten():
    clock = FakeClock()
    tracker = GapTracker(start_after=0, gap_timeout=15, clock=clock)
    tracker.accept([1, 5])
    assert tracker.missing() == [2, 3, 4]
    clock.now = 16
    assert tracker.missing() == []


def test_a_huge_jump_tracks_a_bounded_number_of_holes():
    tracker = GapTracker(start_after=0)
    tracker.accept([10_000_000])
    assert len(tracker.missing()) <= 2000
    assert min(tracker.missing()) >= 10_000_000 - 2001


def test_a_removed_member_gets_nothing_more_of_that_read():
    """The hub re-reads a person's teams after a membership event (a database round trip);
    the events that follow the removal in the same read must not reach them meanwhile."""
    import asyncio

    from django.utils import timezone

    from tocsin.live.hub import Hub
    from tocsin.models import Event

    class Sub:
        user_id, fmt, all_teams, team_ids = 7, "json", False, frozenset({3})

        def __init__(self):
            self.got, self.revalidated = [], 0

        async def deliver(self, event, text):
            self.got.append(event.pk)

        def revalidate(self):
            self.revalidated += 1  # the database re-read, which has not happened yet

    def event(pk, kind, **payload):
        made = Event(
            pk=pk, kind=kind, team_id=3, payload=payload, created_at=timezone.now(), subject_id=""
        )
        made.__dict__["_rendered"] = {"json": "{}"}  # as the relay renders before dispatching
        return made

    hub, sub = Hub(), Sub()
    hub._index(sub)
    hub._subscribers.add(sub)

    async def read():
        await hub._dispatch(event(1, "team.test", requested_at="now"))
        await hub._dispatch(event(2, "team.member_removed", user_id=7))
        await hub._dispatch(event(3, "team.test", requested_at="now"))

    asyncio.run(read())
    assert sub.got == [1, 2] and sub.revalidated == 1
