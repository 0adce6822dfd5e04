# A check's rollups become one row per day with its hours and minutes packed (probes.checks.points),
# plus the minutes not packed yet. The earlier rows per minute, hour and day are dropped: the
# roll-up rebuilds the last 48 hours from the raw results (``rollup(lookback=timedelta(hours=48))``).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("probes", "0003_heartbeat_limits"),
    ]

    operations = [
        migrations.DeleteModel(name="Rollup"),
        migrations.CreateModel(
            name="RecentMinute",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("up", models.PositiveIntegerField(default=0)),
                ("degraded", models.PositiveIntegerField(default=0)),
                ("down", models.PositiveIntegerField(default=0)),
                ("unknown", models.PositiveIntegerField(default=0)),
                ("p50", models.PositiveIntegerField(blank=True, null=True)),
                ("p95", models.PositiveIntegerField(blank=True, null=True)),
                ("p99", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "histogram",
                    models.BinaryField(
                        default=b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                        max_length=60,
                    ),
                ),
                ("minute", models.DateTimeField()),
                (
                    "probe",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="probes.check",
                    ),
                ),
            ],
            options={
                "ordering": ["probe", "-minute"],
                "indexes": [models.Index(fields=["minute"], name="recent_minute_time")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("probe", "minute"), name="recent_minute_one_per_check"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Rollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("up", models.PositiveIntegerField(default=0)),
                ("degraded", models.PositiveIntegerField(default=0)),
                ("down", models.PositiveIntegerField(default=0)),
                ("unknown", models.PositiveIntegerField(default=0)),
                ("p50", models.PositiveIntegerField(blank=True, null=True)),
                ("p95", models.PositiveIntegerField(blank=True, null=True)),
                ("p99", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "histogram",
                    models.BinaryField(
                        default=b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                        max_length=60,
                    ),
                ),
                ("day", models.DateField()),
                ("hours", models.BinaryField(blank=True, default=b"")),
                ("minutes", models.BinaryField(blank=True, default=b"")),
                (
                    "probe",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rollups",
                        to="probes.check",
                    ),
                ),
            ],
            options={
                "ordering": ["probe", "-day"],
                "constraints": [
                    models.UniqueConstraint(fields=("probe", "day"), name="rollup_one_per_day")
                ],
            },
        ),
    ]
