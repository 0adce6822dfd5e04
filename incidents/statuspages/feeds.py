"""RSS 2.0 and Atom feeds of a page's public incidents (Cachet removed its feed; people missed
it). One entry per public incident, its latest update first in the text; an entry's id is the
incident's public address and its ``updated`` the last change, so readers show a new update as
a changed entry."""

from __future__ import annotations

from typing import Any

from django.contrib.syndication.views import Feed
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import linebreaksbr
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

from incidents.statuspages import snapshot
from incidents.statuspages.links import page_url
from incidents.statuspages.models import PublicIncident, StatusPage
from incidents.statuspages.public import cache_headers, find_page

ITEMS = 50


class IncidentsRss(Feed):
    feed_type = Rss201rev2Feed

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().__call__(request, *args, **kwargs)
        return cache_headers(response, getattr(request, "_status_preview", False))

    def get_object(self, request: HttpRequest, slug: str | None = None) -> StatusPage:
        page, preview = find_page(request, slug)
        request._status_preview = preview  # type: ignore[attr-defined]
        return page

    def title(self, page: StatusPage) -> str:
        return page.title

    def author_name(self, page: StatusPage) -> str:
        return page.title

    def link(self, page: StatusPage) -> str:
        return page_url(page)

    def feed_url(self, page: StatusPage) -> str:
        return page_url(page, "feed.atom" if self.feed_type is Atom1Feed else "feed.rss")

    def feed_guid(self, page: StatusPage) -> str:
        return page_url(page)

    def description(self, page: StatusPage) -> str:
        return page.description or f"Incidents and their updates on {page.title}."

    subtitle = description

    def items(self, page: StatusPage) -> list[PublicIncident]:
        found = list(snapshot.public_incidents(page)[:ITEMS])
        for incident in found:
            incident.page = page  # links need the page; no query per entry
        return found

    def item_title(self, incident: PublicIncident) -> str:
        return f"{incident.title} ({incident.get_status_display()})"

    def item_description(self, incident: PublicIncident) -> str:
        # Readers render a description (RSS) or an html summary (Atom) as HTML: the updates
        # are plain text, so they go out escaped, line breaks kept.
        lines = [
            f"{u.get_status_display()} ({u.created_at:%Y-%m-%d %H:%M} UTC): {u.body}"
            for u in incident.updates.all()
        ]
        return linebreaksbr("\n\n".join(lines) or incident.title, autoescape=True)

    def item_link(self, incident: PublicIncident) -> str:
        return page_url(incident.page, f"incidents/{incident.pk}/")

    def item_guid(self, incident: PublicIncident) -> str:
        return self.item_link(incident)

    item_guid_is_permalink = True

    def item_pubdate(self, incident: PublicIncident) -> Any:
        return incident.started_at

    def item_updateddate(self, incident: PublicIncident) -> Any:
        return incident.updated_at


class IncidentsAtom(IncidentsRss):
    feed_type = Atom1Feed


rss = IncidentsRss()
atom = IncidentsAtom()
