"""Review fix: a team keeps a manager even when two managers demote each other at once, or a
caller passes a membership object read before the team changed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from tests.concurrency import at_once
from tocsin import services
from tocsin.models import Event, Membership, Role
from tocsin.services import ServiceError


def membership_of(crew: Any, role: str) -> Membership:
    return Membership.objects.select_related("user", "team").get(
        team=crew.team, user=crew.by_role(role)
    )


def managers(crew: Any) -> int:
    return Membership.objects.filter(team=crew.team, role=Role.MANAGER).count()


@pytest.mark.django_db
def test_a_stale_membership_cannot_demote_or_remove_the_last_manager(crew):
    stale = membership_of(crew, "responder")  # read while a responder
    services.change_role(membership_of(crew, "responder"), Role.MANAGER)
    services.change_role(membership_of(crew, "manager"), Role.VIEWER)
    assert managers(crew) == 1  # the former responder, whom ``stale`` still calls a responder

    with pytest.raises(ServiceError) as refused:
        services.change_role(stale, Role.VIEWER)
    assert refused.value.code == "last_manager"
    with pytest.raises(ServiceError) as refused:
        services.remove_member(stale)
    assert refused.value.code == "last_manager"
    assert Membership.objects.get(pk=stale.pk).role == Role.MANAGER


@pytest.mark.django_db
def test_a_change_reports_the_stored_role_as_before(crew):
    stale = membership_of(crew, "viewer")
    services.change_role(membership_of(crew, "viewer"), Role.RESPONDER)
    changed = services.change_role(stale, Role.MANAGER)
    assert changed.role == Role.MANAGER
    event = Event.objects.filter(kind="team.member_role_changed").latest("id")
    assert event.payload["role"] == [Role.RESPONDER, Role.MANAGER]


@pytest.mark.django_db
def test_a_member_removed_meanwhile_is_a_clear_refusal(crew):
    stale = membership_of(crew, "viewer")
    services.remove_member(membership_of(crew, "viewer"))
    with pytest.raises(ServiceError) as refused:
        services.change_role(stale, Role.RESPONDER)
    assert refused.value.code == "not_found"


def two_managers(crew: Any) -> tuple[Membership, Membership]:
    services.change_role(membership_of(crew, "responder"), Role.MANAGER)
    return membership_of(crew, "manager"), membership_of(crew, "responder")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_a_demotion_waits_for_one_in_flight_and_then_refuses(crew):
    # The first demotion has checked and written but not yet committed when the second comes:
    # the second must wait for it and then see that its manager is the last one. (Before the
    # fix the second checked the committed state, saw two managers, and both demotions won.)
    first, second = two_managers(crew)
    written, release = threading.Event(), threading.Event()
    outcomes: list[Any] = []

    def demote_and_hold() -> None:
        try:
            with transaction.atomic():
                services.change_role(first, Role.VIEWER)
                written.set()
                release.wait(20)
            outcomes.append("first demoted")
        except BaseException as exc:
            outcomes.append(exc)
        finally:
            written.set()
            connection.close()

    def demote_the_other() -> None:
        try:
            written.wait(20)
            services.change_role(second, Role.VIEWER)
            outcomes.append("second demoted")
        except ServiceError as exc:
            outcomes.append(exc.code)
        except BaseException as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=demote_and_hold)
    other = threading.Thread(target=demote_the_other)
    holder.start()
    other.start()
    assert written.wait(20)
    other.join(1.0)  # with the fix it waits for the lock the holder keeps
    waited = other.is_alive()
    release.set()
    holder.join(30)
    other.join(30)
    assert sorted(map(str, outcomes)) == ["first demoted", "last_manager"], outcomes
    assert waited
    assert managers(crew) == 1


def race(first: Membership, second: Membership) -> list[Any]:
    """Both demoted at once, each in its own thread and connection: what each got."""

    def demote(membership: Membership) -> str:
        services.change_role(membership, Role.VIEWER)
        return "demoted"

    return at_once(lambda: demote(first), lambda: demote(second))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_two_managers_demoting_each_other_at_once_leave_one(crew):
    for _ in range(10):
        outcomes = race(*two_managers(crew))
        assert sorted(map(str, outcomes)) == ["demoted", "last_manager"], outcomes
        assert managers(crew) == 1
        # Back to the start: the old manager manages again, the responder responds.
        services.change_role(membership_of(crew, "manager"), Role.MANAGER)
        services.change_role(membership_of(crew, "responder"), Role.RESPONDER)
