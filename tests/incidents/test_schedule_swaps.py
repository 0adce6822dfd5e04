"""Shift swaps: request, accept (writes an override atomically), decline, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from incidents.models import Rotation, ScheduleOverride, ShiftSwapRequest, SwapStatus
from incidents.oncall import rotations, swaps
from incidents.oncall import services as oncall
from tests.conftest import make_user
from tocsin.models import Event, Membership, Role
from tocsin.services import ServiceError


@pytest.fixture
def setup(crew):
    """A daily rotation responder → manager, started yesterday at 00:00 UTC."""
    other = make_user("other")
    Membership.objects.create(team=crew.team, user=other, role=Role.RESPONDER)
    schedule = oncall.create_schedule(crew.team, "Primary")
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    oncall.add_layer(
        schedule,
        name="Days",
        participants=[crew.responder, crew.manager],
        rotation=Rotation.DAILY,
        handoff_time=time(0),
        starts_at=midnight - timedelta(days=2),
    )
    # Find the responder's next full day.
    day = midnight + timedelta(days=1)
    if rotations.on_call_users(schedule, day + timedelta(hours=1)) != [crew.responder]:
        day += timedelta(days=1)
    crew.other = other
    return schedule, day, day + timedelta(days=1)


def test_accepting_writes_an_override_for_the_taker(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end, note="dentist")
    assert swap.status == SwapStatus.OPEN
    swap = swaps.accept_swap(swap, crew.other)
    assert swap.status == SwapStatus.ACCEPTED
    assert swap.taker == crew.other
    override = ScheduleOverride.objects.get()
    assert (override.user, override.start, override.end) == (crew.other, start, end)
    assert swap.override == override
    assert rotations.on_call_users(schedule, start + timedelta(hours=3)) == [crew.other]
    kinds = list(
        Event.objects.filter(kind__in=["swap.requested", "swap.accepted", "override.created"])
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == ["swap.requested", "override.created", "swap.accepted"]


def test_only_the_proposed_taker_may_accept(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.other)
    with pytest.raises(PermissionDenied):
        swaps.accept_swap(swap, crew.manager)
    swaps.accept_swap(swap, crew.other)
    assert ShiftSwapRequest.objects.get().status == SwapStatus.ACCEPTED


def test_an_accepted_swap_cannot_be_accepted_again(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end)
    stale = ShiftSwapRequest.objects.get(pk=swap.pk)
    swaps.accept_swap(swap, crew.other)
    with pytest.raises(ServiceError) as exc:
        swaps.accept_swap(stale, crew.manager)
    assert exc.value.code == "conflict"
    assert ScheduleOverride.objects.count() == 1


def test_a_failed_accept_leaves_nothing_behind(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end)
    with pytest.raises(ServiceError):
        swaps.accept_swap(swap, crew.responder)  # one's own shift
    with pytest.raises(PermissionDenied):
        swaps.accept_swap(swap, crew.viewer)
    swap.refresh_from_db()
    assert swap.status == SwapStatus.OPEN
    assert not ScheduleOverride.objects.exists()
    assert not Event.objects.filter(kind="override.created").exists()


def test_decline_by_the_person_asked(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.other)
    with pytest.raises(PermissionDenied):
        swaps.decline_swap(swap, crew.responder)
    swap = swaps.decline_swap(swap, crew.other)
    assert swap.status == SwapStatus.DECLINED
    assert Event.objects.filter(kind="swap.declined").count() == 1
    with pytest.raises(ServiceError):
        swaps.accept_swap(swap, crew.other)


def test_requester_cancels(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end)
    with pytest.raises(PermissionDenied):
        swaps.cancel_swap(swap, crew.other)
    assert swaps.cancel_swap(swap, crew.responder).status == SwapStatus.CANCELLED


def test_you_can_only_give_away_your_own_shift(crew, setup):
    schedule, start, end = setup
    with pytest.raises(ServiceError) as exc:
        swaps.request_swap(schedule, crew.manager, start, end)
    assert exc.value.field == "start"
    with pytest.raises(ServiceError):
        swaps.request_swap(schedule, crew.responder, start, end + timedelta(hours=1))
    with pytest.raises(PermissionDenied):
        swaps.request_swap(schedule, crew.viewer, start, end)
    with pytest.raises(ServiceError) as exc:
        swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.viewer)
    assert exc.value.field == "proposed_taker"
    past = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(ServiceError):
        swaps.request_swap(schedule, crew.responder, past, past + timedelta(hours=1))
    assert not ShiftSwapRequest.objects.exists()
    assert not Event.objects.filter(kind__startswith="swap.").exists()
