"""/api/v1/notification-channels/, contact-methods/, notification-rules/, deliveries/."""

from __future__ import annotations

import pytest

from incidents.models import ContactMethod, NotificationChannel, NotificationRule
from incidents.notifications import outbox as notify
from tests.incidents.notify_support import make_channel, make_incident

URL = "/api/v1/notification-channels/"
SLACK = "https://hooks.slack.com/services/T0/B0/topsecret"


def body(crew, **extra):
    return {"team": crew.team.pk, "kind": "slack", "name": "ops", "config": {"url": SLACK}, **extra}


@pytest.mark.parametrize(
    "role,expected", [("viewer", 403), ("responder", 403), ("manager", 201), ("outsider", 400)]
)
def test_only_managers_create_channels(crew, api, role, expected):
    response = api(crew.by_role(role)).post(URL, body(crew), format="json")
    assert response.status_code == expected, response.content


def test_config_is_never_returned(crew, api):
    response = api(crew.manager).post(URL, body(crew), format="json")
    assert response.status_code == 201
    assert "config" not in response.json()
    assert response.json()["config_keys"] == ["url"]
    for user in (crew.viewer, crew.manager):
        listed = api(user).get(URL)
        assert listed.status_code == 200
        assert "topsecret" not in listed.content.decode()
        detail = api(user).get(f"{URL}{response.json()['id']}/")
        assert "topsecret" not in detail.content.decode()


def test_outsiders_do_not_see_channels(crew, api):
    channel = make_channel(crew.team, "slack", {"url": SLACK})
    assert api(crew.outsider).get(f"{URL}{channel.pk}/").status_code == 404
    assert api(crew.outsider).get(URL).json()["results"] == []
    assert api().get(URL).status_code in (401, 403)


@pytest.mark.parametrize(
    "config,field",
    [
        ({}, "config.url"),
        ({"url": "ftp://x/y"}, "config.url"),
        ({"url": SLACK, "nonsense": 1}, None),
    ],
)
def test_bad_config_is_a_400(crew, api, config, field):
    response = api(crew.manager).post(URL, body(crew, config=config), format="json")
    if field is None:
        assert response.status_code == 201  # unknown keys are dropped by the kind's serializer
        return
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_unknown_kind_and_bad_pagerduty_key_are_400s(crew, api):
    response = api(crew.manager).post(URL, body(crew, kind="pigeon"), format="json")
    assert response.status_code == 400
    response = api(crew.manager).post(
        URL, body(crew, kind="pagerduty", config={"routing_key": "short"}), format="json"
    )
    assert response.status_code == 400
    assert "config.routing_key" in response.json()["error"]["fields"]


def test_apprise_without_the_package_is_a_clear_config_error(crew, api):
    from incidents.notifications.channels import apprise

    if apprise.available():
        pytest.skip("apprise is installed")
    response = api(crew.manager).post(
        URL, body(crew, kind="apprise", config={"urls": ["tgram://x/y"]}), format="json"
    )
    assert response.status_code == 400
    assert "apprise package is not installed" in response.content.decode()


def test_managers_send_a_test_message(crew, api, receiver):
    channel = make_channel(crew.team, "slack", {"url": receiver.url})
    assert api(crew.responder).post(f"{URL}{channel.pk}/test/").status_code == 403
    response = api(crew.manager).post(f"{URL}{channel.pk}/test/")
    assert response.status_code == 200
    assert response.json()["status"] == "sent"
    assert len(receiver.requests) == 1
    assert "Test" in receiver.requests[0].json()["text"]


def test_changing_a_channel_keeps_team_and_kind(crew, api):
    channel = make_channel(crew.team, "slack", {"url": SLACK})
    url = f"{URL}{channel.pk}/"
    assert api(crew.manager).patch(url, {"enabled": False}, format="json").status_code == 200
    assert api(crew.manager).patch(url, {"kind": "teams"}, format="json").status_code == 400
    channel.refresh_from_db()
    assert (channel.enabled, channel.kind, channel.config) == (False, "slack", {"url": SLACK})


def test_contact_methods_and_rules_are_your_own(crew, api):
    client = api(crew.responder)
    response = client.post(
        "/api/v1/contact-methods/",
        {"kind": "email", "label": "work", "config": {"to": ["me@example.org"]}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert "config" not in response.json()
    method_id = response.json()["id"]
    rule = client.post(
        "/api/v1/notification-rules/",
        {"contact_method": method_id, "delay_minutes": 5, "urgency": "high"},
        format="json",
    )
    assert rule.status_code == 201, rule.content
    assert NotificationRule.objects.get().user == crew.responder
    # Others, even the team's manager, neither see nor use them.
    other = api(crew.manager)
    assert other.get(f"/api/v1/contact-methods/{method_id}/").status_code == 404
    assert other.get("/api/v1/notification-rules/").json()["results"] == []
    stolen = other.post("/api/v1/notification-rules/", {"contact_method": method_id}, format="json")
    assert stolen.status_code == 400
    assert ContactMethod.objects.count() == 1


def test_bad_contact_input_is_a_400(crew, api):
    client = api(crew.viewer)
    bad = client.post(
        "/api/v1/contact-methods/", {"kind": "email", "config": {"to": ["nope"]}}, format="json"
    )
    assert bad.status_code == 400
    assert "config.to.0" in bad.json()["error"]["fields"] or "config.to" in str(bad.json())
    method = ContactMethod.objects.create(user=crew.viewer, kind="email", config={"to": ["a@b.c"]})
    too_late = client.post(
        "/api/v1/notification-rules/",
        {"contact_method": method.pk, "delay_minutes": 99999},
        format="json",
    )
    assert too_late.status_code == 400


def test_deliveries_are_team_scoped(crew, api):
    incident = make_incident(crew.team)
    channel = make_channel(crew.team, "slack", {"url": SLACK})
    notify.notify_channel(channel, incident, dedup_key="d", event_kind="trigger")
    url = f"/api/v1/deliveries/?incident={incident.pk}"
    rows = api(crew.viewer).get(url).json()["results"]
    assert [r["subject"] for r in rows] == [f"[P3] #{incident.pk} Checkout is down (triggered)"]
    assert "topsecret" not in str(rows)
    assert api(crew.outsider).get(url).json()["results"] == []
    assert api(crew.viewer).get("/api/v1/deliveries/?incident=x").status_code == 400
    assert NotificationChannel.objects.count() == 1
