from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tocsin", "0004_event_chain"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="require_two_factor",
            field=models.BooleanField(
                default=False,
                help_text="Members must enrol a two-factor device before using Tocsin.",
            ),
        ),
    ]
