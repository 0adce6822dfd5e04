"""The permission layer: roles are per team and cumulative; superusers may do everything."""

import pytest

from tocsin.models import Event, Team
from tocsin.permissions import Action, can, may_use_admin, scope, team_ids_for

EXPECTED = {
    "viewer": {Action.VIEW},
    "responder": {Action.VIEW, Action.RESPOND},
    "manager": {Action.VIEW, Action.RESPOND, Action.MANAGE},
    "outsider": set(),
    "admin": {Action.VIEW, Action.RESPOND, Action.MANAGE},
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("action", list(Action))
def test_role_matrix_on_the_team(crew, role, action):
    user = crew.by_role(role)
    assert can(user, action, crew.team) is (action in EXPECTED[role])


def test_team_scoped_objects_follow_their_team(crew):
    event = Event(team=crew.team, kind="x")
    assert can(crew.viewer, Action.VIEW, event)
    assert not can(crew.outsider, Action.VIEW, event)
    assert not can(crew.viewer, Action.VIEW, Event(team=None, kind="x"))
    assert can(crew.admin, Action.VIEW, Event(team=None, kind="x"))


def test_anonymous_and_inactive_users_may_do_nothing(crew):
    from django.contrib.auth.models import AnonymousUser

    assert not can(AnonymousUser(), Action.VIEW, crew.team)
    crew.manager.is_active = False
    assert not can(crew.manager, Action.VIEW, crew.team)
    crew.admin.is_active = False
    assert not can(crew.admin, Action.VIEW, crew.team)


def test_scope_restricts_querysets(crew):
    teams = Team.objects.all()
    assert list(scope(teams, crew.viewer, Action.VIEW, team_field="pk")) == [crew.team]
    assert list(scope(teams, crew.viewer, Action.MANAGE, team_field="pk")) == []
    assert set(scope(teams, crew.admin, Action.MANAGE, team_field="pk")) == {
        crew.team,
        crew.other_team,
    }
    assert team_ids_for(crew.admin, Action.VIEW) is None


def test_admin_access_is_for_managers_and_superusers(crew):
    assert may_use_admin(crew.manager)
    assert may_use_admin(crew.outsider)  # manager of the other team
    assert may_use_admin(crew.admin)
    assert not may_use_admin(crew.viewer)
    assert not may_use_admin(crew.responder)


def test_roles_are_read_once_per_request(crew, django_assert_num_queries):
    with django_assert_num_queries(1):
        for _ in range(10):
            can(crew.responder, Action.RESPOND, crew.team)
