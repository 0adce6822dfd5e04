"""Each channel's payload shape, as a real HTTP receiver gets it."""

from __future__ import annotations

from incidents.notifications import outbox as notify
from tests.incidents.notify_support import make_channel, make_incident

LINKS = {"acknowledge": "https://t.example/ack", "resolve": "https://t.example/res"}


def send(crew, kind, config, event_kind="trigger", **incident):
    inc = make_incident(crew.team, **incident)
    channel = make_channel(crew.team, kind, config)
    notify.notify_channel(
        channel, inc, dedup_key=f"{kind}-{event_kind}", event_kind=event_kind, links=LINKS
    )
    assert notify.send_due_deliveries() == 1
    return inc


def test_slack_gets_text_blocks_and_buttons(crew, receiver):
    inc = send(crew, "slack", {"url": receiver.url})
    payload = receiver.requests[0].json()
    assert payload["text"].endswith("Checkout is down (triggered)")
    assert payload["blocks"][0]["type"] == "section"
    buttons = payload["blocks"][-1]["elements"]
    assert [b["url"] for b in buttons][1:] == list(LINKS.values())
    assert buttons[0]["url"].endswith(f"/incidents/{inc.pk}/") or str(inc.pk) in buttons[0]["url"]


def test_teams_gets_a_message_card(crew, receiver):
    send(crew, "teams", {"url": receiver.url})
    card = receiver.requests[0].json()
    assert card["@type"] == "MessageCard"
    assert card["@context"] == "https://schema.org/extensions"
    assert card["themeColor"] == "D13438"
    assert {"name": "Service", "value": "Checkout"} in card["sections"][0]["facts"]
    assert card["potentialAction"][1]["targets"][0]["uri"] == LINKS["acknowledge"]


def test_pagerduty_trigger_and_resolve_share_a_dedup_key(crew, receiver):
    receiver.codes = [202]
    key = "a" * 32
    inc = send(crew, "pagerduty", {"routing_key": key, "url": receiver.url}, priority="P1")
    trigger = receiver.requests[0].json()
    assert trigger["routing_key"] == key
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == f"tocsin-incident-{inc.pk}"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "Checkout"
    assert trigger["payload"]["summary"] == "Checkout is down"
    channel = inc.team.notification_channels.get()
    notify.notify_channel(channel, inc, dedup_key="pd-resolve", event_kind="resolve")
    notify.send_due_deliveries()
    resolve = receiver.requests[1].json()
    assert resolve == {
        "routing_key": key,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_generic_webhook_body(crew, receiver):
    inc = send(crew, "webhook", {"url": receiver.url, "secret": "x" * 16}, event_kind="acknowledge")
    body = receiver.requests[0].json()
    assert body["event"] == "acknowledge"
    assert body["incident"]["id"] == inc.pk
    assert body["incident"]["status"] == "triggered"
    assert body["links"] == LINKS
    assert receiver.requests[0].headers["X-Tocsin-Signature"].startswith("sha256=")
