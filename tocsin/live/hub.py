"""One tailer per web process, fanning new events out to that process's WebSocket subscribers."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Max

from tocsin.live.gaps import GapTracker
from tocsin.live.render import render_event
from tocsin.models import Event

log = logging.getLogger(__name__)

# Events after which a subscriber's right to see a team must be checked again.
MEMBERSHIP_KINDS = frozenset(
    {"team.member_added", "team.member_removed", "team.member_role_changed"}
)
FETCH_BATCH = 500


class Subscriber(Protocol):
    user_id: int
    fmt: str
    all_teams: bool
    team_ids: frozenset[int]

    def deliver(self, event: Event, text: str) -> None: ...

    def revalidate(self) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._by_team: dict[int, set[Subscriber]] = defaultdict(set)
        self._all_teams: set[Subscriber] = set()
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task | None = None
        self._tracker: GapTracker | None = None

    # -- subscription bookkeeping ----------------------------------------------------------
    async def subscribe(self, sub: Subscriber) -> None:
        self._index(sub)
        self._subscribers.add(sub)
        if self._task is None or self._task.done():
            # Start from "now": anything older reaches a subscriber through its own replay.
            start_after = await database_sync_to_async(_max_event_id)()
            self._tracker = GapTracker(start_after)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")

    def unsubscribe(self, sub: Subscriber) -> None:
        self._unindex(sub)
        self._subscribers.discard(sub)

    def reindex(self, sub: Subscriber) -> None:
        """Call after a subscriber's team scope changed."""
        self._unindex(sub)
        if sub in self._subscribers:
            self._index(sub)

    def _index(self, sub: Subscriber) -> None:
        if sub.all_teams:
            self._all_teams.add(sub)
        for team_id in sub.team_ids:
            self._by_team[team_id].add(sub)

    def _unindex(self, sub: Subscriber) -> None:
        self._all_teams.discard(sub)
        for team_id in list(self._by_team):
            subs = self._by_team[team_id]
            subs.discard(sub)
            if not subs:
                del self._by_team[team_id]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # -- the tail loop ---------------------------------------------------------------------
    async def _run(self) -> None:
        interval = settings.TOCSIN_LIVE_POLL_INTERVAL
        while self._subscribers:
            try:
                await self.poll_once()
            except Exception:  # keep relaying after a database blip; the error is logged
                log.exception("live relay poll failed; retrying")
                await asyncio.sleep(min(5.0, interval * 10))
            await asyncio.sleep(interval)
        self._task = None

    async def poll_once(self) -> int:
        assert self._tracker is not None
        formats = {sub.fmt for sub in self._subscribers}
        events = await database_sync_to_async(_fetch_and_render)(
            self._tracker.query_after(), formats
        )
        fresh_ids = set(self._tracker.accept(e.pk for e in events))
        delivered = 0
        for event in events:
            if event.pk in fresh_ids:
                delivered += self._dispatch(event)
        return delivered

    def _dispatch(self, event: Event) -> int:
        # Team-less events (sign-ins, tokens) reach only those who see every team: superusers.
        targets = set(self._all_teams)
        if event.team_id is not None:
            targets |= self._by_team.get(event.team_id, set())
        for sub in targets:
            sub.deliver(event, render_event(event, sub.fmt))
        if event.kind in MEMBERSHIP_KINDS:
            user_id = event.payload.get("user_id")
            for sub in list(self._subscribers):
                if sub.user_id == user_id:
                    sub.revalidate()
        return len(targets)


def _max_event_id() -> int:
    return Event.objects.aggregate(m=Max("id"))["m"] or 0


def _fetch_and_render(after: int, formats: set[str]) -> list[Event]:
    events = list(
        Event.objects.filter(id__gt=after).select_related("team").order_by("id")[:FETCH_BATCH]
    )
    for event in events:
        for fmt in formats:
            render_event(event, fmt)
    return events


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """The hub of the running event loop (daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
