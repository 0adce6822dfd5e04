"""Team and membership operations. Views, API, admin and commands all call these."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from tocsin.events import record
from tocsin.models import ApiToken, Membership, Role, Team
from tocsin.permissions import forget_roles


class ServiceError(Exception):
    """A domain rule refused the operation; ``field`` names the input at fault, if any."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


_NAME_TAKEN = "another team already has this name (or one with the same slug)"


def create_team(name: str, *, actor: Any = None, description: str = "") -> Team:
    name = (name or "").strip()
    if not slugify(name):
        raise ServiceError("the name needs at least one letter or digit", "name")
    try:
        # Unique name and slug constraints are the only race-free check for duplicates.
        with transaction.atomic():
            team = Team.objects.create(name=name, description=description)
            record("team.created", team=team, subject=team, actor=actor)
    except IntegrityError:
        raise ServiceError(_NAME_TAKEN, "name", "duplicate") from None
    return team


def update_team(team: Team, *, actor: Any = None, **changes: Any) -> Team:
    """Rename or re-describe a team. The slug stays, so links to the team keep working."""
    changed = {k: v for k, v in changes.items() if getattr(team, k) != v}
    if not changed:
        return team
    before = {k: getattr(team, k) for k in changed}
    try:
        with transaction.atomic():
            for key, value in changed.items():
                setattr(team, key, value)
            team.save(update_fields=list(changed))
            record(
                "team.updated",
                team=team,
                subject=team,
                actor=actor,
                payload={"changes": {k: [before[k], changed[k]] for k in changed}},
            )
    except IntegrityError:
        for key, value in before.items():
            setattr(team, key, value)
        raise ServiceError(_NAME_TAKEN, "name", "duplicate") from None
    return team


def delete_team(team: Team, *, actor: Any = None) -> None:
    """Only a team without history can go: its events must outlive nothing they describe."""
    if team.events.exists():
        raise ServiceError(
            "a team with recorded history cannot be deleted; rename it instead", None, "protected"
        )
    with transaction.atomic():
        record(
            "team.deleted",
            team=None,
            subject=team,
            actor=actor,
            payload={"team_id": team.pk, "name": team.name},
        )
        team.delete()


def add_member(team: Team, user: Any, role: str, *, actor: Any = None) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}", "role")
    if not user.is_active:
        raise ServiceError("this user account is deactivated", "user")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role)
            record(
                "team.member_added",
                team=team,
                subject=team,
                actor=actor,
                payload={"user_id": user.pk, "username": user.get_username(), "role": role},
            )
    except IntegrityError:
        raise ServiceError(
            f"{user.get_username()} is already a member of {team}", "user", "duplicate"
        ) from None
    forget_roles(user)
    return membership


def _locked_membership(membership: Membership) -> Membership:
    """``membership`` as stored now, with its team's row locked until the caller's transaction
    ends: role changes and removals in one team run one after the other, each checking what the
    one before left, so two managers demoting each other at once cannot leave no manager (nor
    can a stale ``membership`` object decide on a role it no longer has)."""
    list(Team.objects.select_for_update().filter(pk=membership.team_id).values_list("pk"))
    current = Membership.objects.filter(pk=membership.pk).first()
    if current is None:
        raise ServiceError("this person is no longer a member of the team", "user", "not_found")
    return current


def _ensure_a_manager_remains(membership: Membership) -> None:
    others = Membership.objects.filter(team=membership.team_id, role=Role.MANAGER).exclude(
        pk=membership.pk
    )
    if membership.role == Role.MANAGER and not others.exists():
        raise ServiceError(
            "a team needs at least one manager; promote someone else first", "role", "last_manager"
        )


def change_role(membership: Membership, role: str, *, actor: Any = None) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}", "role")
    with transaction.atomic():
        current = _locked_membership(membership)
        before = current.role
        if role != before:
            if role != Role.MANAGER:
                _ensure_a_manager_remains(current)
            current.role = role
            current.save(update_fields=["role"])
            record(
                "team.member_role_changed",
                team=current.team_id,
                subject=membership.team,
                actor=actor,
                payload={
                    "user_id": current.user_id,
                    "username": membership.user.get_username(),
                    "role": [before, role],
                },
            )
    membership.role = role
    if role != before:
        forget_roles(membership.user)
    return membership


def remove_member(membership: Membership, *, actor: Any = None) -> None:
    with transaction.atomic():
        current = _locked_membership(membership)
        _ensure_a_manager_remains(current)
        record(
            "team.member_removed",
            team=current.team_id,
            subject=membership.team,
            actor=actor,
            payload={"user_id": current.user_id, "username": membership.user.get_username()},
        )
        membership.delete()
    forget_roles(membership.user)


def request_test_event(team: Team, *, actor: Any) -> str:
    """Ask a worker to write a ``team.test`` event: proves worker → event log → browsers."""
    from django_q.tasks import async_task

    return async_task(
        "tocsin.tasks.emit_test_event",
        team.pk,
        actor.pk if actor is not None else None,
        timezone.now().isoformat(),
        task_name=f"test event for {team.slug}",
    )


def issue_token(user: Any, name: str, *, expires_at: Any = None) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not name:
        raise ServiceError("give the token a name so you can recognise it later", "name")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("the expiry must be in the future", "expires_at")
    with transaction.atomic():
        token, raw = ApiToken.issue(user, name, expires_at=expires_at)
        record(
            "user.token_created",
            team=None,
            subject=token,
            actor=user,
            payload={"prefix": token.prefix, "expires_at": expires_at and expires_at.isoformat()},
        )
    return token, raw


def revoke_token(token: ApiToken, *, actor: Any) -> None:
    if token.revoked_at is not None:
        return
    with transaction.atomic():
        token.revoke()
        record("user.token_revoked", team=None, subject=token, actor=actor)


def user_by_username(username: str) -> Any:
    User = get_user_model()
    try:
        return User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist:
        raise ServiceError(f"no user named {username!r}", "username", "not_found") from None
