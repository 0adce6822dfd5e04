"""tocsin.group_commit: items that arrive while a batch is written wait and go in together."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from tocsin.group_commit import GroupCommit


@dataclass(eq=False)
class Item:
    name: str
    written: bool = False
    error: BaseException | None = None


def test_items_that_arrive_during_a_write_share_the_next_batch():
    batches: list[list[str]] = []
    first_batch_started = threading.Event()
    let_it_finish = threading.Event()

    def write(batch: list[Item]) -> None:
        batches.append([item.name for item in batch])
        if len(batches) == 1:
            first_batch_started.set()
            let_it_finish.wait(10)
        for item in batch:
            item.written = True

    async def scenario() -> list[Item]:
        commit = GroupCommit(write, name="test")
        items = [Item(f"i{n}") for n in range(11)]
        first = asyncio.create_task(commit.submit(items[0]))
        await asyncio.to_thread(first_batch_started.wait, 10)
        rest = [asyncio.create_task(commit.submit(item)) for item in items[1:]]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in rest)  # answered only once written
        let_it_finish.set()
        await asyncio.gather(first, *rest)
        return items

    items = asyncio.run(scenario())
    assert batches == [["i0"], [f"i{n}" for n in range(1, 11)]]
    assert all(item.written for item in items)


def test_a_batch_that_raises_answers_its_items_with_the_error_and_the_next_goes_in():
    calls = []
    writing = threading.Event()

    def write(batch: list[Item]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            writing.set()
            raise RuntimeError("database gone")
        for item in batch:
            item.written = True

    async def scenario() -> list[Item]:
        commit = GroupCommit(write, name="test")
        items = [Item("first"), Item("second")]
        first = asyncio.create_task(commit.submit(items[0]))
        await asyncio.to_thread(writing.wait, 10)  # the first batch is being written
        await asyncio.gather(first, commit.submit(items[1]))
        return items

    first, second = asyncio.run(scenario())
    assert isinstance(first.error, RuntimeError) and not first.written
    assert second.error is None and second.written
