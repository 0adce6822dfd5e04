"""Runs in flight: one event loop in a thread of its own, for the due-work loop of a worker.

The due-work loop must not wait for a batch's slowest target: a check that hangs until its
timeout would hold every other check due meanwhile. So the loop only submits claimed slots to
this event loop (``submit``) and, on each pass, records the runs that have finished
(``collect``), in its own thread: the event loop never touches the database. Slots in flight
stay claimed under their lease, so a worker that dies with runs in flight loses none of them.
``drain`` (when the worker stops) waits for the runs in flight and records them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.utils import timezone

from probes.checks.runner import RunOutcome
from probes.kinds import http as http_kind

# While runs are in flight and none has finished, the loop looks again this soon.
LOOK_AGAIN = timedelta(milliseconds=50)
# ... and it passes at most this often: each pass costs the loop a few statements whatever it
# finds, so a busy worker records and claims in batches rather than a run at a time. The
# scheduler claims slots due within a pace and starts each at its time, so runs stay on time
# (bench/probes.py: 20 ms cost 15 % more CPU per run than 50 ms; 100 ms left the worker idle
# between passes).
PACE = timedelta(milliseconds=50)


class _Run:
    """A claimed slot handed to the event loop, and what its run came to once it finished.

    Lighter than a ``concurrent.futures.Future`` (which builds a lock and a condition each):
    a busy worker hands over hundreds of runs a second."""

    __slots__ = ("failure", "outcome", "slot", "token")

    def __init__(self, slot: Any, token: str) -> None:
        self.slot, self.token = slot, token
        self.outcome: RunOutcome | None = None
        self.failure: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.failure is not None

    def result(self) -> RunOutcome:
        if self.failure is not None:
            raise self.failure
        assert self.outcome is not None
        return self.outcome


class InFlight:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.pending: list[_Run] = []
        # Guards finished_at and the loop's start; told when a run finishes (drain waits on it).
        self.lock = threading.Condition()
        # When the first run not yet collected finished (None: none has), and the last collect.
        self.finished_at: datetime | None = None
        self.collected_at = timezone.now()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.thread is None or not self.thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="tocsin-probes", daemon=True
                )
                thread.start()
                self.loop, self.thread = loop, thread
            return self.loop

    def submit(self, runs: list[tuple[Any, str, Callable[[], Any]]]) -> None:
        """Start ``run()`` (a coroutine function) for each claimed (slot, token): one hand-over
        to the event loop for the lot (one wake-up of its thread, not one per run)."""
        loop = self._ensure_loop()
        started = [(run, _Run(slot, token)) for slot, token, run in runs]
        self.pending.extend(entry for _, entry in started)

        def start() -> None:
            for run, entry in started:
                loop.create_task(run()).add_done_callback(partial(self._settle, entry))

        loop.call_soon_threadsafe(start)

    def _settle(self, entry: _Run, task: asyncio.Task[RunOutcome]) -> None:
        """In the event loop's thread: keep a finished task's outcome for ``collect``."""
        if task.cancelled():
            entry.failure = asyncio.CancelledError()
        elif (failure := task.exception()) is not None:
            entry.failure = failure
        else:
            entry.outcome = task.result()
        with self.lock:
            if self.finished_at is None:
                self.finished_at = timezone.now()
            self.lock.notify_all()

    def __len__(self) -> int:
        return len(self.pending)

    def due_at(self) -> datetime | None:
        """When the loop should come back to collect: when a run finished (a moment in the
        past, so a pass that started before this call still sees it due) but not within
        ``PACE`` of the last collect, else ``LOOK_AGAIN`` after it; None when nothing is in
        flight. Fixed points, not "now": the loop runs what was due when its pass began."""
        if not self.pending:
            return None
        with self.lock:
            finished = self.finished_at
        if finished is None:
            return self.collected_at + LOOK_AGAIN
        return max(finished, self.paced())

    def paced(self) -> datetime:
        """The earliest next pass while runs are in flight."""
        return self.collected_at + PACE

    def collect(
        self, record: Callable[[list[tuple[Any, str, RunOutcome]]], int], *, wait: bool = False
    ) -> int:
        """Record the runs that have finished (all of them, waiting, when ``wait``), together:
        ``record`` gets (slot, token, outcome) for each and returns how many it stored."""
        with self.lock:
            self.finished_at = None  # a run finishing from here on asks for the next pass
            if wait:
                self.lock.wait_for(lambda: all(entry.done for entry in self.pending))
        self.collected_at = timezone.now()
        done: list[_Run] = []
        still: list[_Run] = []
        for entry in self.pending:  # one look each: a run may finish while we sort
            (done if entry.done else still).append(entry)
        self.pending = still
        if not done:
            return 0
        return record([(entry.slot, entry.token, entry.result()) for entry in done])

    def stop(self) -> None:
        """Close the pooled clients and the loop (after ``collect(wait=True)``)."""
        loop, thread = self.loop, self.thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(http_kind.close_clients(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self.loop = self.thread = None
