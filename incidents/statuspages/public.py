"""The public status page: no login, no JavaScript, one column that fits a phone.

A page is public once published; before that it answers 404 to everyone but the members of its
team, who see a preview (marked as such, never cached). On a custom domain the same views are
mounted at / (``incidents.statuspages.domains``), for published pages only.

Everything shown comes from ``snapshot.build`` and rows written for the public (components,
public incidents and updates, maintenance notices); internal incidents, alerts and services
are only ever used to derive a status colour.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from incidents.statuspages import maintenance, snapshot, subscribers, summary
from incidents.statuspages.links import page_path
from incidents.statuspages.models import StatusPage
from tocsin.permissions import Action, can
from tocsin.services import ServiceError

HISTORY_DAYS = 90
HISTORY_PAGE_SIZE = 20
MAX_AGE = 30  # seconds public caches may keep a page, its JSON, feeds and badges
# Subscriptions one client address may ask for per hour (each sends a confirmation mail).
SUBSCRIBE_PER_HOUR = 20


def find_page(request: HttpRequest, slug: str | None) -> tuple[StatusPage, bool]:
    """The page and whether this is a preview (unpublished, seen by its team)."""
    domain_slug = getattr(request, "status_page_slug", None)
    slug = slug or domain_slug
    # The logo (up to 256 KB) is read only by the logo view.
    page = StatusPage.objects.defer("logo").filter(slug=slug).first() if slug else None
    if page is None:
        raise Http404("no such status page")
    if page.published:
        return page, False
    if domain_slug is None and can(request.user, Action.VIEW, page):
        return page, True
    raise Http404("no such status page")


def base_path(request: HttpRequest, page: StatusPage) -> str:
    """Where this page's links start: / on its own domain, /status/<slug>/ elsewhere."""
    return "/" if getattr(request, "status_page_slug", None) else page_path(page)


def cache_headers(response: HttpResponse, preview: bool) -> HttpResponse:
    if preview:
        patch_cache_control(response, private=True, no_store=True)
        response["X-Robots-Tag"] = "noindex"
    else:
        patch_cache_control(response, public=True, max_age=MAX_AGE)
    return response


def _context(request: HttpRequest, page: StatusPage, preview: bool, **extra: Any) -> dict:
    return {
        "page": page,
        "preview": preview,
        "base": base_path(request, page),
        "time_zone": page.time_zone,
        **extra,
    }


@require_safe
def page_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    return _render_page(request, page, preview)


def _render_page(
    request: HttpRequest, page: StatusPage, preview: bool, status: int = 200, **extra: Any
) -> HttpResponse:
    snap = snapshot.build(page)
    context = _context(request, page, preview, snap=snap, **extra)
    response = render(request, "statuspages/page.html", context, status=status)
    return cache_headers(response, preview or status != 200)


@require_safe
def history_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    incidents = snapshot.public_incidents(page).filter(started_at__gte=since)
    paginator = Paginator(incidents, HISTORY_PAGE_SIZE)
    listing = paginator.get_page(request.GET.get("page"))
    context = _context(request, page, preview, listing=listing, days=HISTORY_DAYS)
    return cache_headers(render(request, "statuspages/history.html", context), preview)


