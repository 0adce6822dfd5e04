"""Tiles: what a tile is and the registry the apps add theirs to.

A tile's ``context(user, team_ids, now)`` returns what its template shows, for the teams
``team_ids`` (the ids the user may view; None means every team, a superuser). It must cost a
fixed number of queries whatever the data: aggregate and slice in the database. A tile with
nothing configured returns ``setup(...)`` (what to set up and where) and its template is not
used. ``live`` names the event areas ("alert" for ``alert.*``) whose arrival re-fetches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

Context = Callable[[Any, "set[int] | None", datetime], dict[str, Any]]


@dataclass(frozen=True)
class Tile:
    name: str  # a slug: the partial's URL and the element's id
    title: str
    order: int
    template: str
    context: Context
    live: tuple[str, ...] = ()  # event areas that make the tile re-fetch itself
    refresh_seconds: int | None = None  # and/or a periodic refresh
    wide: bool = False  # spans two columns on a wide screen
    link: str = ""  # URL name of the page behind the tile (its "Open →" link)

    @property
    def trigger(self) -> str:
        parts = [f"tocsin:live-{area} from:body delay:750ms" for area in self.live]
        if self.refresh_seconds:
            parts.append(f"every {self.refresh_seconds}s")
        return ", ".join(parts)


_TILES: dict[str, Tile] = {}


def register(tile: Tile) -> Tile:
    """Add (or replace, on a second ``ready()``) a tile."""
    _TILES[tile.name] = tile
    return tile


def tiles() -> list[Tile]:
    return sorted(_TILES.values(), key=lambda t: (t.order, t.name))


def get(name: str) -> Tile | None:
    return _TILES.get(name)


def in_teams(queryset: QuerySet, team_ids: set[int] | None, team_field: str = "team") -> QuerySet:
    """``queryset`` restricted to ``team_ids`` (None: every team)."""
    if team_ids is None:
        return queryset
    return queryset.filter(**{f"{team_field}__in": team_ids})


def setup(text: str, url: str, label: str) -> dict[str, Any]:
    """The context of a tile with nothing configured: what to set up, and a link to where."""
    return {"setup": {"text": text, "url": url, "label": label}}
