"""The Content-Security-Policy in a real browser (Debian's chromium) against a real daphne server:
the pages work under it, with no violation reported, and the live WebSocket still connects.

Violations are collected in the page itself (``securitypolicyviolation`` events, listened to by
a script Playwright injects before any of the page's own) and from the console, where Chromium
reports each refused script, style, connection or eval.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from incidents.models import Incident
from incidents.postmortems import services as postmortems
from tests.incidents.core_support import NOON, fire, make_service
from tests.incidents.status_support import make_page
from tests.live import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(
    e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber
  );
});
"""


class Session:
    """One browser context with a user's session, recording every CSP complaint."""

    def __init__(self, browser: Any, web: Any, user: Any | None) -> None:
        self.web = web
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        if user is not None:
            cookie = web.session_cookie(user)
            self.context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": web.url}]
            )
        self.context.add_init_script(LISTEN)
        self.console: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.console.append(text)

    def visit(self, path: str) -> Any:
        response = self.page.goto(self.web.url + path)
        assert response is not None and response.status < 400, (path, response and response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        self.page.wait_for_load_state("networkidle")
        return response

    def violations(self) -> list[str]:
        return [*self.page.evaluate("window.__cspViolations"), *self.console]


@pytest.fixture
def incident(crew) -> Incident:
    fire(make_service(crew), NOON)
    return Incident.objects.get()


def test_pages_work_under_the_policy_and_the_live_socket_connects(
    transactional_db, crew, incident, web, browser
):
    status_page = make_page(crew.team)
    session = Session(browser, web, crew.admin)
    try:
        session.visit("/")
        session.page.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
        assert session.violations() == []

        session.visit(f"/incidents/{incident.pk}/")
        session.page.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
        assert session.violations() == []

        postmortems.create(incident, actor=crew.responder)
        session.visit(f"/incidents/{incident.pk}/postmortem/")  # live re-fetch, no filter eval
        assert session.page.locator("#action-items[data-hold-while-open]").count() == 1
        assert session.violations() == []

        # htmx's 400 answer is swapped in by static JS (no hx-on, which htmx would eval).
        session.visit("/silences/new/")
        session.page.fill("#id_matchers", "alertname=~(")
        session.page.wait_for_selector("#silence-preview .form-errors", timeout=5_000)
        assert session.violations() == []

        for path in (
            "/admin/",
            "/admin/incidents/incident/",
            f"/admin/incidents/incident/{incident.pk}/change/",
        ):
            session.visit(path)
        assert session.violations() == []
    finally:
        session.context.close()

    public = Session(browser, web, None)
    try:
        public.visit(f"/status/{status_page.slug}/")
        public.visit(f"/status/{status_page.slug}/history/")
        public.visit("/accounts/login/")
        assert public.violations() == []
    finally:
        public.context.close()


def test_an_inline_script_is_refused_and_reported(transactional_db, crew, web, browser):
    """The listener sees violations at all: a script injected into a page is refused."""
    session = Session(browser, web, crew.viewer)
    try:
        session.visit("/")
        session.page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.__ran = true"; document.body.appendChild(s); }"""
        )
        # Polled from here: wait_for_function would itself need eval, a violation of its own.
        wait_for(lambda: session.violations(), 5, "a violation report")
        assert session.page.evaluate("window.__ran === undefined")
        assert any(v.startswith("script-src") and " inline " in v for v in session.violations())
    finally:
        session.context.close()
