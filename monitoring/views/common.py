"""What the monitoring pages share (incidents' pages use ``since_text`` and
``team_and_service_filter`` too, through ``monitoring.views``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from monitoring.models import Service
from tocsin.keyset import CursorField as CursorField  # the list pages' filter forms use it
from tocsin.keyset import KeysetPage, capped_count, keyset_page
from tocsin.models import Team
from tocsin.permissions import Action, can, scope, teams_for


def since_text(moment: datetime | None, now: datetime) -> str:
    """ "42 s", "5 min", "3 h 20 min", "4 d": short enough for a table cell at 3 a.m."""
    if moment is None:
        return ""
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d"


def time_cell(moment: datetime, text: str, css: str = "") -> str:
    """A relative time the browser localises: what ``|date:'c'`` and ``|date:'Y-m-d H:i:s'``
    printed."""
    local = timezone.localtime(moment)
    return (
        f"<td{f' class={chr(34)}{css}{chr(34)}' if css else ''}>"
        f'<time datetime="{local.isoformat()}" data-local data-relative '
        f'title="{local.strftime("%Y-%m-%d %H:%M:%S")} UTC">{escape(text)}</time></td>'
    )


def service_or_404(
    request: HttpRequest, team_slug: str, service_slug: str, action: Action = Action.VIEW
) -> Service:
    service = (
        Service.objects.select_related("team")
        .filter(team__slug=team_slug, slug=service_slug)
        .first()
    )
    if service is None or not can(request.user, Action.VIEW, service):
        raise Http404("no such service")
    if not can(request.user, action, service):
        raise PermissionDenied(f"your role in {service.team} does not allow this")
    return service


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def team_filter(user: Any, slug: str | None) -> tuple[list[Team], Team | None]:
    """The teams a list page offers as a filter and the one picked by ``slug`` (if any); a
    team the user may not see is a 404, like an unknown one."""
    teams = list(teams_for(user, Action.VIEW).order_by("name"))
    selected_team = None
    if slug:
        selected_team = next((t for t in teams if t.slug == slug), None)
        if selected_team is None:
            raise Http404("no such team")
    return teams, selected_team


def team_and_service_filter(
    user: Any, data: dict[str, Any]
) -> tuple[list[Team], Team | None, list[Service], Service | None]:
    """The teams and services a list page offers as filters, and the ones picked (``team`` slug,
    ``service`` id in ``data``); a pick the user may not see is a 404, like an unknown one."""
    teams, selected_team = team_filter(user, data.get("team"))
    service_choices = scope(Service.objects.select_related("team"), user, Action.VIEW)
    if selected_team is not None:
        service_choices = service_choices.filter(team=selected_team)
    service_choices = list(service_choices.order_by("team__name", "name"))
    selected_service = None
    if data.get("service"):
        selected_service = next((s for s in service_choices if s.pk == data["service"]), None)
        if selected_service is None:
            raise Http404("no such service")
    return teams, selected_team, service_choices, selected_service


def attach_services(rows: list[Any], services: Iterable[Service]) -> None:
    """Give each row (an alert, an incident) its service and team from the filter's list of
    visible services (with their teams), already loaded for the page, instead of joining both
    to every row; a row of a service not in it (none, normally) fetches its own."""
    by_id = {service.pk: service for service in services}
    for row in rows:
        service = by_id.get(row.service_id)
        if service is not None and service.team_id == row.team_id:
            row.service, row.team = service, service.team


# -- list pages (alerts, incidents, and the lists to come) ---------------------------------------
def paginate(queryset: QuerySet, data: dict[str, Any], page_size: int, at_field: str) -> KeysetPage:
    """The page of a filtered newest-first list that ``data["cursor"]`` points at (the newest
    page without one), with ``count``/``count_text`` capped at ``COUNT_CAP`` ("1,000+").
    Two queries whatever the size of the table or the depth of the page."""
    page = keyset_page(queryset, at_field, page_size, data.get("cursor"))
    count, exact = capped_count(queryset)
    page.extra.update(
        count=count,
        count_text=f"{count:,}" + ("" if exact else "+"),
        count_capped=not exact,
        cursor=data["cursor"].encode() if data.get("cursor") else "",
        next_cursor=page.next.encode() if page.next else "",
        previous_cursor=page.previous.encode() if page.previous else "",
    )
    return page


def list_links(url_name: str, filters: dict[str, Any], page: KeysetPage) -> dict[str, Any]:
    """Context every filtered list page shares: the active filters, the query string that
    keeps them (single values first, then repeated ones), and this page's own URL, which the
    live table re-fetches and the bulk forms return to."""
    single = [(key, value) for key, value in filters.items() if not isinstance(value, list)]
    repeated = [
        (key, v) for key, value in filters.items() if isinstance(value, list) for v in value
    ]
    query = urlencode([(key, value) for key, value in single if value] + repeated)

    def with_cursor(token: str) -> str:
        return "&".join(part for part in (query, f"cursor={token}" if token else "") if part)

    page_query = with_cursor(page.extra["cursor"])
    base = reverse(url_name)
    return {
        "filters": filters,
        "page": page,
        "query": query,
        "page_query": page_query,
        "page_url": base + (f"?{page_query}" if page_query else ""),
        "newer_url": base + "?" + with_cursor(page.extra["previous_cursor"])
        if page.previous
        else "",
        "older_url": base + "?" + with_cursor(page.extra["next_cursor"]) if page.next else "",
        "newest_url": base + (f"?{query}" if query else ""),
    }
