"""The dashboard page (home after login) and one partial per tile, which the page re-fetches
when an event of the tile's areas arrives on the WebSocket."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from tocsin.dashboard.registry import Tile, get, tiles
from tocsin.models import Event
from tocsin.permissions import Action, may_use_admin, team_ids_for

WRAPPER = "tocsin/_tile.html"


def render_tile(request: HttpRequest, tile: Tile, team_ids: set[int] | None, now: Any) -> str:
    """The tile's section: its own template inside the common frame (title, live trigger,
    the set-up message when nothing is configured). Rendered without the request's context
    processors (ten tiles a page): tiles hold links, never forms."""
    context = tile.context(request.user, team_ids, now)
    body = "" if "setup" in context else render_to_string(tile.template, context)
    frame = {
        "tile": tile,
        "body": mark_safe(body),
        "setup": context.get("setup"),
        "can_use_admin": may_use_admin(request.user),
    }
    return render_to_string(WRAPPER, frame)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    team_ids = team_ids_for(request.user, Action.VIEW)
    rendered: list[SafeString] = []
    if team_ids is None or team_ids:
        rendered = [mark_safe(render_tile(request, t, team_ids, now)) for t in tiles()]
    context = {
        "tiles": rendered,
        "no_teams": team_ids is not None and not team_ids,
        "last_event_id": Event.objects.newest_id_for(request.user),
        "current": "dashboard",
    }
    return render(request, "tocsin/dashboard.html", context)


@login_required
def dashboard_tile(request: HttpRequest, name: str) -> HttpResponse:
    tile = get(name)
    if tile is None:
        raise Http404("No such tile.")
    team_ids = team_ids_for(request.user, Action.VIEW)
    if team_ids is not None and not team_ids:
        raise Http404("No teams.")
    return HttpResponse(render_tile(request, tile, team_ids, timezone.now()))
