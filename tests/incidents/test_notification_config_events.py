"""Channels, contact methods and rules are written through incidents.notifications.services:
every change is a channel.* / contact_method.* / notification_rule.* event, from the API, the
settings page and the admin alike, and no event carries a secret."""

from __future__ import annotations

import json

from incidents.models import NotificationChannel
from tocsin.models import Event

URL = "/api/v1/notification-channels/"
SLACK = "https://hooks.slack.com/services/T0/B0/topsecret"


def kinds(**filters):
    return list(Event.objects.filter(**filters).order_by("id").values_list("kind", flat=True))


def test_api_channel_changes_are_events_without_the_secret(crew, api):
    client = api(crew.manager)
    body = {"team": crew.team.pk, "kind": "slack", "name": "ops", "config": {"url": SLACK}}
    created = client.post(URL, body, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert client.patch(f"{URL}{pk}/", {"enabled": False}, format="json").status_code == 200
    assert client.delete(f"{URL}{pk}/").status_code == 204

    events = Event.objects.filter(kind__startswith="channel.").order_by("id")
    assert [e.kind for e in events] == ["channel.created", "channel.updated", "channel.deleted"]
    assert {e.team_id for e in events} == {crew.team.pk}
    assert {e.actor_id for e in events} == {crew.manager.pk}
    assert events[0].payload["config_keys"] == ["url"]
    assert events[1].payload["enabled"] is False
    assert events[2].subject_id == str(pk)
    assert "topsecret" not in json.dumps([e.payload for e in events])


def test_a_duplicate_channel_name_is_a_400_and_records_nothing(crew, api):
    client = api(crew.manager)
    body = {"team": crew.team.pk, "kind": "slack", "name": "ops", "config": {"url": SLACK}}
    assert client.post(URL, body, format="json").status_code == 201
    again = client.post(URL, body, format="json")
    assert again.status_code == 400
    assert kinds(kind__startswith="channel.") == ["channel.created"]


def test_settings_page_methods_and_rules_are_events_of_their_owner(client, crew):
    client.force_login(crew.responder)
    base = "/account/notifications/"
    response = client.post(
        f"{base}methods/",
        {"kind": "email", "label": "Work", "address": "alice.pager@example.net", "secret": ""},
    )
    assert response.status_code == 302
    method = crew.responder.contact_methods.get()
    rule = {"contact_method": method.pk, "delay_minutes": 0, "urgency": "any"}
    assert client.post(f"{base}rules/", rule).status_code == 302
    rule_pk = crew.responder.notification_rules.get().pk
    assert client.post(f"{base}rules/{rule_pk}/delete/").status_code == 302
    assert client.post(f"{base}methods/{method.pk}/delete/").status_code == 302

    personal = [k for k in kinds(actor=crew.responder, team=None) if not k.startswith("user.")]
    assert personal == [
        "contact_method.created",
        "notification_rule.created",
        "notification_rule.deleted",
        "contact_method.deleted",
    ]
    assert "alice.pager" not in json.dumps(list(Event.objects.values_list("payload", flat=True)))


def test_deleting_a_channel_in_the_admin_is_an_event(client, crew):
    channel = NotificationChannel.objects.create(
        team=crew.team, kind="slack", name="ops", config={"url": SLACK}
    )
    client.force_login(crew.manager)
    response = client.post(
        f"/admin/incidents/notificationchannel/{channel.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302, response.content[:500]
    assert not NotificationChannel.objects.filter(pk=channel.pk).exists()
    assert kinds(kind__startswith="channel.") == ["channel.deleted"]
