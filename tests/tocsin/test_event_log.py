"""The event log is append-only and written in the transaction of the change it describes."""

import pytest
from django.db import transaction

from tests.conftest import declared_payload, make_user, team_test_event
from tocsin.events import EventOutsideTransaction, record
from tocsin.models import Event, EventLogIsAppendOnly, Membership, Role
from tocsin.services import ServiceError, add_member, change_role, remove_member


@pytest.mark.django_db(transaction=True)
def test_record_refuses_to_run_outside_a_transaction(crew):
    with pytest.raises(EventOutsideTransaction):
        record("team.test", team=crew.team, payload=declared_payload("team.test"))
    assert not Event.objects.filter(kind="team.test").exists()


def test_record_takes_subject_and_actor_from_objects(crew):
    with transaction.atomic():
        event = team_test_event(crew.team, actor=crew.manager)
    assert (event.subject_type, event.subject_id, event.subject_label) == (
        "team",
        str(crew.team.pk),
        "Payments",
    )
    assert event.actor == crew.manager
    assert event.actor_label == "manager"


def test_an_event_cannot_be_changed_or_deleted(crew):
    with transaction.atomic():
        event = record("team.test", team=crew.team, payload=declared_payload("team.test"))
    event.kind = "tampered"
    with pytest.raises(EventLogIsAppendOnly):
        event.save()
    with pytest.raises(EventLogIsAppendOnly):
        event.delete()
    with pytest.raises(EventLogIsAppendOnly):
        Event.objects.filter(pk=event.pk).update(kind="tampered")
    with pytest.raises(EventLogIsAppendOnly):
        Event.objects.filter(pk=event.pk).delete()
    assert Event.objects.get(pk=event.pk).kind == "team.test"


def test_a_rolled_back_change_leaves_no_event(crew):
    newcomer = make_user("newcomer")
    with pytest.raises(RuntimeError), transaction.atomic():
        add_member(crew.team, newcomer, Role.VIEWER, actor=crew.manager)
        raise RuntimeError("the surrounding operation failed")
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not Event.objects.filter(kind="team.member_added").exists()


def test_membership_changes_are_recorded_in_order(crew):
    newcomer = make_user("newcomer")
    membership = add_member(crew.team, newcomer, Role.VIEWER, actor=crew.manager)
    change_role(membership, Role.RESPONDER, actor=crew.manager)
    remove_member(membership, actor=crew.manager)
    kinds = list(Event.objects.filter(team=crew.team).order_by("id").values_list("kind", flat=True))
    assert kinds == ["team.member_added", "team.member_role_changed", "team.member_removed"]
    changed = Event.objects.get(kind="team.member_role_changed")
    assert changed.payload["role"] == ["viewer", "responder"]
    assert changed.actor == crew.manager


def test_the_last_manager_cannot_leave_or_be_demoted(crew):
    membership = Membership.objects.get(team=crew.team, user=crew.manager)
    with pytest.raises(ServiceError) as refused:
        remove_member(membership, actor=crew.admin)
    assert refused.value.code == "last_manager"
    with pytest.raises(ServiceError):
        change_role(membership, Role.VIEWER, actor=crew.admin)
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER
    assert not Event.objects.filter(team=crew.team).exists()


def test_adding_someone_twice_is_refused_without_a_second_event(crew):
    with pytest.raises(ServiceError) as refused:
        add_member(crew.team, crew.viewer, Role.MANAGER, actor=crew.manager)
    assert refused.value.code == "duplicate"
    assert not Event.objects.filter(kind="team.member_added").exists()


def test_sign_ins_are_audited(client, crew):
    from tests.conftest import PASSWORD

    assert client.login(username="viewer", password=PASSWORD)
    assert not client.login(username="viewer", password="wrong")
    kinds = list(Event.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["user.logged_in", "user.login_failed"]
    assert Event.objects.get(kind="user.login_failed").team is None
