"""PagerDuty Events API v2 (outbound): mirror a Tocsin incident into a PagerDuty service.

trigger / acknowledge / resolve share one ``dedup_key`` per Tocsin incident, so PagerDuty
keeps one incident in step with ours. The routing (integration) key is the secret.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from incidents.notifications.channels import (
    HttpUrlField,
    Message,
    Sender,
    SendResult,
    base_url,
    post_json,
    register,
)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info", "P5": "info"}
ACTIONS = {"acknowledge": "acknowledge", "acknowledged": "acknowledge", "resolve": "resolve"}
ACTIONS["resolved"] = "resolve"


class PagerDutyConfig(serializers.Serializer):
    routing_key = serializers.RegexField(
        r"^[A-Za-z0-9]{32}$", error_messages={"invalid": "must be a 32-character integration key"}
    )
    # The EU region or a test receiver.
    url = HttpUrlField(required=False, default=EVENTS_URL)


def build_payload(message: Message, routing_key: str) -> dict[str, Any]:
    incident = message.incident
    action = ACTIONS.get(message.event_kind, "trigger")
    dedup = incident.get("key") or message.dedup_key
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup,
    }
    if action == "trigger":
        body["payload"] = {
            "summary": (incident.get("title") or message.subject)[:1024],
            "source": incident.get("service") or "tocsin",
            "severity": SEVERITY.get(incident.get("priority", ""), "error"),
            "custom_details": {
                k: incident.get(k) for k in ("status", "priority", "urgency", "service")
            },
        }
        body["client"] = "Tocsin"
        body["client_url"] = incident.get("url") or base_url()
        body["links"] = [
            {"href": url, "text": name.title()}
            for name, url in [("open in Tocsin", incident.get("url", "")), *message.links.items()]
            if url
        ]
    return body


@register
class PagerDutySender(Sender):
    kind = "pagerduty"
    label = "PagerDuty (Events API v2)"
    menu_order = 50
    personal = False  # a service integration, not a way to reach a person
    config_serializer = PagerDutyConfig

    def send(self, message: Message) -> SendResult:
        body = json.dumps(build_payload(message, self.config["routing_key"])).encode()
        url = self.config.get("url") or EVENTS_URL
        return post_json(url, body, secrets=[self.config["routing_key"]])
