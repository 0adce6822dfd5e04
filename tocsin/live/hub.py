"""One relay per web process, fanning new events out to that process's WebSocket subscribers.

How the relay learns that events were committed depends on the deployment:
- with Redis, by pub/sub: the committing process publishes a notice (``tocsin.live.publish``)
  and the relay reads the new events by id when one arrives. An idle relay reads nothing; a slow
  safety read (``TOCSIN_LIVE_SAFETY_INTERVAL``) repairs a notice lost to a Redis outage.
- embedded (no Redis, so no broker between the web and worker processes), by polling the event
  log every ``TOCSIN_LIVE_POLL_INTERVAL``.
Either way the relay reads past the highest id it has seen (and the holes below it, see
``gaps.py``), so a missed notice is repaired by the next one, and delivers each event once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Q

from tocsin.live.gaps import GapTracker
from tocsin.live.publish import GROUP, LAYER, redis_fanout
from tocsin.live.render import render_event
from tocsin.models import Event

log = logging.getLogger(__name__)

# Events after which a subscriber's right to see a team must be checked again.
MEMBERSHIP_KINDS = frozenset(
    {"team.member_added", "team.member_removed", "team.member_role_changed"}
)
FETCH_BATCH = 500
YIELD_EVERY = 50  # sockets handed an event between two turns of the event loop
START_WINDOW = 500  # ids below the newest in which a starting relay looks for holes


class Subscriber(Protocol):
    user_id: int
    fmt: str
    all_teams: bool
    team_ids: frozenset[int]

    async def deliver(self, event: Event, text: str) -> None: ...

    def revalidate(self) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._by_team: dict[int, set[Subscriber]] = defaultdict(set)
        self._all_teams: set[Subscriber] = set()
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task | None = None
        self._started: asyncio.Future | None = None
        self._tracker: GapTracker | None = None
        self._listener: asyncio.Task | None = None
        self._news = asyncio.Event()
        self._announced = 0  # the highest event id a commit notice named
        self._failed_reads = 0  # in a row: the retry waits longer each time

    # -- subscription bookkeeping ----------------------------------------------------------
    async def subscribe(self, sub: Subscriber) -> None:
        """Returns once the relay follows the log, so what the subscriber replays next and
        what the relay delivers overlap rather than leave a hole."""
        self._index(sub)
        self._subscribers.add(sub)
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._started = loop.create_future()
            self._task = loop.create_task(self._run(self._started), name="live-hub")
        assert self._started is not None
        await asyncio.shield(self._started)

    def unsubscribe(self, sub: Subscriber) -> None:
        self._unindex(sub)
        self._subscribers.discard(sub)
        if not self._subscribers:
            self._news.set()  # the relay stops now rather than at its next safety read

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

    # -- the relay loop --------------------------------------------------------------------
    async def _run(self, started: asyncio.Future) -> None:
        try:
            if redis_fanout():
                await self._listen()
            # Start from "now": anything older reaches a subscriber through its own replay.
            self._tracker = await database_sync_to_async(_tracker_from_now)()
        except Exception as error:
            self._task = None
            started.set_exception(error)
            return
        started.set_result(None)
        try:
            if redis_fanout():
                await self._follow_notices()
            else:
                await self._poll()
        finally:
            self._task = None  # before any await: a new subscriber starts a new relay

    async def _poll(self) -> None:
        interval = settings.TOCSIN_LIVE_POLL_INTERVAL
        while self._subscribers:
            await self._relay_safely(interval)
            await asyncio.sleep(interval)

    async def _follow_notices(self) -> None:
        assert self._tracker is not None
        while self._subscribers:
            try:
                await asyncio.wait_for(self._news.wait(), settings.TOCSIN_LIVE_SAFETY_INTERVAL)
            except TimeoutError:
                pass  # no notice for a while: read anyway, in case one was lost
            else:
                self._news.clear()
                if self._announced <= self._tracker.cursor and not self._tracker.missing():
                    continue  # an earlier read already delivered what this notice names
            await self._relay_safely(1.0)

    async def _listen(self) -> None:
        """Subscribe this process to the commit notices, once; the subscription stays."""
        if self._listener is not None and not self._listener.done():
            return
        layer = get_channel_layer(LAYER)
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        self._listener = asyncio.get_running_loop().create_task(
            self._hear(layer, channel), name="live-notices"
        )

    async def _hear(self, layer: Any, channel: str) -> None:
        while True:
            notice = await layer.receive(channel)
            self._announced = max(self._announced, int(notice.get("last", 0)))
            self._news.set()

    async def _relay_safely(self, pause: float) -> None:
        try:
            await self.relay()
        except Exception:  # keep relaying after a database blip; the error is logged
            # A blip (a deadlock, a dropped connection) is retried at once, a lasting fault
            # less and less often: 0.1, 0.2, 0.4 … s, at most ten pauses.
            self._failed_reads += 1
            log.exception("live relay read failed; retrying")
            await asyncio.sleep(min(pause * 10, 0.05 * 2**self._failed_reads))
        else:
            self._failed_reads = 0

    async def relay(self) -> int:
        """Read what was committed since the last read and deliver it; returns deliveries."""
        assert self._tracker is not None
        tracker = self._tracker
        formats = {sub.fmt for sub in self._subscribers}
        delivered = 0
        while True:
            after = tracker.cursor
            events = await database_sync_to_async(_fetch_and_render)(
                after, tracker.missing(), formats
            )
            fresh_ids = set(tracker.accept(e.pk for e in events))
            for event in events:
                if event.pk in fresh_ids:
                    delivered += await self._dispatch(event)
            if sum(1 for e in events if e.pk > after) < FETCH_BATCH:
                return delivered

    async def _dispatch(self, event: Event) -> int:
        # Team-less events (sign-ins, tokens) reach only those who see every team: superusers.
        targets = set(self._all_teams)
        if event.team_id is not None:
            targets |= self._by_team.get(event.team_id, set())
        for sent, sub in enumerate(targets, 1):
            try:
                await sub.deliver(event, render_event(event, sub.fmt))
            except Exception:  # one broken socket must not cost the others their event
                log.exception("live delivery to a subscriber of user %s failed", sub.user_id)
            if sent % YIELD_EVERY == 0:
                # The server writes to the sockets when the loop runs: let it, so the first
                # sockets get the event while the rest are still being handed theirs.
                await asyncio.sleep(0)
        if event.kind in MEMBERSHIP_KINDS:
            user_id = event.payload.get("user_id")
            for sub in list(self._subscribers):
                if sub.user_id == user_id:
                    if event.kind == "team.member_removed" and event.team_id is not None:
                        # At once, before the next event of this read: the re-read of the
                        # person's teams (revalidate) takes a database round trip.
                        self._by_team.get(event.team_id, set()).discard(sub)
                    sub.revalidate()
        return len(targets)


def _tracker_from_now() -> GapTracker:
    """Start after the newest event, remembering the holes just below it: on PostgreSQL a lower
    id may still be in flight and commit after this relay (and a subscriber's replay) looked."""
    recent = list(Event.objects.order_by("-id").values_list("id", flat=True)[:START_WINDOW])
    start = max(0, recent[0] - START_WINDOW) if recent else 0
    tracker = GapTracker(start)
    tracker.accept(sorted(i for i in recent if i > start))
    return tracker


def _fetch_and_render(after: int, missing: list[int], formats: set[str]) -> list[Event]:
    """New events past ``after``, and the ``missing`` ids below it that may have committed late:
    one query whatever the number of subscribers."""
    wanted = Q(id__gt=after)
    if missing:
        wanted |= Q(id__in=missing)
    events = list(
        Event.objects.filter(wanted)
        .select_related("team")
        .order_by("id")[: FETCH_BATCH + len(missing)]
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
