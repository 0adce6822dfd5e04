"""Apprise URLs for the long tail (Telegram, Discord, Matrix, ntfy, Pushover, …).

Optional: needs the ``apprise`` package (``pip install tocsin[apprise]``). Without it, saving
such a channel is refused with a clear config error and sending fails without retries.
"""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import urlsplit

from rest_framework import serializers

from incidents.notifications.channels import Message, Sender, SendResult, register
from tocsin import outbound

MISSING = "the apprise package is not installed; install tocsin[apprise] to use Apprise URLs"


def available() -> bool:
    return importlib.util.find_spec("apprise") is not None


class AppriseConfig(serializers.Serializer):
    urls = serializers.ListField(
        child=serializers.CharField(max_length=2000), min_length=1, max_length=20
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not available():
            raise serializers.ValidationError(MISSING)
        import apprise as apprise_lib

        bad = [i for i, url in enumerate(data["urls"]) if apprise_lib.Apprise().add(url) is False]
        if bad:
            raise serializers.ValidationError(
                {"urls": [f"item {i}: not an Apprise URL it recognises" for i in bad]}
            )
        return data


@register
class AppriseSender(Sender):
    kind = "apprise"
    label = "Apprise URL"
    menu_order = 60
    address_style = "apprise"
    config_serializer = AppriseConfig

    def secrets(self) -> list[str]:
        return list(self.config.get("urls") or [])

    def send(self, message: Message) -> SendResult:
        if not available():
            return SendResult(ok=False, error=MISSING, retryable=False)
        import apprise as apprise_lib

        notifier = apprise_lib.Apprise()
        for url in self.config.get("urls") or []:
            refused = _refused(url)
            if refused:
                return SendResult(ok=False, error=refused, retryable=False)
            notifier.add(url)
        links = "\n".join(f"{k}: {v}" for k, v in message.links.items())
        ok = notifier.notify(title=message.subject, body=f"{message.body}\n{links}".strip())
        return SendResult(ok=bool(ok), error="" if ok else "apprise reported a failure")


def _refused(url: str) -> str:
    """The outbound guard's word on an Apprise URL's host, before Apprise connects anywhere.

    Apprise opens its own connections, so the address cannot be pinned: this is a check, not
    rebinding-proof (docs/security-outbound.md). Many Apprise "hosts" are tokens (``tgram://``,
    ``discord://``) that resolve to nothing; those go to the service's fixed public API.
    """
    host = urlsplit(url).hostname or ""
    if not host:
        return ""
    try:
        outbound.resolve(host)
    except outbound.Refused as exc:
        return str(exc)
    except OSError:
        return ""  # a token, not a host name
    return ""
