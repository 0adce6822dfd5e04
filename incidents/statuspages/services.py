"""Status page configuration: the one way pages, groups and components are created, changed and
deleted (editor, API and admin all call these), each change recorded in the event log.

Validation is the models' own (``full_clean``: slug, colours, domain) plus what only a service
can check: a component's service and probe check belong to the page's team, its group to the
page; an uploaded logo is a real PNG, JPEG, GIF or WebP of modest size (never SVG: it could
carry script).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.statuspages.links import forget_domain, own_hosts
from incidents.statuspages.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    StatusPage,
)
from monitoring import availability
from monitoring.models import Service
from tocsin.events import record
from tocsin.services import ServiceError

PAGE_FIELDS = (
    "title",
    "slug",
    "description",
    "published",
    "logo_url",
    "brand_colour",
    "header_colour",
    "custom_domain",
    "time_zone",
    "support_url",
)
GROUP_FIELDS = ("name", "description", "position")
COMPONENT_FIELDS = (
    "name",
    "description",
    "position",
    "group",
    "service",
    "source_kind",
    "target_id",
    "show_uptime",
)
MAX_LOGO_BYTES = 256 * 1024
# Magic numbers of the image types a logo may be.
_LOGO_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

__all__ = [
    "clear_manual_status",
    "delete_component",
    "delete_group",
    "delete_page",
    "save_component",
    "save_group",
    "save_page",
    "set_logo",
    "set_manual_status",
]


# --- snapshots (what an event says about the object) -------------------------------------------


def page_snapshot(page: StatusPage) -> dict[str, Any]:
    data = {name: getattr(page, name) for name in PAGE_FIELDS}
    data["id"] = page.pk
    data["service_ids"] = sorted(s.pk for s in page.services.all()) if page.pk else []
    return data


def group_snapshot(group: ComponentGroup) -> dict[str, Any]:
    return {
        "id": group.pk,
        "page_id": group.page_id,
        **{f: getattr(group, f) for f in GROUP_FIELDS},
    }


def component_snapshot(component: Component) -> dict[str, Any]:
    return {
        "id": component.pk,
        "page_id": component.page_id,
        "name": component.name,
        "description": component.description,
        "position": component.position,
        "group_id": component.group_id,
        "service_id": component.service_id,
        "source_kind": component.source_kind,
        "target_id": component.target_id,
        "show_uptime": component.show_uptime,
        "manual_status": component.manual_status,
        "manual_until": component.manual_until.isoformat() if component.manual_until else None,
    }


def _validate(obj: Any, exclude: list[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as exc:
        field, errors = next(iter(exc.error_dict.items()))
        code = "duplicate" if errors[0].code == "unique" else "invalid"
        message = " ".join(errors[0].messages)
        raise ServiceError(message, None if field == "__all__" else field, code) from None


def _unknown(fields: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ServiceError("unknown field", unknown[0])


def _changes(obj: Any, changes: dict[str, Any]) -> dict[str, Any]:
    before = {}
    for name, value in changes.items():
        old = getattr(obj, name)
        if old != value:
            before[name] = [_plain(old), _plain(value)]
            setattr(obj, name, value)
    return before


def _plain(value: Any) -> Any:
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --- pages -------------------------------------------------------------------------------------


def save_page(
    page: StatusPage,
    *,
    actor: Any,
    services: list[Service] | None = None,
    **changes: Any,
) -> StatusPage:
    """Create (an unsaved ``page`` with its team) or change a page. ``services`` (when given)
    replaces the services whose incidents may be published here; each must be the team's."""
    _unknown(changes, PAGE_FIELDS)
    if "custom_domain" in changes:
        domain = (changes["custom_domain"] or "").strip().lower().rstrip(".")
        if domain in own_hosts():
            # The middleware serves Tocsin's own host as Tocsin, never as a page: say so
            # rather than accept a domain that would never show the page.
            raise ServiceError(
                "this is Tocsin's own address; a status page needs a domain of its own",
                "custom_domain",
            )
        changes["custom_domain"] = domain or None
    if "slug" in changes:
        changes["slug"] = (changes["slug"] or "").strip().lower()
    created = page._state.adding
    old_domain = page.custom_domain
    diff = _changes(page, changes)
    _check_time_zone(page.time_zone)
    if services is not None:
        for service in services:
            if service.team_id != page.team_id:
                raise ServiceError("this service belongs to another team", "services")
    _validate(page, exclude=["team", "created_by"])
    if page.published and page.published_at is None:
        page.published_at = timezone.now()
    if created and actor is not None and getattr(actor, "is_authenticated", False):
        page.created_by = actor
    page.updated_at = timezone.now()
    try:
        with transaction.atomic():
            page.save()
            if services is not None:
                old = set(page.services.values_list("pk", flat=True))
                page.services.set(services)
                new = {s.pk for s in services}
                if old != new:
                    diff["service_ids"] = [sorted(old), sorted(new)]
            if created or diff:
                payload = page_snapshot(page)
                if not created:
                    payload = {"changes": diff, **payload}
                kind = "status_page.created" if created else "status_page.updated"
                record(kind, team=page.team_id, subject=page, actor=actor, payload=payload)
            forget_domain(old_domain, page.custom_domain)  # now, and again once committed
            transaction.on_commit(lambda: forget_domain(old_domain, page.custom_domain))
    except IntegrityError:
        if StatusPage.objects.filter(slug=page.slug).exclude(pk=page.pk).exists():
            raise ServiceError("another status page has this slug", "slug", "duplicate") from None
        raise ServiceError(
            "another status page uses this domain", "custom_domain", "duplicate"
        ) from None
    return page


