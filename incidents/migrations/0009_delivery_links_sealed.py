"""Pages' acknowledge/resolve links leave the stored message (issue #14).

``Delivery.sealed_links`` keeps them encrypted; body and payload hold placeholders. Rows written
before: their links are taken out of body and payload; a page still waiting to be sent keeps
them sealed (its recipient still gets working links), a sent one keeps none (nobody needs them).
"""

from django.db import migrations

import tocsin.crypto

ACTION_PATH = "/incidents/act/"
WAITING = ("pending", "sending")


def placeholder(name):
    # As incidents.notifications.render.placeholder says it (copied: a migration stays as is).
    return f"[{name.replace('_', ' ')} link — only in the recipient's copy]"


def seal_stored_links(apps, schema_editor):
    Delivery = apps.get_model("incidents", "Delivery")
    batch = []
    rows = Delivery.objects.filter(payload__has_key="links").only(
        "id", "body", "payload", "status", "sealed_links"
    )
    for delivery in rows.iterator(chunk_size=500):
        links = (delivery.payload or {}).get("links") or {}
        actions = {n: h for n, h in links.items() if isinstance(h, str) and ACTION_PATH in h}
        if not actions:
            continue
        for name, href in actions.items():
            delivery.body = delivery.body.replace(href, placeholder(name))
            links[name] = placeholder(name)
        delivery.payload = {**delivery.payload, "links": links}
        delivery.sealed_links = actions if delivery.status in WAITING else {}
        batch.append(delivery)
        if len(batch) >= 500:
            Delivery.objects.bulk_update(batch, ["body", "payload", "sealed_links"])
            batch = []
    if batch:
        Delivery.objects.bulk_update(batch, ["body", "payload", "sealed_links"])


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0008_notification_rule_notify_on_resolve"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="sealed_links",
            field=tocsin.crypto.EncryptedJSONField(),
        ),
        migrations.RunPython(seal_stored_links, migrations.RunPython.noop, elidable=True),
    ]
