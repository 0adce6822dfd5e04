"""The ingest path's statements are prepared on PostgreSQL, and still show in the query log.

A batch of one alert spent half of PostgreSQL's time parsing and planning its statements. The
statements sent with server-side binding (``tocsin.db.bulk.server_cursor``) keep one text for
every batch, so psycopg prepares them on a connection once they have run twice, and Tocsin's
connections plan a prepared statement once for any values (``force_generic_plan``).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import Service
from monitoring.pipeline import AlertInput, process
from tocsin import db_pool

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def test_prepared_statements_are_on_unless_turned_off(monkeypatch):
    monkeypatch.delenv("TOCSIN_DB_PREPARED_STATEMENTS", raising=False)
    assert db_pool.prepare_threshold() == 2
    monkeypatch.setenv("TOCSIN_DB_PREPARED_STATEMENTS", "0")
    assert db_pool.prepare_threshold() is None
    monkeypatch.setenv("TOCSIN_DB_PREPARED_STATEMENTS", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="TOCSIN_DB_PREPARED_STATEMENTS"):
        db_pool.prepare_threshold()


@postgresql_only
def test_a_one_alert_batch_runs_prepared_statements_and_logs_their_text(crew):
    service = Service.objects.create(team=crew.team, name="Prepared")
    for i in range(3):  # prepared from the second run on
        process(service, [AlertInput(labels={"alertname": "Disk", "i": str(i)})], source="t")
    with CaptureQueriesContext(connection) as captured:
        process(service, [AlertInput(labels={"alertname": "Disk", "i": "last"})], source="t")
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
        cursor.execute("SHOW plan_cache_mode")
        [[plan_cache_mode]] = cursor.fetchall()
    assert plan_cache_mode == "force_generic_plan"

    def prepared_with(fragment: str) -> bool:
        return any(fragment in statement for statement in prepared)

    assert prepared_with('INSERT INTO "monitoring_alert"')  # the alert
    assert prepared_with('INSERT INTO "tocsin_event"')  # its events
    assert prepared_with('INSERT INTO "incidents_incidentalert"')  # its incident link
    assert prepared_with('FROM "monitoring_maintenancewindow"')  # may anything mute it
    assert prepared_with("AS storm_used")  # its incident, with the storm budget
    # Not the dedup read: its plan for any values did not use the unique index.
    assert not prepared_with('SELECT "id", "fingerprint", "status", "content_hash"')
    # psycopg sends a prepared statement by name; the query log still gets its text.
    logged = [query["sql"] for query in captured.captured_queries]
    assert all(logged), logged
    assert any(sql.startswith('INSERT INTO "monitoring_alert"') for sql in logged)
