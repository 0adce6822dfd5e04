"""Microsoft Teams incoming webhook: a legacy ``MessageCard`` (what Office 365 connectors and
Power Automate "post to a channel when a webhook request is received" flows both accept).
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
    post_json,
    register,
)

COLOURS = {"triggered": "D13438", "acknowledged": "F2C744", "resolved": "2EB886"}


class TeamsConfig(serializers.Serializer):
    url = HttpUrlField(help_text="The Teams webhook URL.")


def build_payload(message: Message) -> dict[str, Any]:
    incident = message.incident
    facts = [
        {"name": name, "value": str(incident[key])}
        for name, key in (
            ("Status", "status"),
            ("Priority", "priority"),
            ("Urgency", "urgency"),
            ("Service", "service"),
        )
        if incident.get(key)
    ]
    actions = [
        {"@type": "OpenUri", "name": name.title(), "targets": [{"os": "default", "uri": url}]}
        for name, url in [("open", incident.get("url", "")), *message.links.items()]
        if url
    ]
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": message.subject[:200],
        "themeColor": COLOURS.get(incident.get("status", ""), "0076D7"),
        "title": message.subject,
        "text": message.body.replace("\n", "<br>"),
        "sections": [{"facts": facts}] if facts else [],
        "potentialAction": actions,
    }


@register
class TeamsSender(Sender):
    kind = "teams"
    label = "Microsoft Teams (webhook)"
    menu_order = 30
    address_style = "url"
    config_serializer = TeamsConfig

    def send(self, message: Message) -> SendResult:
        body = json.dumps(build_payload(message)).encode()
        return post_json(self.config["url"], body, secrets=self.secrets())
