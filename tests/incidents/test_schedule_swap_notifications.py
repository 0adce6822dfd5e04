"""Shift swaps tell the people they concern: who is asked, and the requester of the answer.

Messages go through the outbox like pages do (retries, log, breaker), to the person's immediate
contact methods or their account address; an email one is sent here through a real SMTP server.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.utils import timezone

from incidents.models import (
    ContactMethod,
    Delivery,
    DeliveryStatus,
    NotificationRule,
    Rotation,
)
from incidents.notifications import outbox as notify
from incidents.oncall import rotations, swaps
from incidents.oncall import services as oncall
from tests.conftest import make_user
from tests.incidents.test_notify_email import body_of
from tocsin.models import Membership, Role
from tocsin.services import ServiceError


@pytest.fixture
def setup(crew):
    """A daily rotation responder → manager → other; the responder's next full day."""
    other = make_user("other")
    Membership.objects.create(team=crew.team, user=other, role=Role.RESPONDER)
    schedule = oncall.create_schedule(crew.team, "Primary", time_zone="Europe/Berlin")
    # Local midnights: the rotation hands off at 00:00 Berlin time.
    midnight = timezone.now().astimezone(schedule.zone)
    midnight = midnight.replace(hour=0, minute=0, second=0, microsecond=0)
    oncall.add_layer(
        schedule,
        name="Days",
        participants=[crew.responder, crew.manager, other],
        rotation=Rotation.DAILY,
        handoff_time=time(0),
        starts_at=midnight - timedelta(days=3),
    )
    day = midnight + timedelta(days=1)
    while rotations.on_call_users(schedule, day + timedelta(hours=1)) != [crew.responder]:
        day += timedelta(days=1)
    crew.other = other
    end = (day + timedelta(days=1, hours=2)).replace(hour=0)  # the next local midnight
    return schedule, day, end


def recipients(event_kind: str) -> set[str]:
    return {
        d.recipient.username for d in Delivery.objects.filter(event_kind=event_kind, incident=None)
    }


def test_the_person_asked_gets_an_email_with_a_link_to_the_schedule(crew, setup, smtp):
    schedule, start, end = setup
    swap = swaps.request_swap(
        schedule, crew.responder, start, end, proposed_taker=crew.other, note="dentist"
    )
    assert notify.send_due_deliveries() == 1
    ((to, message),) = smtp.messages
    assert to == [crew.other.email]
    assert message["Subject"] == "[Tocsin] responder asks you to take a shift"
    text = body_of(message)
    local_start = start.astimezone(schedule.zone)
    assert f"Primary: {local_start:%a %d %b} 00:00 to " in text
    assert "(Europe/Berlin)" in text
    assert "Note: dentist" in text
    assert f"Schedule: https://tocsin.example.org/schedules/{schedule.pk}/" in text
    delivery = Delivery.objects.get()
    assert (delivery.event_kind, delivery.status) == ("swap.requested", DeliveryStatus.SENT)
    assert delivery.dedup_key == f"swap-{swap.pk}:swap.requested:user-{crew.other.pk}:account-email"


def test_an_open_request_asks_everyone_else_in_the_rotation_who_can_respond(crew, setup):
    schedule, start, end = setup
    former = make_user("former")
    membership = Membership.objects.create(team=crew.team, user=former, role=Role.RESPONDER)
    oncall.add_layer(
        schedule,
        name="Shadow",
        participants=[former],
        rotation=Rotation.WEEKLY,
        handoff_time=time(9),
        starts_at=timezone.now() + timedelta(days=60),
    )
    membership.role = Role.VIEWER  # since demoted: a viewer cannot take shifts, so is not asked
    membership.save()
    swaps.request_swap(schedule, crew.responder, start, end)
    assert recipients("swap.requested") == {"manager", "other"}


def test_the_requester_hears_when_the_shift_is_taken(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.other)
    swaps.accept_swap(swap, crew.other)
    assert recipients("swap.accepted") == {"responder"}
    (accepted,) = Delivery.objects.filter(event_kind="swap.accepted")
    assert accepted.subject == "[Tocsin] other took your shift"


def test_the_requester_hears_a_decline_and_the_person_asked_hears_a_cancel(crew, setup):
    schedule, start, end = setup
    declined = swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.other)
    swaps.decline_swap(declined, crew.other)
    assert recipients("swap.declined") == {"responder"}

    cancelled = swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.other)
    swaps.cancel_swap(cancelled, crew.responder)
    assert recipients("swap.cancelled") == {"other"}


def test_nobody_is_told_about_their_own_action(crew, setup):
    schedule, start, end = setup
    swap = swaps.request_swap(schedule, crew.responder, start, end)
    swaps.cancel_swap(swap, crew.responder)  # an open request: nobody was asked by name
    assert recipients("swap.cancelled") == set()
    assert crew.responder.username not in recipients("swap.requested")


def test_it_goes_to_immediate_contact_methods_never_to_pagerduty(crew, setup, receiver):
    schedule, start, end = setup
    hook = ContactMethod.objects.create(
        user=crew.other, kind="webhook", config={"url": receiver.url, "secret": "s" * 32}
    )
    later = ContactMethod.objects.create(
        user=crew.other, kind="webhook", config={"url": receiver.url, "secret": "t" * 32}
    )
    pager = ContactMethod.objects.create(
        user=crew.other, kind="pagerduty", config={"routing_key": "r" * 32}
    )
    NotificationRule.objects.create(user=crew.other, contact_method=hook)
    NotificationRule.objects.create(user=crew.other, contact_method=later, delay_minutes=5)
    NotificationRule.objects.create(user=crew.other, contact_method=pager)

    swaps.request_swap(schedule, crew.responder, start, end, proposed_taker=crew.other)
    (delivery,) = Delivery.objects.all()
    assert delivery.contact_method == hook
    assert notify.send_due_deliveries() == 1
    (hit,) = receiver.requests
    body = hit.json()
    assert body["event"] == "swap.requested"
    assert body["incident"] is None
    assert set(body["links"]) == {"schedule"}


def test_a_failed_request_tells_nobody(crew, setup):
    schedule, start, end = setup
    with pytest.raises(ServiceError):
        swaps.request_swap(schedule, crew.manager, start, end, proposed_taker=crew.other)
    assert not Delivery.objects.exists()
