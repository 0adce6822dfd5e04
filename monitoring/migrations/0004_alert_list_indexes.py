"""Indexes for the Alerts page and the alerts API at a million rows (``tocsin.keyset``).

Each list walks one of them newest first and stops after a page: the firing alerts (a few
thousand among a million, the page's default view), all alerts, and one service's alerts.
Database only, built concurrently on PostgreSQL (``tocsin.index_operations``).
"""

from django.db import migrations, models

from tocsin.index_operations import AddListIndex


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("monitoring", "0003_alert_expected_end_and_change_events")]

    operations = [
        AddListIndex(
            model_name="alert",
            index=models.Index(
                fields=["-last_change_at", "-id"],
                name="alert_firing_recent",
                condition=models.Q(status="firing"),
            ),
        ),
        AddListIndex(
            model_name="alert",
            index=models.Index(fields=["-last_change_at", "-id"], name="alert_recent"),
        ),
        AddListIndex(
            model_name="alert",
            index=models.Index(
                fields=["service", "-last_change_at", "-id"], name="alert_service_recent"
            ),
        ),
    ]
