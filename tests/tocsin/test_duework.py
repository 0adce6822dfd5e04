"""The due-work loop's pass: each kind of work is asked when it is due once, and again only after
it ran (each question is a query; a busy worker passes many times a second)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tocsin.duework import DueWorkLoop
from tocsin.scheduling import DueWork

asked: list[str] = []
ran: list[str] = []
due: dict[str, object] = {}


def _work(name: str) -> DueWork:
    here = __name__
    return DueWork(
        name=name,
        func=f"{here}.run_{name}",
        run=f"{here}.run_{name}",
        next_due=f"{here}.next_due_{name}",
    )


def next_due_idle():
    asked.append("idle")
    return due["idle"]


def run_idle(now):
    ran.append("idle")
    return 0


def next_due_busy():
    asked.append("busy")
    return due["busy"]


def run_busy(now):
    ran.append("busy")
    due["busy"] = now + timedelta(seconds=30)  # done: next due later
    return 1


class Listener:
    poll, kind = 1.0, ""

    def wait(self, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_pass_asks_idle_work_once_and_work_that_ran_again():
    asked.clear()
    ran.clear()
    now = timezone.now()
    due.update(idle=now + timedelta(minutes=5), busy=now - timedelta(seconds=1))
    loop = DueWorkLoop([_work("idle"), _work("busy")], listener=Listener())

    started, earliest = loop.run_once(now)

    assert ran == ["busy"] and started == 1
    assert asked == ["idle", "busy", "busy"]
    assert earliest == now + timedelta(seconds=30)  # what the busy work's run left due next
