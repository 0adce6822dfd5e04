"""Outbound notification channels: one module per kind, behind a registry (kind → sender class).

Each sender declares a DRF serializer that validates its config (``validate_config``) and a
``send(message)`` that makes one attempt and reports a ``SendResult``; retries, backoff, the
rate limit and the circuit breaker live in ``incidents.notifications.outbox``, not here. Adding a
channel is
one module in this folder plus its import at the bottom of this file.

Secrets in configs (URLs with tokens, routing keys, HMAC secrets) must never reach a log line
or an error message: build error texts with :func:`redact`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from django.conf import settings
from rest_framework import serializers

__all__ = [
    "ConfigError",
    "Message",
    "SendResult",
    "Sender",
    "get_sender",
    "kinds",
    "post_json",
    "redact",
    "register",
    "validate_config",
]

# httpx logs every request's full URL at INFO, and channel URLs carry tokens (Slack, Teams).
logging.getLogger("httpx").setLevel(logging.WARNING)

# Connect fast, read a bit longer: a slow receiver must not hold a worker for long.
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
EXCERPT_CHARS = 500


class ConfigError(ValueError):
    """The channel's config cannot be used (missing package, invalid stored config)."""


@dataclass
class Message:
    """What to say; each sender decides how to say it in its destination's format."""

    subject: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)
    event_kind: str = "trigger"
    dedup_key: str = ""
    # For senders that write to a person rather than a configured channel (account email).
    recipient_email: str = ""

    @property
    def incident(self) -> dict[str, Any]:
        return self.payload.get("incident") or {}

    @property
    def links(self) -> dict[str, str]:
        """Action links in a stable order: PostgreSQL's jsonb does not keep key order."""
        links = self.payload.get("links") or {}
        order = {name: i for i, name in enumerate(LINK_ORDER)}
        return dict(sorted(links.items(), key=lambda item: (order.get(item[0], 99), item[0])))


LINK_ORDER = ("acknowledge", "resolve")


@dataclass
class SendResult:
    ok: bool
    code: int | None = None
    excerpt: str = ""
    error: str = ""
    # False for errors a retry cannot fix (a 400 about our payload, a missing package).
    retryable: bool = True


class Sender:
    kind: ClassVar[str]
    label: ClassVar[str]
    config_serializer: ClassVar[type[serializers.Serializer]]

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def send(self, message: Message) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Config values that must be scrubbed from error texts."""
        return [str(v) for v in self.config.values() if isinstance(v, str) and len(v) >= 6]


_registry: dict[str, type[Sender]] = {}


def register(cls: type[Sender]) -> type[Sender]:
    _registry[cls.kind] = cls
    return cls


def kinds() -> list[str]:
    return sorted(_registry)


def get_sender(kind: str, config: dict[str, Any]) -> Sender:
    try:
        return _registry[kind](config)
    except KeyError:
        raise ConfigError(f"unknown channel kind {kind!r}") from None


def validate_config(kind: str, data: Any) -> dict[str, Any]:
    """The kind's validated config, or ``serializers.ValidationError`` (field → messages)."""
    cls = _registry.get(kind)
    if cls is None:
        raise serializers.ValidationError({"kind": [f"unknown channel kind {kind!r}"]})
    if not isinstance(data, dict):
        raise serializers.ValidationError({"config": ["must be a JSON object"]})
    serializer = cls.config_serializer(data=data)
    if not serializer.is_valid():
        raise serializers.ValidationError(serializer.errors)
    return dict(serializer.validated_data)


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def user_agent() -> str:
    return "Tocsin-Notifier/1.0"


def post_json(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    ok_codes: range = range(200, 300),
) -> SendResult:
    """One POST; 5xx, 408, 429 and network errors are retryable, other 4xx are not."""
    all_headers = {"Content-Type": "application/json", "User-Agent": user_agent()}
    all_headers.update(headers or {})
    scrub = [url, *(secrets or [])]
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=all_headers)
    except httpx.HTTPError as exc:
        # httpx errors may quote the URL; the URL carries the token.
        return SendResult(ok=False, error=redact(f"{type(exc).__name__}: {exc}", scrub))
    excerpt = redact(response.text[:EXCERPT_CHARS], scrub)
    if response.status_code in ok_codes:
        return SendResult(ok=True, code=response.status_code, excerpt=excerpt)
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    return SendResult(
        ok=False,
        code=response.status_code,
        excerpt=excerpt,
        error=f"HTTP {response.status_code}",
        retryable=retryable,
    )


def base_url() -> str:
    return getattr(settings, "TOCSIN_BASE_URL", "").rstrip("/")


class HttpUrlField(serializers.URLField):
    """http(s) only: no file://, no gopher:// to an internal service."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("must be an http(s) URL")
        return value


from incidents.notifications.channels import (  # noqa: E402  (the registry fills itself on import)
    apprise,
    email,
    pagerduty,
    slack,
    teams,
    webhook,
)

__all__ += ["apprise", "email", "pagerduty", "slack", "teams", "webhook"]
