"""The PostgreSQL pool recovers at once when the server cuts every session (tocsin.db.postgresql).

A restart, a failover or ``pg_terminate_backend`` also kills the pool's idle connections. psycopg's
pool used to find them one by one, sleeping 1, 2, 4 … s after each dead one, so the first request
(or the worker's paging loop) after the cut waited out the pool timeout and failed. These tests
cut the sessions of a pool of their own on the test database, then ask it for a connection with
a pool timeout too short for that backoff.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from tocsin.db.postgresql.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)

POOL_SIZE = 4
APPLICATION = "tocsin-pool-recovery-test"


@pytest.fixture
def pooled():
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's; runs when DATABASE_URL names a PostgreSQL database")
    settings = {
        **connection.settings_dict,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "application_name": APPLICATION,
            # Shorter than psycopg's backoff over a few dead connections (1 + 2 s ...).
            "pool": {"min_size": POOL_SIZE, "max_size": POOL_SIZE, "timeout": 2.5},
        },
    }
    wrapper = DatabaseWrapper(settings, alias="pool-recovery-test")
    try:
        wrapper.pool.open(wait=True, timeout=10)  # every idle connection open
        wrapper.ensure_connection()
        yield wrapper
    finally:
        wrapper.close()
        wrapper.close_pool()


def cut_every_session() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            [APPLICATION],
        )
        return cursor.fetchone()[0]


def select_one(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def test_a_pool_whose_idle_connections_were_all_cut_hands_out_a_live_one(pooled):
    pooled.close()  # every connection idle in the pool
    assert cut_every_session() == POOL_SIZE

    assert select_one(pooled) == 1  # within the pool timeout, not after the backoff
    stats = pooled.pool.get_stats()
    assert stats["connections_lost"] == POOL_SIZE, stats


def test_a_query_that_finds_its_connection_cut_has_the_idle_ones_replaced(pooled):
    assert select_one(pooled) == 1  # this thread holds one; the rest are idle
    assert cut_every_session() == POOL_SIZE
    with pytest.raises(OperationalError):
        select_one(pooled)
    pooled.close()  # as the worker's loop and a finished request do after an error

    stats = pooled.pool.get_stats()
    # The held one and every idle one found dead before anyone asked for a connection.
    assert stats.get("returns_bad", 0) + stats["connections_lost"] >= POOL_SIZE, stats
    assert select_one(pooled) == 1
