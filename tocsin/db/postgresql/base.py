"""Django's PostgreSQL backend, with a pool that recovers at once when the server cuts it off.

A server restart, a failover or ``pg_terminate_backend`` ends every session at once, including
the idle ones in the pool. psycopg's pool finds that out one connection at a time: ``getconn``
checks the idle connection it takes, and after each dead one sleeps on its reconnection backoff
(1, 2, 4, 8 s …) before trying the next. With a few dead idle connections a request (or the
worker's paging loop) waited out the whole pool timeout and failed, seconds after the database
was back. Here the first dead connection found, whether by that check or by a query of the thread
holding it, has the pool check all its idle connections at once and replace the dead ones; the
next ``getconn`` gets a live connection, or waits only for a new one to connect.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base, operations


class _CheckOrSweep:
    """The pool's check of a connection it hands out; a failure sweeps the rest of the pool."""

    def __init__(self) -> None:
        self.pool: Any = None

    def __call__(self, conn: Any) -> None:
        try:
            self.pool.check_connection(conn)
        except Exception:
            self.pool.check()  # the idle connections most likely went the same way
            raise


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str | None:
        # A prepared statement is sent by name, and psycopg then holds no text to give (see
        # tocsin.db.bulk.server_cursor): the query log gets the statement as written, with its
        # placeholders, rather than nothing.
        return super().last_executed_query(cursor, sql, params) or sql


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    @property
    def pool(self) -> Any:
        options = self.settings_dict["OPTIONS"].get("pool")
        if options and self.alias != NO_DB_ALIAS and self.alias not in self._connection_pools:
            # As Django's own (which then validates and returns it), but with our check.
            from psycopg_pool import ConnectionPool

            check = _CheckOrSweep()
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **({} if options is True else options),
            )
            check.pool = pool
            # Threads racing here each build one (not opened yet); the first one set wins.
            self._connection_pools.setdefault(self.alias, pool)
        return super().pool

    def _configure_connection(self, connection: Any) -> bool:
        commit = super()._configure_connection(connection)
        if self.settings_dict["OPTIONS"].get("prepare_threshold") is not None:
            # Prepared statements (only ours, see tocsin.db.bulk.server_cursor) use the plan
            # made once for any values. Left to choose, PostgreSQL planned the grouping read of
            # every one-alert batch again (its costliest step for such a batch); the prepared
            # statements are written so that the generic plan probes indexes (tested), and the
            # one whose generic plan did not is not prepared (rows_by_fingerprint).
            with connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_generic_plan")
            commit = True
        return commit

    def _close(self) -> None:
        lost = self.connection is not None and self.pool is not None and self.connection.broken
        super()._close()
        if lost:
            # Best effort: should the sweep fail (the pool closing), getconn's own check still
            # finds the dead connections, one by one.
            with contextlib.suppress(Exception):
                self.pool.check()
