"""The page as Atlassian Statuspage's public API v2 shapes it (``/api/v2/summary.json`` and its
siblings), so tools written for Statuspage read a Tocsin page unchanged.

Ids are strings, as there; times are ISO 8601 in UTC. Groups are components with
``group: true`` and the ids of their members in ``components``; members carry ``group_id``.
Maintenance comes from maintenance windows (see ``incidents.statuspages.maintenance``), with the
statuses ``scheduled``, ``in_progress`` and ``completed`` and the impact ``maintenance``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from incidents.statuspages import maintenance
from incidents.statuspages.links import page_url
from incidents.statuspages.models import ComponentGroup, PublicIncident, PublicUpdate, StatusPage
from incidents.statuspages.snapshot import ComponentView, Snapshot, build

GROUP_ID_PREFIX = "g"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def page_json(snapshot: Snapshot) -> dict[str, Any]:
    page = snapshot.page
    return {
        "id": str(page.pk),
        "name": page.title,
        "url": page_url(page),
        "time_zone": page.time_zone,
        "updated_at": iso(snapshot.updated_at),
    }


def status_json(snapshot: Snapshot) -> dict[str, Any]:
    return {"indicator": snapshot.indicator, "description": snapshot.description}


def page_status_json(page: StatusPage) -> dict[str, Any]:
    """The page's id and overall status, as Statuspage's webhooks carry it."""
    snapshot = build(page, with_uptime=False)
    return {
        "id": str(page.pk),
        "status_indicator": snapshot.indicator,
        "status_description": snapshot.description,
    }


def component_json(view: ComponentView, page_id: int) -> dict[str, Any]:
    c = view.component
    return {
        "id": str(c.pk),
        "name": c.name,
        "status": view.status,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "position": c.position,
        "description": c.description or None,
        "showcase": c.show_uptime,
        "start_date": c.created_at.date().isoformat(),
        "group_id": f"{GROUP_ID_PREFIX}{c.group_id}" if c.group_id else None,
        "page_id": str(page_id),
        "group": False,
        "only_show_if_degraded": False,
    }


def group_json(group: ComponentGroup, members: list[ComponentView], status: str) -> dict[str, Any]:
    return {
        "id": f"{GROUP_ID_PREFIX}{group.pk}",
        "name": group.name,
        "status": status,
        "created_at": iso(group.created_at),
        "updated_at": iso(group.updated_at),
        "position": group.position,
        "description": group.description or None,
        "showcase": False,
        "start_date": None,
        "group_id": None,
        "page_id": str(group.page_id),
        "group": True,
        "only_show_if_degraded": False,
        "components": [str(m.id) for m in members],
    }


def components_json(snapshot: Snapshot) -> list[dict[str, Any]]:
    found = []
    for group_view in snapshot.groups:
        if group_view.group is not None:
            found.append(group_json(group_view.group, group_view.components, group_view.status))
        found += [component_json(v, snapshot.page.pk) for v in group_view.components]
    return found


def _component_ref(component: Any, status: str | None = None) -> dict[str, Any]:
    return {
        "id": str(component.pk),
        "name": component.name,
        "status": status or "operational",
        "created_at": iso(component.created_at),
        "updated_at": iso(component.updated_at),
        "position": component.position,
        "description": component.description or None,
        "showcase": component.show_uptime,
        "start_date": component.created_at.date().isoformat(),
        "group_id": f"{GROUP_ID_PREFIX}{component.group_id}" if component.group_id else None,
        "page_id": str(component.page_id),
        "group": False,
        "only_show_if_degraded": False,
    }


def update_json(update: PublicUpdate, incident_id: int) -> dict[str, Any]:
    return {
        "id": str(update.pk),
        "status": update.status,
        "body": update.body,
        "incident_id": str(incident_id),
        "created_at": iso(update.created_at),
        "updated_at": iso(update.created_at),
        "display_at": iso(update.created_at),
        "affected_components": None,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def incident_json(
    incident: PublicIncident,
    updates: list[PublicUpdate] | None = None,
    statuses: dict[int, str] | None = None,
) -> dict[str, Any]:
    updates = list(incident.updates.all()) if updates is None else updates
    statuses = statuses or {}
    return {
        "id": str(incident.pk),
        "name": incident.title,
        "status": incident.status,
        "created_at": iso(incident.created_at),
        "updated_at": iso(incident.updated_at),
        "monitoring_at": iso(incident.monitoring_at),
        "resolved_at": iso(incident.resolved_at),
        "impact": incident.impact,
        "shortlink": page_url(incident.page, f"incidents/{incident.pk}/"),
        "started_at": iso(incident.started_at),
        "page_id": str(incident.page_id),
        "incident_updates": [update_json(u, incident.pk) for u in updates],
        "components": [_component_ref(c, statuses.get(c.pk)) for c in incident.components.all()],
    }


def maintenance_json(occurrence: maintenance.Occurrence, page: StatusPage) -> dict[str, Any]:
    body = occurrence.note or occurrence.title
    update = {
        "id": f"{occurrence.id}-{occurrence.status}",
        "status": occurrence.status,
        "body": body,
        "incident_id": occurrence.id,
        "created_at": iso(occurrence.updated_at),
        "updated_at": iso(occurrence.updated_at),
        "display_at": iso(occurrence.updated_at),
        "affected_components": None,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }
    return {
        "id": occurrence.id,
        "name": occurrence.title,
        "status": occurrence.status,
        "created_at": iso(occurrence.created_at),
        "updated_at": iso(occurrence.updated_at),
        "monitoring_at": None,
        "resolved_at": iso(occurrence.ends_at) if occurrence.status == "completed" else None,
        "impact": "maintenance",
        "shortlink": page_url(page),
        "started_at": iso(occurrence.starts_at),
        "page_id": str(page.pk),
        "incident_updates": [update],
        "components": [_component_ref(c, "under_maintenance") for c in occurrence.components],
        "scheduled_for": iso(occurrence.starts_at),
        "scheduled_until": iso(occurrence.ends_at),
    }


def _statuses(snapshot: Snapshot) -> dict[int, str]:
    return {view.id: view.status for view in snapshot.components}


def summary(snapshot: Snapshot) -> dict[str, Any]:
    statuses = _statuses(snapshot)
    return {
        "page": page_json(snapshot),
        "components": components_json(snapshot),
        "incidents": [incident_json(i, None, statuses) for i in snapshot.incidents],
        "scheduled_maintenances": [maintenance_json(m, snapshot.page) for m in snapshot.upcoming],
        "status": status_json(snapshot),
    }


def incidents_json(snapshot: Snapshot, incidents: list[PublicIncident]) -> dict[str, Any]:
    statuses = _statuses(snapshot)
    return {
        "page": page_json(snapshot),
        "incidents": [incident_json(i, None, statuses) for i in incidents],
    }
