"""Signed, expiring, single-use action links ("Acknowledge" in a page's e-mail or SMS).

The token is a ``django.core.signing`` signature over (incident, action, user, nonce, expiry);
nothing is stored until the link is used, when its nonce goes into ``UsedActionLink`` (a unique
column: a second use, even a concurrent one, fails). Following the link shows a confirmation
page; only its POST acts, so mail scanners that prefetch links acknowledge nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from incidents.lifecycle import services
from incidents.models import Incident, UsedActionLink
from tocsin.permissions import Action, can
from tocsin.services import ServiceError

SALT = "incidents.action-link"
ACTIONS = ("acknowledge", "resolve")


class LinkError(Exception):
    """The link cannot be used; ``message`` says why in words for the person holding it."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class ActionLink:
    incident: Incident
    action: str
    user: Any
    nonce: str
    expires_at: datetime


def make_token(
    incident: Incident,
    action: str,
    user: Any,
    ttl: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    expires = int(((now or timezone.now()) + ttl).timestamp())
    data = {
        "i": incident.pk,
        "a": action,
        "u": user.pk,
        "n": secrets.token_urlsafe(12),
        "e": expires,
    }
    return signing.dumps(data, salt=SALT, compress=True)


def make_action_link(
    incident: Incident, action: str, user: Any, ttl: timedelta = timedelta(hours=24)
) -> str:
    """An absolute URL that lets ``user`` do ``action`` to ``incident`` without signing in."""
    path = reverse("incident_action_link", args=[make_token(incident, action, user, ttl)])
    return settings.TOCSIN_BASE_URL.rstrip("/") + path


def read(token: str, now: datetime | None = None) -> ActionLink:
    """Check signature and expiry and load what the link names (does not check use)."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise LinkError(
            "This link is not valid (it may have been cut short).", "bad_signature"
        ) from None
    now = now or timezone.now()
    expires_at = datetime.fromtimestamp(int(data["e"]), tz=UTC)
    if now.timestamp() >= int(data["e"]):
        raise LinkError("This link has expired. Open the incident in Tocsin instead.", "expired")
    if data.get("a") not in ACTIONS:
        raise LinkError("This link is not valid.", "bad_signature")
    incident = Incident.objects.select_related("service", "team").filter(pk=data["i"]).first()
    user = get_user_model().objects.filter(pk=data["u"], is_active=True).first()
    if incident is None or user is None:
        raise LinkError("This link no longer points at anything you can act on.", "gone")
    return ActionLink(incident, data["a"], user, str(data["n"]), expires_at)


def is_used(link: ActionLink) -> bool:
    return UsedActionLink.objects.filter(nonce=link.nonce).exists()


def use(token: str, now: datetime | None = None) -> ActionLink:
    """Do what the link says, as its user (``via="link"``), once."""
    link = read(token, now)
    if not can(link.user, Action.RESPOND, link.incident):
        raise LinkError("You may no longer respond to this incident.", "forbidden")
    try:
        with transaction.atomic():
            UsedActionLink.objects.create(
                nonce=link.nonce, incident=link.incident, user=link.user, action=link.action
            )
            if link.action == "acknowledge":
                services.acknowledge(link.incident, actor=link.user, via="link", now=now)
            else:
                services.resolve(link.incident, actor=link.user, via="link", now=now)
    except IntegrityError:
        raise LinkError("This link has already been used.", "used") from None
    except ServiceError as exc:
        raise LinkError(exc.message, exc.code) from None
    return link
