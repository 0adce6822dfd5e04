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


def take_all(waiting: list[T]) -> tuple[list[T], list[T]]:
    """Every waiting item in one batch (for items that never conflict within a batch)."""
    return waiting, []


class GroupCommit(Generic[T]):
    """Gathers one event loop's items and writes them in batches, one batch at a time."""

    def __init__(
        self,
        write: Callable[[list[T]], None],
        take: Callable[[list[T]], tuple[list[T], list[T]]] = take_all,
        name: str = "group-commit",
    ) -> None:
        self.write = write
        self.take = take
        self.waiting: list[tuple[T, asyncio.Future]] = []
        self.draining: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def submit(self, item: T) -> None:
        """Returns once ``item`` holds its result or its error."""
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((item, done))
        if self.draining is None:
            self.draining = asyncio.create_task(self._drain())
        # Shielded: a client that hangs up does not take its item out of a running batch.
        await asyncio.shield(done)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                futures = dict(self.waiting)
                batch, left = self.take(list(futures))
                self.waiting = [(item, futures[item]) for item in left]
                try:
                    await loop.run_in_executor(self.executor, self._write_in_thread, batch)
                except BaseException as exc:  # never leave a request hanging
                    for item in batch:
                        item.error = item.error or exc
                    if not isinstance(exc, Exception):
                        raise  # cancelled at shutdown
                    # A write that raised despite its contract: the next batch still goes in.
                finally:
                    for item in batch:
                        if not futures[item].done():
                            futures[item].set_result(None)
        finally:
            self.draining = None

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
