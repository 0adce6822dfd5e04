"""What a notification says: subject, text and links for one incident event, per channel kind."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch

from incidents.models import (
    Incident,
)

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
