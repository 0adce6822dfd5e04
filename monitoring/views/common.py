"""What the monitoring pages share (incidents' pages use ``since_text`` and
``team_and_service_filter`` too, through ``monitoring.views``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from monitoring.models import Service
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


def team_and_service_filter(
    user: Any, data: dict[str, Any]
) -> tuple[list[Team], Team | None, list[Service], Service | None]:
    """The teams and services a list page offers as filters, and the ones picked (``team`` slug,
    ``service`` id in ``data``); a pick the user may not see is a 404, like an unknown one."""
    teams = list(teams_for(user, Action.VIEW).order_by("name"))
    selected_team = None
    if data.get("team"):
        selected_team = next((t for t in teams if t.slug == data["team"]), None)
        if selected_team is None:
            raise Http404("no such team")
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


# -- list pages (alerts, incidents, and the lists to come) ---------------------------------------
def paginate(queryset: QuerySet, data: dict[str, Any], page_size: int) -> Page:
    """The page a filtered list shows; a page past the last shows the last (no error page)."""
    return Paginator(queryset, page_size).get_page(data.get("page") or 1)


def list_links(url_name: str, filters: dict[str, Any], page: Page) -> dict[str, Any]:
    """Context every filtered list page shares: the active filters, the query string that
    keeps them (single values first, then repeated ones), and this page's own URL, which the
    live table re-fetches and the bulk forms return to."""
    single = [(key, value) for key, value in filters.items() if not isinstance(value, list)]
    repeated = [
        (key, v) for key, value in filters.items() if isinstance(value, list) for v in value
    ]
    query = urlencode([(key, value) for key, value in single if value] + repeated)
    page_query = query + (f"&page={page.number}" if page.number > 1 else "")
    return {
        "filters": filters,
        "page": page,
        "query": query,
        "page_query": page_query,
        "page_url": reverse(url_name) + (f"?{page_query}" if page_query else ""),
    }
