"""Indexes for the Incidents page and the incidents API at 100,000 incidents (``tocsin.keyset``).

The list walks one of them newest first and stops after a page: the open incidents (the page's
default view) and all incidents. Database only, built concurrently on PostgreSQL
(``tocsin.index_operations``).
"""

from django.db import migrations, models

from tocsin.index_operations import AddListIndex


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("incidents", "0004_delivery_handed_over")]

    operations = [
        AddListIndex(
            model_name="incident",
            index=models.Index(
                fields=["-created_at", "-id"],
                name="incident_open_recent",
                condition=models.Q(status__in=("triggered", "acknowledged")),
            ),
        ),
        AddListIndex(
            model_name="incident",
            index=models.Index(fields=["-created_at", "-id"], name="incident_recent"),
        ),
    ]
