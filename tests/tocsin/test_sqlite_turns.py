"""SQLite writers take turns on a lock file beside the database (tocsin.db.sqlite3)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from tocsin.models import Team

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="the turn lock is for the embedded SQLite database"
    ),
]


def test_a_second_writer_starts_as_soon_as_the_first_commits():
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                Team.objects.create(name="first")
                order.append("first began")
                first_in.set()
                time.sleep(0.3)
                order.append("first commits")
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_in.wait(5)
            with transaction.atomic():
                order.append("second began")
                Team.objects.create(name="second")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert order == ["first began", "first commits", "second began"]
    assert set(
        Team.objects.filter(name__in=["first", "second"]).values_list("name", flat=True)
    ) == {
        "first",
        "second",
    }


def test_the_turn_is_given_back_on_rollback():
    with pytest.raises(RuntimeError), transaction.atomic():
        Team.objects.create(name="rolled back")
        raise RuntimeError("undo")
    assert not connection._has_turn
    with transaction.atomic():
        assert connection._has_turn
        Team.objects.create(name="after")
    assert not connection._has_turn
