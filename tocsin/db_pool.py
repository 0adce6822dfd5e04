"""PostgreSQL connections under ASGI: one psycopg pool per process, safe across ``fork()``.

Why a pool: daphne runs each request's synchronous code in a thread of its own (Django's
``ThreadSensitiveContext``), so Django's per-thread connection is new for every request. With
``CONN_MAX_AGE > 0`` a finished request's connection stays open until its dead thread happens to
be garbage-collected, and a busy server runs PostgreSQL out of ``max_connections`` (the requests
then fail with 500). With ``CONN_MAX_AGE = 0`` and Django's built-in psycopg pool, closing the
connection at the end of a request hands it back to the pool: a process never holds more than
``TOCSIN_DB_POOL_MAX`` server connections, and a request does not pay for a new one.

Why the fork hook: the django-q2 cluster forks its sentinel, pusher and workers from a process
that may already have used the database (the scheduler runs in the sentinel). A child that took
an idle connection out of a pool inherited from its parent would share that socket with the
parent and corrupt both sessions. After ``fork()`` the child therefore forgets the inherited pool
without closing it — closing would end the parent's sessions — and opens a pool of its own on
first use.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tocsin.env import env_bool, env_float, env_int

# Pools and connections inherited across fork(): referenced for the life of the child so that
# they are never closed or collected there (they belong to the parent).
_inherited: list[Any] = []
_registered = False


def pool_options() -> dict[str, Any]:
    """psycopg_pool.ConnectionPool arguments for each process, from the environment."""
    max_size = env_int("TOCSIN_DB_POOL_MAX", 8, minimum=1)
    return {
        # Kept open while idle: the first requests after a quiet spell don't wait to connect.
        "min_size": min(env_int("TOCSIN_DB_POOL_MIN", 2, minimum=0), max_size),
        "max_size": max_size,
        # A request waits this long for a free connection before failing (seconds).
        "timeout": env_float("TOCSIN_DB_POOL_TIMEOUT", 10, minimum=0.1),
        # Connections above min_size are closed after this long unused (seconds).
        "max_idle": env_float("TOCSIN_DB_POOL_MAX_IDLE", 300, minimum=1),
        "name": "tocsin",
    }


def prepare_threshold() -> int | None:
    """After how many runs on a connection psycopg prepares a statement (None: never).

    Only statements sent with server-side binding are ever prepared (``tocsin.db.bulk.
    server_cursor``: the ingest path's reads and inserts, whose text is the same whatever the
    values); Django's own cursors bind client-side and never are. For a one-alert batch,
    parsing and planning were half of PostgreSQL's time. ``TOCSIN_DB_PREPARED_STATEMENTS=0``
    turns it off, for a pooler that cannot carry prepared statements (PgBouncer in transaction
    mode before 1.21, or without ``max_prepared_statements``)."""
    return 2 if env_bool("TOCSIN_DB_PREPARED_STATEMENTS", True) else None


def forget_inherited_connections() -> None:
    """In a child after fork(): let go of the parent's pools, untouched.

    Only plain dictionary work here: this runs between fork() and exec() too (subprocess with
    preexec_fn), where taking a lock another thread held at fork time would hang the child. So
    Django's per-thread connections (behind asgiref's locked Local) are not touched: whoever
    forks closes them first (django-q2's cluster does, as does ``manage.py worker``).
    """
    postgresql = sys.modules.get("django.db.backends.postgresql.base")
    if postgresql is not None:
        pools = postgresql.DatabaseWrapper._connection_pools
        _inherited.extend(pools.values())
        pools.clear()


def register_fork_hook() -> None:
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=forget_inherited_connections)
        _registered = True
