"""Generic webhook: the notification as JSON, signed so the receiver knows it came from Tocsin.

Headers on every request::

    X-Tocsin-Timestamp: 1718000000                      (Unix seconds)
    X-Tocsin-Signature: sha256=<hex HMAC-SHA256>
    X-Tocsin-Delivery: <dedup key of the delivery>      (idempotency on the receiver)

The signature is HMAC-SHA256 with the channel's shared ``secret`` over
``timestamp + "." + raw_body`` (the exact bytes received). To verify, in Python::

    import hmac, hashlib, time
    ts = request.headers["X-Tocsin-Timestamp"]
    mac = hmac.new(secret.encode(), ts.encode() + b"." + raw_body, hashlib.sha256)
    expected = "sha256=" + mac.hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Tocsin-Signature"])
    fresh = abs(time.time() - int(ts)) < 300   # refuse replays older than five minutes

Compare with a constant-time function, and check the timestamp to refuse replays. Retries
re-sign with a new timestamp; deduplicate on ``X-Tocsin-Delivery``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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


class WebhookConfig(serializers.Serializer):
    url = HttpUrlField()
    secret = serializers.CharField(
        min_length=16, max_length=200, help_text="Shared secret for the HMAC signature."
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_payload(message: Message) -> dict[str, Any]:
    return {
        "event": message.event_kind,
        "subject": message.subject,
        "body": message.body,
        "incident": message.incident or None,
        "links": message.links,
        "reason": message.payload.get("reason", ""),
        "delivery": message.dedup_key,
    }


@register
class WebhookSender(Sender):
    kind = "webhook"
    label = "Generic webhook (HMAC-signed)"
    menu_order = 40
    address_style = "url"
    config_serializer = WebhookConfig

    def send(self, message: Message) -> SendResult:
        body = json.dumps(build_payload(message), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "X-Tocsin-Timestamp": timestamp,
            "X-Tocsin-Signature": sign(self.config["secret"], timestamp, body),
            "X-Tocsin-Delivery": message.dedup_key,
        }
        return post_json(self.config["url"], body, headers=headers, secrets=self.secrets())
