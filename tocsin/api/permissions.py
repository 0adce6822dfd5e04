"""DRF permission classes: thin adapters over :mod:`tocsin.permissions`, which alone decides.

The rule every team-scoped endpoint follows:

- anonymous → 401 (``IsAuthenticated`` runs first; the token authenticator's
  ``WWW-Authenticate`` header makes DRF say 401 rather than 403);
- not allowed to *view* the team → 404, exactly as if the object did not exist, because views
  look objects up in querysets already narrowed by ``tocsin.permissions`` (``teams_for``,
  ``Event.objects.visible_to``);
- a member whose role lacks the action → 403 naming the role needed.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tocsin.models import Role
from tocsin.permissions import ROLE_ACTIONS, Action, can, is_admin


def minimum_role(action: Action) -> str:
    """The least role that may do ``action``: what to tell a member who was refused."""
    for role in Role.values:  # declared from least to most powerful
        if action in ROLE_ACTIONS[role]:
            return role
    raise ValueError(f"no role may {action}")


def required_action(view: Any, request: Request) -> Action | None:
    """The Action the view's current operation needs, or None for "nobody may".

    Views declare ``required_actions`` keyed by viewset action (``list``, ``create``…) or, for
    plain APIViews, by lower-case HTTP method. Undeclared reads need VIEW; undeclared writes are
    refused, so forgetting a declaration fails closed.
    """
    method = request.method.lower()
    # By the action the method maps to (not ``view.action``): OPTIONS asks "may I POST?" with
    # a cloned POST request while ``view.action`` still says "metadata".
    key = getattr(view, "action_map", {}).get(method) or method
    action = getattr(view, "required_actions", {}).get(key)
    if action is None and request.method in SAFE_METHODS:
        return Action.VIEW
    return action


class TeamRole(BasePermission):
    """The caller's role in the object's team must allow the view's operation."""

    message = "your role in this team does not allow this"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not hasattr(view, request.method.lower()):
            return True  # no handler for this method: let the view answer 405
        # Views nested under /teams/{team_id}/ know their team before any object is loaded
        # (and have already answered 404 to people who may not view it).
        team = view.permission_team() if hasattr(view, "permission_team") else None
        if team is None:
            return True
        return self._allowed(request, view, team)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return self._allowed(request, view, obj)

    def _allowed(self, request: Request, view: Any, obj: Any) -> bool:
        action = required_action(view, request)
        if action is not None and can(request.user, action, obj):
            return True
        if action is not None:
            self.message = f"this needs the {minimum_role(action)} role in the team"
        return False


class IsAdministrator(BasePermission):
    """Active superusers only: operations above any one team, such as creating teams."""

    message = "only administrators may do this"

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin(request.user)
