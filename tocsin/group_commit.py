"""Group commit: requests that arrive together on a web process's event loop share one
transaction.

A request that writes a little (an alert, a heartbeat ping) pays the same fixed cost per
transaction — reads, statements, the commit's fsync on SQLite — whether it writes one row or a
hundred. Here the requests that arrive while a batch is being written wait together and go in
as the next batch, in a thread of their own (the database work is synchronous). The busier the
server, the larger the batches and the lower the cost per request; an idle server writes a lone
request at once. Each request is answered only after the batch holding it has committed.

The domain decides what a batch is and how it is written: ``take`` picks the next batch from
what waits (for example, never two requests about the same alert in one batch), ``write``
writes it and records each item's own result or error, never raising.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from django.db import close_old_connections


class Item(Protocol):
    error: BaseException | None


T = TypeVar("T", bound=Item)


def write_all_or_each(write: Callable[[list[T]], None], batch: list[T]) -> None:
    """``write(batch)``; if that raises, each item is written again alone, so one item's failure
    stays its own (all or nothing per item, never across the items merged with it). Never
    raises: an error is given to the items it hit."""
    try:
        write(batch)
    except Exception as exc:
        if len(batch) == 1:
            batch[0].error = exc
            return
        for item in batch:
            try:
                write([item])
            except Exception as alone:
                item.error = alone


def take_all(waiting: list[T], busy: list[T]) -> tuple[list[T], list[T]]:
    """Every waiting item in one batch (for items that never conflict with one another)."""
    return waiting, []


class GroupCommit(Generic[T]):
    """Gathers one event loop's items and writes them in batches, up to ``writers`` batches at
    a time.

    With one writer, batches go in one after another. With more, a batch's Python work overlaps
    another batch's wait for the database (on PostgreSQL a batch spends about a third of its
    time waiting for the server): a new batch starts as soon as a writer is free, from what
    waits then. ``take(waiting, busy)`` picks it, knowing the items being written (``busy``), so
    a domain can hold back items that must follow one of them.

    ``linger`` (seconds) keeps a busy server's batches whole. Under a steady load the clients
    answered by one batch send their next requests while the next batch, of those that waited,
    is being written: the load splits into two cohorts that alternate, each batch half the
    size it could be, each paying the fixed cost. So when a batch ends while items wait, the
    next one starts once as many new items have arrived as the ended batch answered, or after
    ``linger``, whichever comes first. An idle server (nothing waiting when a batch ends) still
    writes a lone item at once.
    """

    def __init__(
        self,
        write: Callable[[list[T]], None],
        take: Callable[[list[T], list[T]], tuple[list[T], list[T]]] = take_all,
        name: str = "group-commit",
        writers: int = 1,
        linger: float = 0.0,
    ) -> None:
        self.write = write
        self.take = take
        self.writers = max(writers, 1)
        self.linger = linger
        self.waiting: list[tuple[T, asyncio.Future]] = []
        # While lingering: start once this many items wait (see the class's docstring).
        self._linger_until_waiting: int | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self.busy: dict[asyncio.Task, list[T]] = {}  # batch being written → its items
        self.executor = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix=name)

    async def submit(self, item: T) -> None:
        """Returns once ``item`` holds its result or its error."""
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((item, done))
        if self._linger_until_waiting is None or len(self.waiting) >= self._linger_until_waiting:
            self._start_batches()
        # Shielded: a client that hangs up does not take its item out of a running batch.
        await asyncio.shield(done)

    def _start_batches(self) -> None:
        self._stop_lingering()
        while self.waiting and len(self.busy) < self.writers:
            futures = dict(self.waiting)
            busy = [item for items in self.busy.values() for item in items]
            batch, left = self.take(list(futures), busy)
            if not batch:
                return  # what waits must follow a batch being written
            self.waiting = [(item, futures[item]) for item in left]
            task = asyncio.create_task(self._write(batch, [futures[item] for item in batch]))
            self.busy[task] = batch

    async def _write(self, batch: list[T], futures: list[asyncio.Future]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self._write_in_thread, batch)
        except BaseException as exc:  # never leave a request hanging
            for item in batch:
                item.error = item.error or exc
            if not isinstance(exc, Exception):
                raise  # cancelled at shutdown
            # A write that raised despite its contract: the next batch still goes in.
        finally:
            for future in futures:
                if not future.done():
                    future.set_result(None)
            self.busy.pop(asyncio.current_task(), None)
            if self.linger and self.waiting and not self.busy:
                self._linger_for(len(batch))
            else:
                self._start_batches()

    def _linger_for(self, answered: int) -> None:
        """Wait for up to ``answered`` more items, at most ``linger`` seconds."""
        if self._linger_until_waiting is not None:
            return
        self._linger_until_waiting = len(self.waiting) + answered
        self._linger_timer = asyncio.get_running_loop().call_later(self.linger, self._start_batches)

    def _stop_lingering(self) -> None:
        self._linger_until_waiting = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None

    def _write_in_thread(self, batch: list[T]) -> None:
        try:
            self.write(batch)
        finally:
            # As at the end of a request: the connection goes back (to the pool, on PostgreSQL).
            close_old_connections()


_instances: dict[tuple[asyncio.AbstractEventLoop, str], GroupCommit] = {}


def for_this_loop(name: str, factory: Callable[[], GroupCommit[T]]) -> GroupCommit[T]:
    """The running event loop's group commit called ``name`` (a web process runs one loop)."""
    key = (asyncio.get_running_loop(), name)
    if key not in _instances:
        _instances[key] = factory()
    return _instances[key]
