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


def test_with_two_writers_a_second_batch_goes_in_while_the_first_is_being_written():
    started: list[str] = []
    both_started = threading.Event()
    lock = threading.Lock()

    def write(batch: list[Item]) -> None:
        with lock:
            started.extend(item.name for item in batch)
            if len(started) == 2:
                both_started.set()
        # Each batch waits for the other to start: with one writer this would never happen.
        assert both_started.wait(10), "the second batch did not start beside the first"
        for item in batch:
            item.written = True

    async def scenario() -> list[Item]:
        commit = GroupCommit(write, name="test", writers=2)
        items = [Item("first"), Item("second")]
        first = asyncio.create_task(commit.submit(items[0]))
        await asyncio.sleep(0.05)  # the first batch is being written
        await asyncio.gather(first, commit.submit(items[1]))
        return items

    items = asyncio.run(scenario())
    assert started == ["first", "second"]
    assert all(item.written and item.error is None for item in items)


def test_take_sees_the_items_being_written_and_may_hold_the_rest_back():
    writing_first = threading.Event()
    let_first_finish = threading.Event()
    batches: list[list[str]] = []
    seen_busy: list[list[str]] = []

    def write(batch: list[Item]) -> None:
        batches.append([item.name for item in batch])
        if batch[0].name == "first":
            writing_first.set()
            let_first_finish.wait(10)
        for item in batch:
            item.written = True

    def take(waiting: list[Item], busy: list[Item]) -> tuple[list[Item], list[Item]]:
        seen_busy.append([item.name for item in busy])
        if busy:  # e.g. the same alert as one being written: it must follow that batch
            return [], waiting
        return waiting, []

    async def scenario() -> None:
        commit = GroupCommit(write, take, name="test", writers=2)
        first = asyncio.create_task(commit.submit(Item("first")))
        await asyncio.to_thread(writing_first.wait, 10)
        second = asyncio.create_task(commit.submit(Item("second")))
        await asyncio.sleep(0.05)
        assert not second.done() and batches == [["first"]]  # held back, not written beside
        let_first_finish.set()
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    assert batches == [["first"], ["second"]]
    assert ["first"] in seen_busy


def _cohorts_scenario(linger: float) -> list[list[str]]:
    """Four items ("a") are written while four more ("b") wait; the four a-clients come back
    with a new item each as soon as they are answered. Returns the batches written after a
    first one (a gate that lets the four a-items gather)."""
    batches: list[list[str]] = []
    started = {1: threading.Event(), 2: threading.Event()}
    release = {1: threading.Event(), 2: threading.Event()}

    def write(batch: list[Item]) -> None:
        batches.append([item.name for item in batch])
        if len(batches) in started:
            started[len(batches)].set()
            release[len(batches)].wait(10)
        for item in batch:
            item.written = True

    async def client(commit: GroupCommit, name: str) -> None:
        await commit.submit(Item(f"{name}-1"))
        await asyncio.sleep(0.001)  # the answer travels, the next request comes back
        await commit.submit(Item(f"{name}-2"))

    async def scenario() -> None:
        commit = GroupCommit(write, name="test", linger=linger)
        gate = asyncio.create_task(commit.submit(Item("gate")))
        await asyncio.to_thread(started[1].wait, 10)
        a_cohort = [asyncio.create_task(client(commit, f"a{n}")) for n in range(4)]
        await asyncio.sleep(0.01)
        release[1].set()
        await asyncio.to_thread(started[2].wait, 10)
        b_cohort = [asyncio.create_task(commit.submit(Item(f"b{n}"))) for n in range(4)]
        await asyncio.sleep(0.01)
        release[2].set()
        await asyncio.wait_for(asyncio.gather(gate, *a_cohort, *b_cohort), 10)

    asyncio.run(scenario())
    assert batches[:2] == [["gate"], ["a0-1", "a1-1", "a2-1", "a3-1"]]
    return batches[2:]


def test_a_busy_server_lingers_so_the_clients_just_answered_join_the_next_batch():
    after = _cohorts_scenario(linger=0.5)
    # The waiting four and the four that came back go in together.
    assert after == [["b0", "b1", "b2", "b3", "a0-2", "a1-2", "a2-2", "a3-2"]]


def test_without_linger_the_load_splits_into_cohorts_that_alternate():
    after = _cohorts_scenario(linger=0.0)
    assert after[0] == ["b0", "b1", "b2", "b3"]  # went in without the four coming back
    assert sorted(name for batch in after[1:] for name in batch) == ["a0-2", "a1-2", "a2-2", "a3-2"]


def test_lingering_ends_after_the_linger_when_nobody_comes_back():
    batches: list[list[str]] = []
    first_started = threading.Event()
    let_first_finish = threading.Event()

    def write(batch: list[Item]) -> None:
        batches.append([item.name for item in batch])
        if len(batches) == 1:
            first_started.set()
            let_first_finish.wait(10)
        for item in batch:
            item.written = True

    async def scenario() -> None:
        commit = GroupCommit(write, name="test", linger=0.05)
        first = asyncio.create_task(commit.submit(Item("first")))
        await asyncio.to_thread(first_started.wait, 10)
        waiting = asyncio.create_task(commit.submit(Item("waiting")))
        await asyncio.sleep(0.01)
        let_first_finish.set()
        await asyncio.wait_for(asyncio.gather(first, waiting), 10)

    asyncio.run(scenario())
    assert batches == [["first"], ["waiting"]]


def test_an_idle_server_writes_a_lone_item_at_once_whatever_the_linger():
    written: list[str] = []

    def write(batch: list[Item]) -> None:
        written.extend(item.name for item in batch)

    async def scenario() -> None:
        commit = GroupCommit(write, name="test", linger=600.0)
        await asyncio.wait_for(commit.submit(Item("one")), 10)
        await asyncio.wait_for(commit.submit(Item("two")), 10)  # nothing waited: no lingering

    asyncio.run(scenario())
    assert written == ["one", "two"]
