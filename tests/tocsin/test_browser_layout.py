"""The main pages in a real browser (Debian's chromium) against a real daphne server: the
navigation fits one row at 1280 px (and 1366 px), and no page scrolls sideways on a phone
390 px wide (issue #13, polish). Screenshots land in /tmp for a human look."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse

from incidents.escalation.engine import advance_escalations
from incidents.models import (
    EscalationPolicy,
    EscalationStep,
    Incident,
    Postmortem,
    ServiceIncidentSettings,
)
from incidents.notifications import outbox
from monitoring.models import Service
from monitoring.pipeline import AlertInput, process

pytestmark = [pytest.mark.browser, pytest.mark.live]

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1366, "height": 900}
LAPTOP = {"width": 1280, "height": 800}
LONG = "Checkout payments gateway for the European storefronts and their mobile applications"


@pytest.fixture
def busy(transactional_db: None, crew: Any) -> Incident:
    """A service with a long name, an incident with alerts, pages (one failed) and a postmortem."""
    service = Service.objects.create(team=crew.team, name=LONG)
    policy = EscalationPolicy.objects.create(team=crew.team, name="Default")
    EscalationStep.objects.create(
        policy=policy, position=0, user_ids=[crew.responder.pk, crew.manager.pk]
    )
    ServiceIncidentSettings.objects.update_or_create(
        service=service, defaults={"escalation_policy": policy}
    )
    labels = {
        "alertname": "HighLatencyOnTheCheckoutPaymentsEndpointForEuropeanCustomers",
        "instance": "checkout-payments-gateway-eu-west-1a.internal.example.org:9090",
    }
    process(service, [AlertInput(labels=labels, severity="critical")], source="test")
    incident = Incident.objects.get()
    advance_escalations()
    outbox.send_due_deliveries()  # the test settings' mail backend: sent
    Postmortem.objects.create(
        incident=incident,
        team=crew.team,
        summary="The **cache** was cold: " + "https://wiki.example.org/" + "x" * 120,
    )
    return incident


def open_page(browser: Any, web: Any, user: Any, viewport: dict[str, int]) -> tuple[Any, Any]:
    context = browser.new_context(viewport=viewport, timezone_id="Europe/Paris")
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": web.session_cookie(user), "url": web.url}]
    )
    return context, context.new_page()


def nav_rows(page: Any) -> int:
    """How many rows the header's items sit on: 1 when each overlaps the brand's band."""
    return page.evaluate(
        """() => {
          const brand = document.querySelector('.brand').getBoundingClientRect();
          const items = [...document.querySelectorAll('.site-nav > ul > li'),
                         document.querySelector('.user-menu')];
          const below = items.filter(el => el.getBoundingClientRect().top >= brand.bottom);
          return 1 + (below.length ? 1 : 0);
        }"""
    )


def main_pages(crew: Any, incident: Incident) -> list[str]:
    return [
        reverse("dashboard"),
        reverse("alerts"),
        reverse("services"),
        reverse("service", args=[crew.team.slug, incident.service.slug]),
        reverse("incidents"),
        incident.get_absolute_url(),
        reverse("postmortem", args=[incident.pk]),
        reverse("postmortems"),
        reverse("reports"),
        reverse("statuspages"),
        reverse("schedules"),
        reverse("probes"),
        reverse("slos"),
        reverse("backups"),
        reverse("databases"),
        reverse("silences"),
        reverse("maintenance"),
        reverse("teams"),
        reverse("team", args=[crew.team.slug]),
    ]


def test_the_navigation_is_one_row_on_a_laptop(crew: Any, busy: Incident, web: Any, browser: Any):
    for viewport in (LAPTOP, WIDE):
        context, page = open_page(browser, web, crew.admin, viewport)
        try:
            page.goto(web.url + busy.get_absolute_url())
            page.screenshot(path=f"/tmp/tocsin-incident-{viewport['width']}.png", full_page=True)
            assert nav_rows(page) == 1, f"the header wraps at {viewport['width']} px"
            # The current page's group is marked, and its menu opens on a click.
            group = page.locator(".nav-group[data-current] > summary")
            assert group.inner_text().strip() == "Incidents"
            group.click()
            link = page.locator('.nav-group[open] a[aria-current="page"]')
            assert link.inner_text() == "Incidents"
            page.keyboard.press("Escape")
            assert page.locator(".nav-group[open]").count() == 0
        finally:
            context.close()


def test_no_main_page_scrolls_sideways_on_a_phone(
    crew: Any, busy: Incident, web: Any, browser: Any
):
    context, page = open_page(browser, web, crew.admin, PHONE)
    wide = []
    try:
        for path in main_pages(crew, busy):
            response = page.goto(web.url + path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("load")
            name = path.strip("/").replace("/", "-") or "dashboard"
            page.screenshot(path=f"/tmp/tocsin-390-{name}.png", full_page=True)
            excess = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if excess > 0:
                wide.append((path, excess))
    finally:
        context.close()
    assert wide == []
