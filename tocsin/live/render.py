"""How an event looks on the wire: JSON for programs, an htmx out-of-band fragment for pages."""

from __future__ import annotations

import json
from typing import Any

from django.template.loader import render_to_string

from tocsin.models import Event

FORMATS = ("html", "json")


def event_as_dict(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "team": {"id": event.team_id, "slug": event.team.slug} if event.team_id else None,
        "kind": event.kind,
        "subject": {
            "type": event.subject_type,
            "id": event.subject_id,
            "label": event.subject_label,
        },
        "actor": {
            "id": event.actor_id,
            "label": event.actor_label,
        },
        "payload": event.payload,
    }


def render_event(event: Event, fmt: str) -> str:
    """Render once per event and format; the result is shared by every subscriber."""
    cache = event.__dict__.setdefault("_rendered", {})
    if fmt not in cache:
        if fmt == "json":
            cache[fmt] = json.dumps({"type": "event", "event": event_as_dict(event)})
        else:
            cache[fmt] = render_to_string("tocsin/_live_event_oob.html", {"event": event})
    return cache[fmt]


def render_notice(fmt: str, code: str, message: str) -> str:
    if fmt == "json":
        return json.dumps({"type": code, "message": message})
    return render_to_string("tocsin/_live_notice_oob.html", {"code": code, "message": message})
