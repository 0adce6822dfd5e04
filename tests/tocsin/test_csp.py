"""Content-Security-Policy on every page, and markup that needs no exception from it (#14).

A crawl from the dashboard (a manager, then a superuser through the admin) and the public status
page follows every same-site link it finds: each answer carries the policy, and no HTML answer
holds an inline script or an inline event handler. The templates are checked as files too, so a
page the crawl does not reach cannot bring one back.
"""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from django.test import Client, override_settings

from incidents.models import Incident
from tests.incidents.core_support import NOON, fire, make_service
from tests.incidents.status_support import make_page
from tocsin.csp import HEADER

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Links a crawl must not follow: they change state on GET in no view, but sign-out ends the crawl.
SKIP = re.compile(r"^/(accounts/logout|admin/logout)|/delete/$")
MAX_PAGES = 120


class Markup(HTMLParser):
    """The links, inline scripts and inline event handlers of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and not found.get("src") and found.get("type") != "application/json":
            self.inline_scripts += 1
        if tag == "a" and found.get("href"):
            self.links.append(found["href"])
        self.handlers += [name for name, _ in attrs if name.startswith(("on", "hx-on"))]


def directives(response) -> dict[str, str]:
    parts = [p.strip().split(" ", 1) for p in response[HEADER].split(";") if p.strip()]
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


def crawl(client: Client, *starts: str) -> dict[str, int]:
    """Visit every same-site link reachable from ``starts``; the status of each page."""
    seen: dict[str, int] = {}
    queue = deque(starts)
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response.status_code
        assert HEADER in response, f"{path} ({response.status_code}) has no {HEADER}"
        if not response["Content-Type"].startswith("text/html"):
            continue
        markup = Markup()
        markup.feed(response.content.decode())
        assert markup.inline_scripts == 0, f"{path} has an inline <script>"
        assert markup.handlers == [], f"{path} has inline handlers {markup.handlers}"
        for href in markup.links:
            url = urlsplit(urljoin(path, href))
            if url.netloc or url.scheme not in ("", "http", "https") or SKIP.search(url.path):
                continue
            queue.append(url.path + (f"?{url.query}" if url.query else ""))
    return seen


@pytest.fixture
def world(crew):
    service = make_service(crew)
    fire(service, NOON)
    return {"incident": Incident.objects.get(), "page": make_page(crew.team)}


@override_settings(ALLOWED_HOSTS=["tocsin.example.org"])
def test_the_policy_allows_only_tocsins_own_scripts_and_sockets(db, client):
    response = client.get("/accounts/login/", HTTP_HOST="tocsin.example.org")

    policy = directives(response)
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'self'"
    assert policy["form-action"] == "'self'"
    assert policy["connect-src"] == "'self' ws://tocsin.example.org wss://tocsin.example.org"
    # A Host Tocsin does not serve: refused, with the policy and no socket to that host.
    refused = client.get("/accounts/login/", HTTP_HOST="evil.example.net")
    assert refused.status_code == 400
    assert directives(refused)["connect-src"] == "'self'"


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_every_page_of_a_crawl_carries_the_policy_and_no_inline_script(crew, world, role):
    client = Client()
    client.force_login(crew.by_role(role))
    starts = ["/", f"/incidents/{world['incident'].pk}/", "/admin/"]

    seen = crawl(client, *starts)

    assert len(seen) > 30, seen  # it did crawl
    # /health answers 503 here (no worker runs): a finding of its own, not of this crawl.
    assert not [p for p, s in seen.items() if s >= 500 and not p.startswith("/health")], seen
    if role == "admin":
        assert any(p.startswith("/admin/incidents/delivery/") for p in seen), sorted(seen)


def test_public_pages_carry_the_policy(world):
    page = world["page"]
    seen = crawl(Client(), f"/status/{page.slug}/", "/accounts/login/", "/health/live")

    assert f"/status/{page.slug}/history/" in seen
    assert all(status < 500 for status in seen.values()), seen


def test_no_template_holds_an_inline_script_or_handler():
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for match in re.finditer(r"<script\b[^>]*>", text):
            if "src=" not in match.group(0):
                offenders.append(f"{template.relative_to(TEMPLATES)}: {match.group(0)}")
        for match in re.finditer(r"\s(hx-on[:\w-]*|on[a-z]+)=", text):
            offenders.append(f"{template.relative_to(TEMPLATES)}: {match.group(1)}=")
        # htmx runs trigger filters ([…]), js: values and hx-vars through eval.
        for match in re.finditer(r"hx-trigger=\"[^\"]*\[|hx-vals=.js:|hx-vars", text):
            offenders.append(f"{template.relative_to(TEMPLATES)}: {match.group(0)} (eval)")
        if "javascript:" in text:
            offenders.append(f"{template.relative_to(TEMPLATES)}: javascript: URL")
    assert offenders == []
