"""Small helpers every API module needs, so each says "not found" and "visible" the same way."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.serializers import BaseSerializer

from tocsin.models import Team
from tocsin.permissions import Action, teams_for

# Routers' lookup pattern for integer primary keys: /things/abc/ is a 404, not a 500.
INT_LOOKUP = r"[0-9]+"

# The largest id a bigint column holds (PostgreSQL and SQLite alike); a larger number names no
# object, and some lookups (``__in``, foreign keys) would crash on it rather than match nothing.
MAX_ID = 2**63 - 1


def object_id(value: Any) -> int | None:
    """``value`` as an id that can exist (1 … MAX_ID), or None for anything else."""
    text = str(value)
    if not text.isascii() or not text.isdecimal():
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def not_found(what: str) -> NotFound:
    """The same words whether the object is missing or merely invisible to the caller."""
    return NotFound(f"no such {what}, or you may not see it", code="not_found")


def visible_teams(request: Any) -> QuerySet[Team]:
    """Teams the caller may view; none during schema generation (there is no request)."""
    if request is None:
        return Team.objects.none()
    return teams_for(request.user, Action.VIEW)


def id_in_body(request: Any, key: str) -> int | None:
    """The id a request body gives under ``key``, or None when it gives none that can exist."""
    data = request.data
    raw = data.get(key) if hasattr(data, "get") else None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return None
    return object_id(raw)


def team_in_body(request: Any, key: str = "team") -> Team | None:
    """The team a write names, when the caller can view it.

    Views return it from ``permission_team`` so that TeamRole answers 403 to a member whose role
    is too low before any input is validated; anything else is left to the serializer (400).
    """
    pk = id_in_body(request, key)
    return None if pk is None else visible_teams(request).filter(pk=pk).first()


def validated(serializer_class: type[BaseSerializer], data: Any, context: dict) -> dict[str, Any]:
    """Validated input, or the one 400 error shape (raised by DRF, shaped by tocsin.api.errors)."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
