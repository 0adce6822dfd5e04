"""SVG badges for READMEs and dashboards: the page's status, and uptime over 90 days (of the
page, or of one component with ``?component=<id>``). Flat, shields.io-like, no script, text
escaped; cached publicly for ``MAX_AGE`` seconds like the page itself."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.http import require_safe

from incidents.statuspages import snapshot, uptime
from incidents.statuspages.public import cache_headers, find_page

COLOURS = {
    "operational": "#2da44e",
    "degraded_performance": "#d4a72c",
    "partial_outage": "#e16f24",
    "major_outage": "#cf222e",
    "under_maintenance": "#0969da",
}
UPTIME_COLOURS = {
    "ok": "#2da44e",
    "minor": "#d4a72c",
    "major": "#e16f24",
    "critical": "#cf222e",
    "none": "#8c959f",
}


def _width(text: str) -> int:
    """Roughly the width of ``text`` in 11px Verdana, plus padding."""
    return int(len(text) * 6.6) + 12


def svg(label: str, value: str, colour: str) -> str:
    lw, vw = _width(label), _width(value)
    total = lw + vw
    label, value = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label}: {value}"><title>{label}: {value}</title>'
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        f'font-size="11"><text x="{lw / 2:.1f}" y="14">{label}</text>'
        f'<text x="{lw + vw / 2:.1f}" y="14">{value}</text></g></svg>'
    )


def _response(body: str, preview: bool) -> HttpResponse:
    response = HttpResponse(body, content_type="image/svg+xml; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return cache_headers(response, preview)


@require_safe
def status_badge(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    snap = snapshot.build(page, with_uptime=False)
    status = snap.status
    text = snapshot.S(status).label.lower()
    if status == "operational" and snap.indicator != "none":
        text, status = snap.description.lower(), "degraded_performance"
    return _response(svg("status", text, COLOURS[status]), preview)


@require_safe
def uptime_badge(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page, preview = find_page(request, slug)
    snap = snapshot.build(page)
    views = snap.components
    wanted = request.GET.get("component")
    if wanted is not None:
        # At most 18 digits: int() of 4,300+ digits raises (a 500, unauthenticated).
        known = wanted.isascii() and wanted.isdecimal() and len(wanted) <= 18
        views = [v for v in views if known and v.id == int(wanted)]
        if not views:
            raise Http404("no such component")
    good = sum(v.uptime.good for v in views if v.component.show_uptime)
    total = sum(v.uptime.total for v in views if v.component.show_uptime)
    pct = 100.0 * good / total if total else None
    colour = UPTIME_COLOURS[uptime.level_of(pct)]
    return _response(svg("uptime 90d", uptime.format_pct(pct), colour), preview)
