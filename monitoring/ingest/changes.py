"""Change events (deploys, config changes) reported for a service: stored, recorded, never paged.

They are context: the service page lists them next to the alerts that followed, and the
``change.received`` event (subject: the service) lets timelines show them too.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.models import ChangeEvent, Integration
from tocsin.events import record

# How long before an alert starts a change counts as "just before it" on the service page.
PRECEDING_WINDOW_MINUTES = 120


def store(integration: Integration, change: Any) -> ChangeEvent:
    """Store one parsed change (``events_v2.ParsedChange``) and record ``change.received``."""
    service = integration.service
    now = timezone.now()
    with transaction.atomic():
        row = ChangeEvent.objects.create(
            service=service,
            integration=integration,
            summary=change.summary,
            source=change.source,
            timestamp=change.timestamp or now,
            links=change.links,
            custom_details=change.custom_details,
            received_at=now,
        )
        record(
            "change.received",
            team=service.team_id,
            subject=service,
            actor_label=f"{integration.kind}: {integration.name}",
            payload={
                "change_id": row.pk,
                "service_id": service.pk,
                "service": service.name,
                "summary": row.summary,
                "source": row.source,
                "timestamp": row.timestamp.isoformat(),
                "links": row.links,
            },
        )
    return row
