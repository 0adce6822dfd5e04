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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from rest_framework import serializers

from tocsin import outbound

__all__ = [
    "ConfigError",
    "Message",
    "SendResult",
    "Sender",
    "choices",
    "get_sender",
    "kinds",
    "post_json",
    "redact",
    "register",
    "sender_class",
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
    # Called by a sender right before its point of no return (an e-mail's end of data), after
    # which the destination may have the message even if we never hear back; the outbox marks
    # the delivery so that a crash after it never sends that message again. Raising aborts.
    on_handover: Callable[[], None] | None = None

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
    """One channel kind. Everything Tocsin knows about a kind is declared on its class."""

    kind: ClassVar[str]
    label: ClassVar[str]  # as offered in choices (model, forms, API schema)
    menu_order: ClassVar[int]  # position in those choices
    config_serializer: ClassVar[type[serializers.Serializer]]
    # Usable as a person's contact method (PagerDuty is a service integration, not a person).
    personal: ClassVar[bool] = True
    # What the one "address" field of the contact-method form holds: an email address, a URL
    # (the config's ``url``) or an Apprise URL (the config's ``urls``).
    address_style: ClassVar[str] = "email"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def send(self, message: Message) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def config_from_address(cls, address: str, secret: str = "") -> dict[str, Any]:
        """The config a personal contact method's form fields stand for."""
        if cls.address_style == "url":
            return {"url": address, **({"secret": secret} if cls.kind == "webhook" else {})}
        if cls.address_style == "apprise":
            return {"urls": [address]}
        return {"to": [address]}

    @classmethod
    def redacted(cls, config: dict[str, Any]) -> str:
        """Enough of the destination to recognise it, never enough to use it."""
        if cls.address_style == "url":
            parts = urlsplit(str(config.get("url", "")))
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            return f"{parts.scheme}://{host}/…" if host else "…"
        if cls.address_style == "apprise":
            # An Apprise URL's "host" is often the token itself: the scheme alone.
            return ", ".join(f"{urlsplit(str(u)).scheme}://…" for u in config.get("urls") or [])
        shown = []
        for address in config.get("to") or []:
            local, _, domain = str(address).partition("@")
            shown.append(f"{local[:1]}…@{domain}")
        return ", ".join(shown)

    def secrets(self) -> list[str]:
        """Config values that must be scrubbed from error texts."""
        return [str(v) for v in self.config.values() if isinstance(v, str) and len(v) >= 6]


_registry: dict[str, type[Sender]] = {}


def register(cls: type[Sender]) -> type[Sender]:
    _registry[cls.kind] = cls
    return cls


def kinds() -> list[str]:
    return sorted(_registry)


def sender_class(kind: str) -> type[Sender]:
    try:
        return _registry[kind]
    except KeyError:
        raise ConfigError(f"unknown channel kind {kind!r}") from None


def choices(*, personal_only: bool = False) -> list[tuple[str, str]]:
    """(kind, label) pairs in menu order: the model's choices derive from these."""
    ordered = sorted(_registry.values(), key=lambda cls: cls.menu_order)
    return [(cls.kind, cls.label) for cls in ordered if cls.personal or not personal_only]


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
        with outbound.client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=all_headers)
    except outbound.Refused as exc:
        # The address will not change its class on a retry: a permanent failure.
        return SendResult(ok=False, error=str(exc), retryable=False)
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
