"""The one place that decides "may this user do X to object Y".

Every surface asks here: UI views, DRF permission classes, ModelAdmin querysets and the WebSocket
consumer. Roles are per team and cumulative: a responder can do what a viewer can, a manager what
a responder can. Active superusers may do everything.

Objects are team-scoped through a ``team`` attribute (a Team is its own team).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from tocsin.models import Membership, Role, Team


class Action(StrEnum):
    VIEW = "view"  # read the team's alerts, incidents, events, configuration
    RESPOND = "respond"  # acknowledge, resolve, silence, annotate, test paging
    MANAGE = "manage"  # configure the team: members, rules, policies, probes, backups


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.VIEW}),
    Role.RESPONDER: frozenset({Action.VIEW, Action.RESPOND}),
    Role.MANAGER: frozenset({Action.VIEW, Action.RESPOND, Action.MANAGE}),
}

ROLES_ALLOWED: dict[Action, frozenset[str]] = {
    action: frozenset(role for role, actions in ROLE_ACTIONS.items() if action in actions)
    for action in Action
}

_CACHE_ATTR = "_tocsin_roles"


def is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


def roles_of(user: Any) -> dict[int, str]:
    """team id → role for the user, memoised on the user object for the request."""
    if not (user and user.is_authenticated and user.is_active):
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = dict(
            Membership.objects.filter(user=user).order_by().values_list("team_id", "role")
        )
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_roles(user: Any) -> None:
    """Drop the memoised roles (after a membership change within the same request)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def team_id_of(obj: Any) -> int | None:
    if isinstance(obj, Team):
        return obj.pk
    if isinstance(obj, int):
        return obj
    team_id = getattr(obj, "team_id", None)
    if team_id is None and getattr(obj, "team", None) is not None:
        team_id = obj.team.pk
    return team_id


def can(user: Any, action: Action, obj: Any) -> bool:
    """May ``user`` do ``action`` to ``obj`` (a Team, a team id or any team-scoped object)?"""
    if is_admin(user):
        return True
    team_id = team_id_of(obj)
    if team_id is None:
        return False
    role = roles_of(user).get(team_id)
    return role is not None and action in ROLE_ACTIONS[role]


def team_ids_for(user: Any, action: Action) -> set[int] | None:
    """The ids of teams where the user may do ``action``; None means every team (superuser)."""
    if is_admin(user):
        return None
    return {tid for tid, role in roles_of(user).items() if action in ROLE_ACTIONS[role]}


def teams_for(user: Any, action: Action) -> QuerySet[Team]:
    ids = team_ids_for(user, action)
    if ids is None:
        return Team.objects.all()
    return Team.objects.filter(pk__in=ids)


def scope(queryset: QuerySet, user: Any, action: Action, team_field: str = "team") -> QuerySet:
    """Restrict a queryset of team-scoped objects to those the user may ``action``."""
    ids = team_ids_for(user, action)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{team_field}__in": ids})


def may_use_admin(user: Any) -> bool:
    """The Django admin is for configuration: superusers and team managers."""
    if is_admin(user):
        return True
    return bool(team_ids_for(user, Action.MANAGE))


def members_who_may(action: Action, team: Any) -> QuerySet:
    """The team's active users whose role allows ``action``, by username.

    The one answer to "who may respond in this team": escalation targets (a step that pages the
    whole team), reassignment and override pickers, swap partners and policy validation."""
    team_id = team if isinstance(team, int) else team_id_of(team)
    return (
        get_user_model()
        .objects.filter(
            memberships__team_id=team_id,
            memberships__role__in=ROLES_ALLOWED[action],
            is_active=True,
        )
        .order_by("username")
    )
