"""The WebSocket endpoint that streams a user's team events.

Protocol (``/ws/live/``; add ``?format=json`` for JSON frames, default is htmx HTML fragments):
- the client sends ``{"action": "subscribe", "after": <last event id seen>, "teams": [ids]}``
  (``teams`` optional: a subset of the teams the user may view). ``?after=N`` in the URL
  subscribes at once, for clients that cannot send a first message.
- the server replays what the client missed since ``after`` from the event log, then streams
  new events as they commit. Too long a gap gets a ``reset`` notice: reload instead of replay.
Unauthenticated handshakes are refused, and so are sessions the pages would not serve (past their
idle or absolute limit, or without the second factor their user must give: ``two_factor.gate``);
an open socket closes when its session reaches its absolute limit; membership changes take
effect on open sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from tocsin.live.hub import get_hub
from tocsin.live.render import FORMATS, render_event, render_notice
from tocsin.models import Event
from tocsin.permissions import Action, forget_roles, team_ids_for
from tocsin.two_factor import gate, sessions

log = logging.getLogger(__name__)

# Live events held while a subscriber's replay is being sent; more means reconnect and replay.
HOLD_LIMIT = 1000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_LAGGING = 4008


class LiveEventsConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket: events reach it from its process's hub, in process.
    # (With Redis, each socket would otherwise wait on a Redis read that only ever fails.)
    channel_layer_alias = None
    user_id: int
    fmt: str
    all_teams: bool = False
    team_ids: frozenset[int] = frozenset()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # The session rules pages follow: idle and absolute limits, the two-factor policy.
        refusal = await database_sync_to_async(gate.refusal)(self.scope["session"], user)
        if refusal is not None:
            log.info("live stream refused to user %s: session %s", user.pk, refusal)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.user_id = user.pk
        params = parse_qs(self.scope.get("query_string", b"").decode())
        self.fmt = params.get("format", ["html"])[0]
        if self.fmt not in FORMATS:
            self.fmt = "html"
        self.subscribed = False
        self.requested_teams: set[int] | None = None
        # Live events that arrive while the replay is sent wait here (None: sent at once).
        self.held: list[tuple[Event, str]] | None = []
        # Ids the client already has: up to ``after``, and the ones the replay sent.
        self.seen_upto = 0
        self.seen_ids: set[int] = set()
        # Ids up to ``after`` not committed when it subscribed: sent when they commit.
        self.late_ids: set[int] = set()
        await self.accept()
        # An open socket ends with its session's absolute lifetime, as a page would (not with
        # the idle limit: a wall screen watching is what the stream is for).
        left = sessions.lifetime_left(self.scope["session"])
        self.lifetime_timer = (
            None
            if left is None
            else asyncio.get_running_loop().call_later(max(left, 0), self._session_over)
        )
        if "after" in params:
            after = _parse_after(params["after"][0])
            if after is None:
                await self._error("after must be a whole number of zero or more")
                return
            await self._subscribe(after, None)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "subscribed", False):
            get_hub().unsubscribe(self)
        timer = getattr(self, "lifetime_timer", None)
        if timer is not None:
            timer.cancel()

    def _session_over(self) -> None:
        log.info("live stream of user %s closed: its session reached its lifetime", self.user_id)
        if getattr(self, "subscribed", False):
            get_hub().unsubscribe(self)
            self.subscribed = False
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_UNAUTHENTICATED))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except ValueError:
            await self._error("messages must be JSON objects")
            return
        if not isinstance(message, dict) or message.get("action") != "subscribe":
            await self._error('unknown message; send {"action": "subscribe", "after": <id>}')
            return
        if self.subscribed:
            await self._error("already subscribed on this connection")
            return
        after = _parse_after(message.get("after", 0))
        if after is None:
            await self._error("after must be a whole number of zero or more")
            return
        teams = message.get("teams")
        if teams is not None and (
            not isinstance(teams, list) or not all(isinstance(t, int) for t in teams)
        ):
            await self._error("teams must be a list of team ids")
            return
        await self._subscribe(after, set(teams) if teams is not None else None)

    # -- subscription ----------------------------------------------------------------------
    async def _subscribe(self, after: int, teams: set[int] | None) -> None:
        self.requested_teams = teams
        await self._load_scope()
        if teams is not None and not self.all_teams:
            refused = teams - self.team_ids
            if refused:
                await self._error(f"you are not a member of team(s) {sorted(refused)}")
        self.subscribed = True
        hub = get_hub()
        # Join the live stream first, then replay: whatever commits in between arrives by both
        # roads, and the live copies of replayed events are dropped.
        self.seen_upto = after
        await hub.subscribe(self)
        self.late_ids = await database_sync_to_async(_in_flight_below)(after)
        replayed = await database_sync_to_async(self._replay)(after)
        if replayed is None:
            await self.send(
                text_data=render_notice(
                    self.fmt, "reset", "Too many events were missed; reload the page."
                )
            )
        else:
            for event in replayed:
                await self.send(text_data=render_event(event, self.fmt))
            self.seen_ids = {e.pk for e in replayed}
        while self.held:
            await self._send_new(*self.held.pop(0))
        self.held = None

    def _scope_ids(self) -> tuple[bool, frozenset[int]]:
        forget_roles(self.user)
        self.user.refresh_from_db(fields=["is_active", "is_superuser"])
        if not self.user.is_active:
            return False, frozenset()
        ids = team_ids_for(self.user, Action.VIEW)
        if ids is None:
            if self.requested_teams is None:
                return True, frozenset()
            return False, frozenset(self.requested_teams)
        if self.requested_teams is not None:
            ids &= self.requested_teams
        return False, frozenset(ids)

    async def _load_scope(self) -> None:
        self.all_teams, self.team_ids = await database_sync_to_async(self._scope_ids)()

    def _replay(self, after: int) -> list[Event] | None:
        qs = Event.objects.filter(id__gt=after).select_related("team").order_by("id")
        if not self.all_teams:
            qs = qs.filter(team_id__in=self.team_ids)
        limit = settings.TOCSIN_LIVE_REPLAY_LIMIT
        events = list(qs[: limit + 1])
        if len(events) > limit:
            return None
        for event in events:
            render_event(event, self.fmt)
        return events

    async def _send_new(self, event: Event, text: str) -> None:
        # Up to ``after`` the client has what was committed when it subscribed (the relay may
        # be behind the page it loaded), but not the ids that were still in flight then.
        if event.pk in self.late_ids:
            self.late_ids.discard(event.pk)
        elif event.pk <= self.seen_upto or event.pk in self.seen_ids:
            self.seen_ids.discard(event.pk)
            return
        # Straight to the server's send: one socket of many, for every event, so no detours.
        await self.base_send({"type": "websocket.send", "text": text})

    # -- called by the hub -----------------------------------------------------------------
    async def deliver(self, event: Event, text: str) -> None:
        if self.held is None:
            await self._send_new(event, text)
        elif len(self.held) < HOLD_LIMIT:
            self.held.append((event, text))
        else:
            # A client this far behind reconnects and replays from the log instead.
            log.warning("live subscriber of user %s is lagging; closing", self.user_id)
            get_hub().unsubscribe(self)
            asyncio.get_running_loop().create_task(self.close(code=CLOSE_LAGGING))

    def revalidate(self) -> None:
        asyncio.get_running_loop().create_task(self._revalidate())

    async def _revalidate(self) -> None:
        await self._load_scope()
        get_hub().reindex(self)

    async def _error(self, message: str) -> None:
        await self.send(text_data=render_notice(self.fmt, "error", message))


# How far below ``after`` a subscriber looks for ids still in flight.
IN_FLIGHT_WINDOW = 200


def _in_flight_below(after: int) -> set[int]:
    """Ids up to ``after`` with no committed event yet. On PostgreSQL an id is handed out at
    INSERT, so a transaction may commit id 10 after another committed 11 and a page was drawn
    with ``after=11``: that page never saw 10, and the relay will bring it. (Ids of rolled back
    transactions stay here too, harmlessly: they never arrive.)"""
    low = max(0, after - IN_FLIGHT_WINDOW)
    present = set(Event.objects.filter(id__gt=low, id__lte=after).values_list("id", flat=True))
    return set(range(low + 1, after + 1)) - present


def _parse_after(value: Any) -> int | None:
    try:
        after = int(value)
    except (TypeError, ValueError):
        return None
    return after if after >= 0 else None