def _check_time_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(
            "unknown time zone (use a name like Europe/Berlin)", "time_zone"
        ) from None


def delete_page(page: StatusPage, *, actor: Any) -> None:
    with transaction.atomic():
        payload = page_snapshot(page)
        record("status_page.deleted", team=page.team_id, subject=page, actor=actor, payload=payload)
        domain = page.custom_domain
        page.delete()
        forget_domain(domain)
        transaction.on_commit(lambda: forget_domain(domain))


def logo_type(data: bytes) -> str:
    """The image type of ``data`` from its first bytes, or a ServiceError."""
    if len(data) > MAX_LOGO_BYTES:
        raise ServiceError(f"the logo is larger than {MAX_LOGO_BYTES // 1024} KB", "logo")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, content_type in _LOGO_TYPES:
        if data.startswith(magic):
            return content_type
    raise ServiceError("the logo must be a PNG, JPEG, GIF or WebP image", "logo")


def set_logo(page: StatusPage, data: bytes | None, *, actor: Any) -> StatusPage:
    """Upload (``data``) or remove (None) the page's logo."""
    content_type = logo_type(data) if data else ""
    with transaction.atomic():
        page.logo = data or None
        page.logo_type = content_type
        page.updated_at = timezone.now()
        page.save(update_fields=["logo", "logo_type", "updated_at"])
        payload = {"id": page.pk, "logo_type": content_type, "bytes": len(data or b"")}
        record(
            "status_page.logo_changed",
            team=page.team_id,
            subject=page,
            actor=actor,
            payload=payload,
        )
    return page


# --- groups ------------------------------------------------------------------------------------


def save_group(group: ComponentGroup, *, actor: Any, **changes: Any) -> ComponentGroup:
    _unknown(changes, GROUP_FIELDS)
    created = group._state.adding
    diff = _changes(group, changes)
    if not (group.name or "").strip():
        raise ServiceError("give the group a name", "name")
    _validate(group, exclude=["page"])
    group.updated_at = timezone.now()
    with transaction.atomic():
        group.save()
        if created or diff:
            kind = "status_group.created" if created else "status_group.updated"
            payload = group_snapshot(group) | ({} if created else {"changes": diff})
            record(kind, team=group.page.team_id, subject=group, actor=actor, payload=payload)
    return group


def delete_group(group: ComponentGroup, *, actor: Any) -> None:
    """The group's components stay, ungrouped."""
    with transaction.atomic():
        record(
            "status_group.deleted",
            team=group.page.team_id,
            subject=group,
            actor=actor,
            payload=group_snapshot(group),
        )
        group.delete()


# --- components --------------------------------------------------------------------------------


