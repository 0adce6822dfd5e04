"""What a notification says: subject, text and links for one incident event, per channel kind.

A page's acknowledge/resolve links act as their recipient without signing in, so they are
*sealed*: the outbox row keeps the message with a placeholder where each link goes (what the
admin, the API and anyone reading the database see), the links themselves encrypted beside it
(``Delivery.sealed_links``), and the sender puts them back only into the copy it sends.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch

from incidents.models import (
    Incident,
)

# --- Sealed links -------------------------------------------------------------------------------


def placeholder(name: str) -> str:
    """What stands for the link ``name`` in a stored message."""
    return f"[{name.replace('_', ' ')} link — only in the recipient's copy]"


def seal(links: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(placeholders to render in the stored message, the links to keep encrypted)."""
    sealed = {name: href for name, href in (links or {}).items() if href}
    return {name: placeholder(name) for name in sealed}, sealed


def unseal(body: str, payload: dict[str, Any], sealed: dict[str, str]) -> tuple[str, dict]:
    """The recipient's copy: the stored message with its placeholders replaced by the links."""
    if not sealed:
        return body, payload
    stored = payload.get("links") or {}
    links = {name: sealed.get(name, href) for name, href in stored.items()}
    for name, href in sealed.items():
        body = body.replace(placeholder(name), href)
    return body, {**payload, "links": links}


def reseal(text: str, sealed: dict[str, str]) -> str:
    """``text`` (what a destination answered, say) with the sealed links back to placeholders."""
    for name, href in sealed.items():
        text = text.replace(href, placeholder(name))
    return text


# --- Rendering ----------------------------------------------------------------------------------


def incident_url(incident: Incident) -> str:
    try:
        path = incident.get_absolute_url()
    except NoReverseMatch:  # the incident pages are not routed (a trimmed URLconf)
        path = f"/incidents/{incident.pk}/"
    return getattr(settings, "TOCSIN_BASE_URL", "").rstrip("/") + path


def render(
    incident: Incident | None,
    *,
    event_kind: str = "trigger",
    reason: str = "",
    links: dict[str, str] | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """(subject, body, payload) for a notification about ``incident``."""
    links = {k: v for k, v in (links or {}).items() if v}
    if incident is None:
        subject = "[Tocsin] Test notification"
        body = reason or "This is a test message from Tocsin. If you can read it, it works."
        return subject, body, {"incident": {}, "links": links, "reason": reason}
    service = incident.service.name if incident.service_id else ""
    url = incident_url(incident)
    info = {
        "id": incident.pk,
        "key": f"tocsin-incident-{incident.pk}",
        "title": incident.title,
        "status": incident.status,
        "priority": incident.priority,
        "urgency": incident.urgency,
        "service": service,
        "team": incident.team.name if incident.team_id else "",
        "url": url,
    }
    subject = f"[{incident.priority}] #{incident.pk} {incident.title} ({incident.status})"[:300]
    lines = [
        incident.title,
        "",
        f"Status: {incident.get_status_display()}",
        f"Priority: {incident.get_priority_display()}",
        f"Urgency: {incident.get_urgency_display()}",
        f"Service: {service}",
    ]
    if reason:
        lines += ["", reason]
    lines += ["", f"Open: {url}"]
    lines += [f"{name.replace('_', ' ').title()}: {href}" for name, href in links.items()]
    payload = {"incident": info, "links": links, "reason": reason, "event": event_kind}
    return subject, "\n".join(lines), payload