@require_safe
def incident_view(request: HttpRequest, pk: int, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    incident = snapshot.public_incidents(page).filter(pk=pk).first()
    if incident is None:
        raise Http404("no such incident")
    context = _context(request, page, preview, incident=incident)
    return cache_headers(render(request, "statuspages/incident.html", context), preview)


@require_safe
def logo_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    if not page.logo:
        raise Http404("no logo")
    response = HttpResponse(bytes(page.logo), content_type=page.logo_type)
    response["Content-Security-Policy"] = "default-src 'none'"
    patch_cache_control(response, public=not preview, private=preview, max_age=300)
    return response


# --- subscribing (no cookies on public pages, so no CSRF token: double opt-in protects) -------


@csrf_exempt
@require_http_methods(["POST"])
def subscribe_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    key = f"statuspage-subscribe:{request.META.get('REMOTE_ADDR', '')}"
    if cache.get_or_set(key, 0, 3600) >= SUBSCRIBE_PER_HOUR:
        return _render_page(
            request, page, preview, 429, subscribe_error="Too many subscriptions; try later."
        )
    cache.incr(key)
    raw_ids = request.POST.getlist("component")
    # At most 18 digits: a primary key (Python refuses int() of 4,300+ digits: a 500).
    if not all(i.isascii() and i.isdecimal() and len(i) <= 18 for i in raw_ids):
        return _render_page(
            request, page, preview, 400, subscribe_error="choose components of this page"
        )
    try:
        subscribers.subscribe_email(
            page, request.POST.get("email", ""), component_ids=[int(i) for i in raw_ids]
        )
    except ServiceError as error:
        return _render_page(request, page, preview, 400, subscribe_error=error.message)
    on_its_way = (
        "If the address can receive mail, a link to confirm the subscription is on its way."
    )
    return _message(request, page, preview, "Check your inbox", on_its_way)


def _message(
    request: HttpRequest,
    page: StatusPage,
    preview: bool,
    title: str,
    message: str,
    status: int = 200,
) -> HttpResponse:
    """A short page with one message (subscription steps), never cached."""
    context = _context(request, page, preview, title=title, message=message)
    return cache_headers(render(request, "statuspages/message.html", context, status=status), True)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def confirm_view(request: HttpRequest, token: str, slug: str | None = None) -> HttpResponse:
    """GET asks (mail link scanners follow links: a GET that confirmed would defeat the double
    opt-in for subscriptions someone else started); POST, from the page's button, confirms.
    No CSRF token (public pages set no cookies): the signed token authorises the POST."""
    page, preview = find_page(request, slug)
    try:
        found = subscribers.subscriber_for(token, "confirm", subscribers.CONFIRM_MAX_AGE)
    except ServiceError as error:
        return _message(request, page, preview, "Not confirmed", error.message, status=400)
    if found.page_id != page.pk:
        raise Http404("no such subscription")
    if request.method != "POST":
        context = _context(request, page, preview, token=token)
        return cache_headers(render(request, "statuspages/confirm.html", context), True)
    try:
        subscribers.confirm(token)
    except ServiceError as error:
        return _message(request, page, preview, "Not confirmed", error.message, status=400)
    told = f"You will be told of incidents and maintenance on {page.title}."
    return _message(request, page, preview, "Subscribed", told)


def _page_of_token(request: HttpRequest, slug: str | None, token: str) -> tuple[StatusPage, bool]:
    try:
        subscriber = subscribers.subscriber_for(token, "leave")
    except ServiceError:
        return find_page(request, slug)
    if subscriber.page.slug != (slug or getattr(request, "status_page_slug", None)):
        return find_page(request, slug)
    if subscriber.page.published:
        return find_page(request, slug)
    return subscriber.page, True  # private now: answered like a preview (never cached)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HttpRequest, token: str, slug: str | None = None) -> HttpResponse:
    """GET asks (link scanners must not unsubscribe anyone); POST, from the page's button or a
    mail client's one-click ``List-Unsubscribe-Post``, unsubscribes. A valid token works on
    its page even after the page was taken private: leaving must always be possible."""
    page, preview = _page_of_token(request, slug, token)
    if request.method == "GET":
        try:
            subscribers.subscriber_for(token, "leave")
        except ServiceError as error:
            return _message(request, page, preview, "Unsubscribe", error.message)
        context = _context(request, page, preview, token=token)
        return cache_headers(render(request, "statuspages/unsubscribe.html", context), True)
    try:
        subscribers.unsubscribe(token)
    except ServiceError as error:
        return _message(request, page, preview, "Unsubscribe", error.message, status=400)
    return _message(
        request, page, preview, "Unsubscribed", "You will get no more mail about this page."
    )


# --- Statuspage-compatible JSON ----------------------------------------------------------------


def _json(data: dict[str, Any], preview: bool) -> JsonResponse:
    response = JsonResponse(data, json_dumps_params={"separators": (",", ":")})
    response["Access-Control-Allow-Origin"] = "*"
    return cache_headers(response, preview)


def _snapshot(request: HttpRequest, slug: str | None, uptime: bool = False) -> tuple[Any, bool]:
    page, preview = find_page(request, slug)
    return snapshot.build(page, with_uptime=uptime), preview


@require_safe
def summary_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    snap, preview = _snapshot(request, slug)
    return _json(summary.summary(snap), preview)


@require_safe
def status_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    snap, preview = _snapshot(request, slug)
    return _json({"page": summary.page_json(snap), "status": summary.status_json(snap)}, preview)


@require_safe
def components_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    snap, preview = _snapshot(request, slug)
    data = {"page": summary.page_json(snap), "components": summary.components_json(snap)}
    return _json(data, preview)


@require_safe
def incidents_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    """The 50 most recent public incidents, as Statuspage lists them."""
    snap, preview = _snapshot(request, slug)
    recent = list(snapshot.public_incidents(snap.page)[:50])
    for incident in recent:
        incident.page = snap.page
    return _json(summary.incidents_json(snap, recent), preview)


@require_safe
def unresolved_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    snap, preview = _snapshot(request, slug)
    return _json(summary.incidents_json(snap, snap.incidents), preview)


def _maintenances(request: HttpRequest, slug: str | None, which: str) -> JsonResponse:
    snap, preview = _snapshot(request, slug)
    found = snap.maintenances
    if which == "upcoming":
        found = [m for m in found if m.status == maintenance.SCHEDULED]
    elif which == "active":
        found = [m for m in found if m.status == maintenance.IN_PROGRESS]
    data = {
        "page": summary.page_json(snap),
        "scheduled_maintenances": [summary.maintenance_json(m, snap.page) for m in found],
    }
    return _json(data, preview)


@require_safe
def maintenances_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    return _maintenances(request, slug, "all")


@require_safe
def upcoming_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    return _maintenances(request, slug, "upcoming")


@require_safe
def active_json(request: HttpRequest, slug: str | None = None) -> JsonResponse:
    return _maintenances(request, slug, "active")