def _check_component(component: Component) -> None:
    page = component.page
    if component.group_id is not None and component.group.page_id != page.pk:
        raise ServiceError("this group belongs to another status page", "group")
    if component.service_id is not None and component.service.team_id != page.team_id:
        raise ServiceError("this service belongs to another team", "service")
    kind = component.source_kind or ""
    if not kind:
        if component.target_id is not None:
            raise ServiceError("say which kind of check this is", "source_kind")
        return
    source = availability.source(kind)
    if source is None:
        raise ServiceError(f"unknown kind of check: {kind}", "source_kind")
    if component.target_id is None:
        raise ServiceError("choose a check", "target_id")
    found = source.targets(target_ids=[component.target_id])
    if not found or found[0].team_id != page.team_id:
        raise ServiceError("no such check in this team", "target_id")


def save_component(component: Component, *, actor: Any, **changes: Any) -> Component:
    """Create (an unsaved ``component`` with its page) or change a component."""
    _unknown(changes, COMPONENT_FIELDS)
    created = component._state.adding
    if "source_kind" in changes:
        changes["source_kind"] = changes["source_kind"] or ""
    diff = _changes(component, changes)
    if not (component.name or "").strip():
        raise ServiceError("give the component a name", "name")
    _validate(component, exclude=["page", "group", "service"])
    _check_component(component)
    component.updated_at = timezone.now()
    with transaction.atomic():
        component.save()
        if created or diff:
            kind = "status_component.created" if created else "status_component.updated"
            payload = component_snapshot(component) | ({} if created else {"changes": diff})
            record(
                kind, team=component.page.team_id, subject=component, actor=actor, payload=payload
            )
    return component


def delete_component(component: Component, *, actor: Any) -> None:
    """Subscribers who followed this component alone go with it: with no component left they
    would otherwise follow every component, which they never asked for."""
    from django.db.models import Count

    from incidents.statuspages import subscribers
    from incidents.statuspages.models import StatusSubscriber

    with transaction.atomic():
        followers = component.subscribers.values("pk")
        alone = (
            StatusSubscriber.objects.filter(pk__in=followers)
            .annotate(following=Count("components"))
            .filter(following=1)
        )
        for subscriber in alone.select_related("page"):
            subscribers.remove(subscriber, actor=actor)
        record(
            "status_component.deleted",
            team=component.page.team_id,
            subject=component,
            actor=actor,
            payload=component_snapshot(component),
        )
        component.delete()


# How far ahead a manual status may be set to end: a year-9999 time west of UTC is year
# 10000 in UTC, which Python cannot hold (OverflowError) and PostgreSQL stores but psycopg
# cannot read back (the public page breaks).
MANUAL_UNTIL_YEARS = 10


def checked_until(until: datetime | None, now: datetime | None = None) -> datetime | None:
    """``until`` in UTC, or ``ServiceError`` (field "until") past ``MANUAL_UNTIL_YEARS``."""
    if until is None:
        return None
    now = now or timezone.now()
    if timezone.is_naive(until):
        until = timezone.make_aware(until, UTC)
    latest = now + timedelta(days=365 * MANUAL_UNTIL_YEARS + MANUAL_UNTIL_YEARS // 4 + 1)
    message = f"at most {MANUAL_UNTIL_YEARS} years ahead"
    try:
        utc = until.astimezone(UTC)
    except OverflowError:
        raise ServiceError(message, "until") from None
    if utc > latest:
        raise ServiceError(message, "until")
    return utc


def set_manual_status(
    component: Component, status: str, *, until: datetime | None = None, actor: Any
) -> Component:
    """Override the automatic status, until ``until`` (None: until cleared)."""
    if status not in ComponentStatus.values:
        raise ServiceError(f"choose one of: {', '.join(ComponentStatus.values)}", "status")
    now = timezone.now()
    until = checked_until(until, now)
    if until is not None and until <= now:
        raise ServiceError("the override must end in the future", "until")
    with transaction.atomic():
        component.manual_status = status
        component.manual_until = until
        component.updated_at = now
        component.save(update_fields=["manual_status", "manual_until", "updated_at"])
        record(
            "status_component.status_set",
            team=component.page.team_id,
            subject=component,
            actor=actor,
            payload=component_snapshot(component),
        )
    return component


def clear_manual_status(component: Component, *, actor: Any) -> Component:
    if not component.manual_status:
        return component
    with transaction.atomic():
        component.manual_status = ""
        component.manual_until = None
        component.updated_at = timezone.now()
        component.save(update_fields=["manual_status", "manual_until", "updated_at"])
        record(
            "status_component.status_cleared",
            team=component.page.team_id,
            subject=component,
            actor=actor,
            payload=component_snapshot(component),
        )
    return component
