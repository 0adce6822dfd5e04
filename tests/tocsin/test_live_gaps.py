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
