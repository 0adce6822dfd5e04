"""Posting to the public: incident updates and maintenance notices.

A responder posts a public update from the incident page: the first one creates the page's
public incident (with a public title, an impact and the components affected), later ones move
it along investigating → identified → monitoring → resolved (or back, if it flares up again).
Nothing of the internal incident is copied: the public sees what was written for it. Each post
is recorded in the event log (on the internal incident's timeline when there is one) and queued
for the page's confirmed subscribers of the affected components.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents.lifecycle.models import Incident
from incidents.statuspages import subscribers
from incidents.statuspages.models import (
    Component,
    MaintenanceNotice,
    PublicImpact,
    PublicIncident,
    PublicIncidentStatus,
    PublicUpdate,
    StatusPage,
)
from monitoring.models import MaintenanceWindow
from tocsin.events import record
from tocsin.services import ServiceError

MAX_BODY = 5000
MAX_TITLE = 200

__all__ = ["pages_for_incident", "post_update", "save_maintenance_notice"]


def pages_for_incident(incident: Incident) -> QuerySet[StatusPage]:
    """The pages an incident may be published on: its team's pages that cover its service
    (listed among the page's services, or mapped to one of its components)."""
    return (
        StatusPage.objects.filter(team_id=incident.team_id)
        .filter(Q(services=incident.service_id) | Q(components__service=incident.service_id))
        .distinct()
        .order_by("title", "id")
    )


def _clean_text(value: Any, field: str, limit: int, what: str) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        raise ServiceError(f"write {what}", field)
    if len(text) > limit:
        raise ServiceError(f"keep it under {limit} characters", field)
    return text


def _components(page: StatusPage, ids: Iterable[int] | None) -> list[Component] | None:
    if ids is None:
        return None
    wanted = {int(i) for i in ids}
    found = list(Component.objects.filter(page=page, pk__in=wanted))
    if len(found) != len(wanted):
        raise ServiceError("choose components of this status page", "components")
    return found


def post_update(
    page: StatusPage,
    *,
    actor: Any,
    status: str,
    body: str,
    incident: Incident | None = None,
    public_incident: PublicIncident | None = None,
    title: str | None = None,
    impact: str | None = None,
    component_ids: Iterable[int] | None = None,
) -> PublicUpdate:
    """Post one public update: on ``public_incident``, or on the page's public incident for
    ``incident`` (created by the first post), or on a new public incident of its own."""
    if status not in PublicIncidentStatus.values:
        raise ServiceError(f"choose one of: {', '.join(PublicIncidentStatus.values)}", "status")
    if impact is not None and impact not in PublicImpact.values:
        raise ServiceError(f"choose one of: {', '.join(PublicImpact.values)}", "impact")
    body = _clean_text(body, "body", MAX_BODY, "a message for the public")
    if incident is not None and incident.team_id != page.team_id:
        raise ServiceError("this incident belongs to another team", "incident")
    if incident is not None and not pages_for_incident(incident).filter(pk=page.pk).exists():
        raise ServiceError("this page does not cover the incident's service", "page")
    if public_incident is not None and public_incident.page_id != page.pk:
        raise ServiceError("this public incident is on another page", "public_incident")
    components = _components(page, component_ids)
    now = timezone.now()
    with transaction.atomic():
        if public_incident is None and incident is not None:
            public_incident = (
                PublicIncident.objects.select_for_update()
                .filter(page=page, incident=incident)
                .first()
            )
        created = public_incident is None
        if created:
            public_incident = PublicIncident(
                page=page,
                incident=incident,
                title=_clean_text(title, "title", MAX_TITLE, "a public title"),
                impact=impact or PublicImpact.MINOR,
                started_at=now,
            )
            if components is None and incident is not None:
                components = list(Component.objects.filter(page=page, service=incident.service_id))
        else:
            if title:
                public_incident.title = _clean_text(title, "title", MAX_TITLE, "a public title")
            if impact:
                public_incident.impact = impact
        public_incident.status = status
        if status == PublicIncidentStatus.MONITORING and public_incident.monitoring_at is None:
            public_incident.monitoring_at = now
        if status == PublicIncidentStatus.RESOLVED:
            public_incident.resolved_at = public_incident.resolved_at or now
        else:
            public_incident.resolved_at = None
        public_incident.updated_at = now
        public_incident.save()
        if components is not None:
            public_incident.components.set(components)
        update = PublicUpdate.objects.create(
            public_incident=public_incident,
            status=status,
            body=body,
            created_at=now,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        payload = {
            "page_id": page.pk,
            "page": page.title,
            "public_incident_id": public_incident.pk,
            "update_id": update.pk,
            "status": status,
            "title": public_incident.title,
            "text": body,
            "created": created,
        }
        if incident is None and public_incident.incident_id is not None:
            incident = public_incident.incident
        subject: dict[str, Any] = {"subject": public_incident}
        if incident is not None:
            subject = {"subject": incident}
        record(
            "status_page.update_posted", team=page.team_id, actor=actor, payload=payload, **subject
        )
        subscribers.notify_update(public_incident, update)
    return update


def save_maintenance_notice(
    page: StatusPage,
    window: MaintenanceWindow,
    *,
    actor: Any,
    title: str = "",
    note: str = "",
    hidden: bool = False,
    notify: bool = True,
) -> MaintenanceNotice:
    """Give a maintenance window a public title and note (or hide it) on this page; the page's
    subscribers are told when it is posted or its note changes (unless hidden)."""
    if window.service.team_id != page.team_id:
        raise ServiceError("this maintenance window belongs to another team", "window")
    title = (title or "").strip() or "Scheduled maintenance"
    if len(title) > MAX_TITLE:
        raise ServiceError(f"keep it under {MAX_TITLE} characters", "title")
    note = (note or "").strip()
    if len(note) > MAX_BODY:
        raise ServiceError(f"keep it under {MAX_BODY} characters", "note")
    with transaction.atomic():
        notice = MaintenanceNotice.objects.filter(page=page, window=window).first()
        created = notice is None
        if created:
            notice = MaintenanceNotice(page=page, window=window)
        changed = created or (notice.title, notice.note, notice.hidden) != (title, note, hidden)
        notice.title, notice.note, notice.hidden = title, note, hidden
        notice.updated_at = timezone.now()
        notice.save()
        if changed:
            kind = "status_maintenance.created" if created else "status_maintenance.updated"
            payload = {
                "id": notice.pk,
                "page_id": page.pk,
                "window_id": window.pk,
                "title": title,
                "note": note,
                "hidden": hidden,
            }
            record(kind, team=page.team_id, subject=notice, actor=actor, payload=payload)
            if notify and not hidden:
                subscribers.notify_maintenance(notice)
    return notice
