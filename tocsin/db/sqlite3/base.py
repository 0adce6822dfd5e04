"""Django's SQLite backend, tuned for several processes writing one file.

- **Parameter limit.** Django 5.2 assumes SQLite's pre-3.32 limit of 999 bound parameters and
  splits every bulk INSERT at that: a batch of 100 alerts (26 columns each) became three INSERT
  statements, 1,000 events (10 columns) eleven. SQLite 3.32+ accepts 32,766 by default; we use
  the smaller of that and what the library reports, so a batch stays one statement.
- **Writers take turns.** Web processes and workers write one file, one transaction at a time
  (``BEGIN IMMEDIATE``). A writer that finds the file locked waits in SQLite's busy handler,
  which sleeps 1, 2, 5, 10 … up to 100 ms between tries: under load the lock sat free while
  waiters slept, and a request could wait seconds behind luckier ones. Writers here first take
  an advisory lock on a file beside the database (``flock``), trying every millisecond, so the
  next writer starts as soon as the last one commits; after the busy timeout a writer goes on
  to SQLite's own waiting, so nothing waits forever on the turn lock.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.backends.sqlite3.features import DatabaseFeatures as SQLiteFeatures


def _parameter_limit() -> int:
    try:
        connection = sqlite3.connect(":memory:")
        try:
            return min(connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 32766)
        finally:
            connection.close()
    except (AttributeError, sqlite3.Error):  # getlimit is Python 3.11+
        return SQLiteFeatures.max_query_params


class DatabaseFeatures(SQLiteFeatures):
    max_query_params = _parameter_limit()


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    _turn_file: Any = None
    _has_turn = False

    def _start_transaction_under_autocommit(self) -> None:
        self._take_turn()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_turn()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._end_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end_turn()
            if self._turn_file is not None:
                self._turn_file.close()
                self._turn_file = None

    def _take_turn(self) -> None:
        name = str(self.settings_dict["NAME"])
        if self.transaction_mode != "IMMEDIATE" or self.is_in_memory_db() or self._has_turn:
            return
        if self._turn_file is None:
            self._turn_file = open(f"{name}-writers", "a+b")  # noqa: SIM115 (kept open)
        patience = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        deadline = time.monotonic() + patience
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self._turn_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._has_turn = True
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return  # SQLite's own busy handling decides from here
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    def _end_turn(self) -> None:
        if self._has_turn and self._turn_file is not None:
            fcntl.flock(self._turn_file.fileno(), fcntl.LOCK_UN)
        self._has_turn = False
