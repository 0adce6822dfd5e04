"""Slack incoming webhook: ``{"text": …, "blocks": […]}`` POSTed to the hook URL.

The URL is the secret (https://hooks.slack.com/services/T…/B…/…); it is encrypted at rest and
scrubbed from errors.
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


class SlackConfig(serializers.Serializer):
    url = HttpUrlField(help_text="The incoming webhook URL.")
    channel = serializers.CharField(required=False, allow_blank=True, max_length=80)


def build_payload(message: Message, config: dict[str, Any]) -> dict[str, Any]:
    incident = message.incident
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n{incident[key]}"}
        for name, key in (
            ("Status", "status"),
            ("Priority", "priority"),
            ("Service", "service"),
            ("Urgency", "urgency"),
        )
        if incident.get(key)
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{message.subject}*"}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": name.title()}, "url": url}
        for name, url in [("open", incident.get("url", "")), *message.links.items()]
        if url
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:5]})
    payload: dict[str, Any] = {"text": message.subject, "blocks": blocks}
    if config.get("channel"):
        payload["channel"] = config["channel"]
    return payload


@register
class SlackSender(Sender):
    kind = "slack"
    label = "Slack (incoming webhook)"
    menu_order = 20
    address_style = "url"
    config_serializer = SlackConfig

    def send(self, message: Message) -> SendResult:
        body = json.dumps(build_payload(message, self.config)).encode()
        return post_json(self.config["url"], body, secrets=self.secrets())
