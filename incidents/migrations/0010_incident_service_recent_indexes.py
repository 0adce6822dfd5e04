"""Indexes for grouping a batch of alerts into a service's incidents (``incidents.lifecycle.
grouping``): how many incidents the service opened within the storm window, and its newest open
incident. Without them PostgreSQL could only read them from a scan of the service's incidents
(or, planning a prepared statement for any service, of the whole table) on every batch.
Database only, built concurrently on PostgreSQL (``tocsin.index_operations``).
"""

from django.db import migrations, models

from tocsin.index_operations import AddListIndex


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("incidents", "0009_delivery_links_sealed")]

    operations = [
        AddListIndex(
            model_name="incident",
            index=models.Index(
                fields=["service", "-created_at", "-id"], name="incident_service_recent"
            ),
        ),
        AddListIndex(
            model_name="incident",
            index=models.Index(
                fields=["service", "-created_at", "-id"],
                name="incident_service_open_recent",
                condition=models.Q(status__in=("triggered", "acknowledged")),
            ),
        ),
    ]
