"""Running calls at the same moment, each in its own thread and database connection, as two
web processes or two workers would: for the tests of races (PostgreSQL; SQLite runs one
writing transaction at a time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

from tocsin.services import ServiceError


def at_once(*calls: Callable[[], Any], timeout: float = 60) -> list[Any]:
    """Start every call together (a barrier); what each gave, in the order of ``calls``: its
    return value, the code of the ServiceError it raised, or any other exception."""
    start = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            start.wait(10)
            outcomes[index] = call()
        except ServiceError as exc:
            outcomes[index] = exc.code
        except BaseException as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes
