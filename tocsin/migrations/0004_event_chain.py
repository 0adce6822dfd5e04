"""The tamper-evident audit chain (tocsin.audit): three nullable columns on events, filled by
the sealer after commit (adding them rewrites nothing: NULL columns are metadata only on
PostgreSQL 11+ and SQLite), the chains' heads and the periodic anchors."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tocsin", "0003_fk_indexes_covered_by_others"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="ip",
            field=models.CharField(blank=True, editable=False, max_length=45, null=True),
        ),
        migrations.AddField(
            model_name="event",
            name="seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="event",
            name="prev_hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="event",
            name="hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.CreateModel(
            name="AuditHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("chain", models.BigIntegerField(unique=True)),
                ("seq", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("event_id", models.BigIntegerField()),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name="AuditAnchor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("sealed_through", models.BigIntegerField()),
                ("heads", models.JSONField(default=dict)),
                ("digest", models.CharField(max_length=64)),
                ("verified_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ["-id"], "get_latest_by": "id"},
        ),
    ]
