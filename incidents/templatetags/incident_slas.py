"""``{% sla_state incident as rows %}``: the incident's response targets for its page.

A tag rather than view context so the incident page and its live partial show the same thing
without the views knowing about SLAs; it reads only the incident's own columns (no query).
"""

from __future__ import annotations

from typing import Any

from django import template

from incidents.models import Incident
from incidents.slas import services as slas
from monitoring.views import since_text

register = template.Library()


@register.simple_tag
def sla_state(incident: Incident) -> list[dict[str, Any]]:
    from django.utils import timezone

    now = timezone.now()
    rows = slas.state(incident, now)
    for row in rows:
        left = row["seconds_left"]
        row["left"] = since_text(now, row["due_at"]) if left and left > 0 else ""
    return rows
