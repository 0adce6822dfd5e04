"""Those paged for an incident hear when it resolves: through the real outbox and SMTP."""

from __future__ import annotations

from django.test import Client

from incidents.escalation.engine import advance_escalations
from incidents.lifecycle import services
from incidents.models import ContactMethod, Delivery, DeliveryStatus, Incident, NotificationRule
from incidents.notifications import outbox
from incidents.notifications.resolved import notify_paged
from tests.incidents.core_support import NOON, fire, policy, settings_for
from tocsin.models import Event


def paged_incident(crew, service, *users):
    settings_for(service, escalation_policy=policy(crew.team, {"user_ids": [u.pk for u in users]}))
    fire(service, NOON)
    incident = Incident.objects.get()
    assert advance_escalations(NOON) == 1
    outbox.send_due_deliveries()
    return incident


def test_the_paged_hear_it_resolved_and_the_others_do_not(crew, service, smtp):
    method = ContactMethod.objects.create(
        user=crew.manager, kind="email", config={"to": ["pager@example.net"]}
    )
    NotificationRule.objects.create(user=crew.manager, contact_method=method, delay_minutes=0)
    later = ContactMethod.objects.create(
        user=crew.manager, kind="email", config={"to": ["later@example.net"]}
    )
    NotificationRule.objects.create(user=crew.manager, contact_method=later, delay_minutes=10)
    incident = paged_incident(crew, service, crew.responder, crew.manager)
    # The responder's account address, the manager's two rules (NOON + 10 min is past too).
    assert len(smtp.messages) == 3

    services.resolve(incident, actor=crew.responder, reason="rolled back")
    notices = list(Delivery.objects.filter(event_kind="resolved").order_by("recipient_id"))
    assert {(d.recipient_id, d.kind) for d in notices} == {
        (crew.responder.pk, "email"),
        (crew.manager.pk, "email"),
    }
    assert all(d.incident_id == incident.pk for d in notices)
    assert outbox.send_due_deliveries() == 2
    resolved_mail = smtp.messages[3:]
    assert sorted(to for to, _ in resolved_mail) == [
        ["pager@example.net"],
        ["responder@example.org"],
    ]
    for _to, message in resolved_mail:
        assert message["Subject"].endswith("(resolved)")
        body = message.get_payload(decode=True).decode()
        assert "Resolved by responder: rolled back" in body
    # The viewer, never paged, heard nothing; the manager's later rule is not told again.
    assert ["viewer@example.org"] not in [to for to, _ in smtp.messages]

    # The timeline's "Resolved" line says the notices went out.
    client = Client()
    client.force_login(crew.viewer)
    text = client.get(incident.get_absolute_url()).content.decode()
    entry = text.split('data-kind="incident.resolved"', 1)[1].split("</li>\n    \n", 1)[0]
    assert entry.count('data-delivery-status="sent"') == 2


def test_one_notice_per_resolution_and_user_however_often_it_runs(crew, service, smtp):
    incident = paged_incident(crew, service, crew.responder)
    services.resolve(incident, actor=crew.manager)
    event = Event.objects.get(kind="incident.resolved")
    incident.refresh_from_db()
    notify_paged(event, incident)  # a second run: the dedup key holds
    assert Delivery.objects.filter(event_kind="resolved").count() == 1
    # Reopened and resolved again: that is news, told once more.
    services.reopen(incident, actor=crew.manager)
    services.resolve(incident, actor=crew.manager)
    assert Delivery.objects.filter(event_kind="resolved").count() == 2
    assert outbox.send_due_deliveries() == 2
    assert {d.status for d in Delivery.objects.filter(event_kind="resolved")} == {
        DeliveryStatus.SENT
    }


def test_an_incident_nobody_was_paged_for_resolves_quietly(crew, service, smtp):
    fire(service, NOON)
    incident = Incident.objects.get()
    services.resolve(incident, actor=crew.responder)
    assert not Delivery.objects.exists()
