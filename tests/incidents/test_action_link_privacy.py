"""A page's acknowledge/resolve links are for its recipient alone (issue #14).

They act as the recipient without signing in, so a manager who reads the delivery (admin, API,
incident page) must not find them, nor anyone reading the database row; the mail the recipient
gets (a real SMTP server) carries links that work.
"""

from __future__ import annotations

import re
from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client

from incidents.escalation.engine import advance_escalations
from incidents.models import Delivery, DeliveryStatus, Incident, IncidentStatus
from incidents.notifications import outbox as notify
from incidents.notifications.render import placeholder
from tests.incidents.core_support import NOON, fire, policy, settings_for
from tests.incidents.test_notify_email import body_of

# Anything in a stored row that could be (part of) a signed token.
CANDIDATE = re.compile(r"[A-Za-z0-9_:.-]{20,}")


@pytest.fixture
def paged(crew, service):
    """The responder paged by escalation for a fresh incident: (incident, their delivery)."""
    settings_for(service, escalation_policy=policy(crew.team, {"user_ids": [crew.responder.pk]}))
    fire(service, NOON)
    advance_escalations(NOON)
    (delivery,) = Delivery.objects.filter(recipient=crew.responder)
    return Incident.objects.get(), delivery


def raw_row(delivery: Delivery) -> str:
    """Every column of the delivery's row as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Delivery._meta.db_table} WHERE id = %s", [delivery.pk])
        return " ".join(str(value) for value in cursor.fetchone())


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def tokens_in(url: str) -> list[str]:
    return CANDIDATE.findall(url.rsplit("/incidents/act/", 1)[1])


def test_the_stored_delivery_holds_no_usable_link(crew, paged):
    incident, delivery = paged
    sealed = delivery.sealed_links
    assert set(sealed) == {"acknowledge", "resolve"}
    row = raw_row(delivery)

    assert "/incidents/act/" not in row
    for url in sealed.values():
        for token in tokens_in(url):
            assert token not in row
    assert placeholder("acknowledge") in delivery.body
    assert delivery.payload["links"]["acknowledge"] == placeholder("acknowledge")
    # Whatever in the row looks like a token does not act.
    client = Client()
    for candidate in set(CANDIDATE.findall(row)):
        answer = client.post(f"/incidents/act/{candidate}/")
        assert answer.status_code in (400, 404), candidate
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED


@pytest.mark.parametrize("reader", ["manager", "admin"])
def test_a_manager_reading_the_delivery_sees_no_link(crew, paged, reader):
    incident, delivery = paged
    tokens = [t for url in delivery.sealed_links.values() for t in tokens_in(url)]
    client = Client()
    client.force_login(crew.by_role(reader))

    pages = {
        "admin change": f"/admin/incidents/delivery/{delivery.pk}/change/",
        "admin list": "/admin/incidents/delivery/",
        "api detail": f"/api/v1/deliveries/{delivery.pk}/",
        "api list": "/api/v1/deliveries/",
        "incident page": f"/incidents/{incident.pk}/",
    }
    for name, url in pages.items():
        answer = client.get(url)
        assert answer.status_code == 200, (name, answer.status_code)
        text = answer.content.decode()
        assert "/incidents/act/" not in text, name
        for token in tokens:
            assert token not in text, name
    change = client.get(pages["admin change"]).content.decode()
    assert "only in the recipient&#x27;s copy" in change or "only in the recipient's copy" in change
    assert "sealed" not in change.lower()  # the sealed links' field is not even named


def test_the_recipients_mail_has_links_that_work(crew, paged, smtp):
    incident, delivery = paged
    assert notify.send_due_deliveries(now=NOON) == 1
    ((to, message),) = smtp.messages
    assert to == [crew.responder.email]
    body = body_of(message)
    assert placeholder("acknowledge") not in body
    ack = re.search(r"^Acknowledge: (\S+)", body, re.M)
    assert ack, body
    ack = ack.group(1)
    assert "/incidents/act/" in ack
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert "/incidents/act/" not in raw_row(delivery)  # sending did not write it back

    acted = Client().post(path_of(ack))

    assert acted.status_code == 303
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED


def test_rows_from_before_are_sealed_by_the_migration(crew, paged):
    _, waiting = paged
    ack = "https://tocsin.example.org/incidents/act/.eJyrVkrOzytJzSvRUcrMS8nMS1WyMjQwMNBRSk3OSMzJTMrPS1WyMjYyNjQ:1tX:sig/"
    body = f"Checkout is down\n\nAcknowledge: {ack}\nResolve: https://tocsin.example.org/r/"
    old = {"body": body, "payload": {"links": {"acknowledge": ack}}, "sealed_links": {}}
    Delivery.objects.filter(pk=waiting.pk).update(**old)
    sent = Delivery.objects.create(
        team=crew.team, kind="email", dedup_key="old-sent", subject="s",
        status=DeliveryStatus.SENT, **old,
    )  # fmt: skip
    untouched = Delivery.objects.create(
        team=crew.team, kind="email", dedup_key="swap", subject="s",
        body="Schedule: https://x/s/", payload={"links": {"schedule": "https://x/s/"}},
    )  # fmt: skip
    migration = import_module("incidents.migrations.0009_delivery_links_sealed")

    migration.seal_stored_links(apps, None)

    waiting.refresh_from_db()
    sent.refresh_from_db()
    untouched.refresh_from_db()
    for row in (waiting, sent):
        assert ack not in raw_row(row)
        assert f"Acknowledge: {placeholder('acknowledge')}" in row.body
        assert row.payload["links"] == {"acknowledge": placeholder("acknowledge")}
    assert waiting.sealed_links == {"acknowledge": ack}  # still to be sent: its recipient needs it
    assert sent.sealed_links == {}
    assert untouched.body == "Schedule: https://x/s/"
