"""The dashboard in a real browser against a real daphne server: the connection indicator turns
"connected", an alert processed by the pipeline makes the alerts and incidents tiles re-fetch
themselves (no reload), and at a phone's width the tiles stack without sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest

from monitoring.models import AlertStatus, Service
from monitoring.pipeline import AlertInput, process
from tests.tocsin.test_browser_live import open_page, wait_connected

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_tiles_follow_alerts_live(transactional_db, crew, web, browser):
    service = Service.objects.create(team=crew.team, name="Checkout API", slug="checkout-api")
    context, page = open_page(browser, web, crew.responder, "/")
    try:
        wait_connected(page)
        assert "Nothing firing" in page.locator("#tile-alerts").inner_text()
        labels = {"alertname": "DashboardLiveProbe"}
        process(service, [AlertInput(labels=labels, status=AlertStatus.FIRING)], source="test")
        # expect(), not wait_for_function: its string predicates need eval, which the
        # Content-Security-Policy refuses.
        expect = pytest.importorskip("playwright.sync_api").expect
        expect(page.locator("#tile-alerts")).to_contain_text("Checkout API", timeout=10_000)
        expect(page.locator("#tile-incidents")).to_contain_text(
            "DashboardLiveProbe", timeout=10_000
        )
        assert page.locator("#live-status").get_attribute("data-state") == "connected"
    finally:
        context.close()


def test_tiles_stack_on_a_phone_without_sideways_scrolling(transactional_db, crew, web, browser):
    service = Service.objects.create(team=crew.team, name="Checkout API", slug="checkout-api")
    long = "Checkout" * 20  # a label without spaces must wrap, not widen the page
    firing = AlertInput(labels={"alertname": long}, status=AlertStatus.FIRING)
    process(service, [firing], source="test")
    context, page = open_page(browser, web, crew.responder, "/")
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_load_state("load")
        excess = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert excess <= 0
        boxes: list[Any] = [
            page.locator(f"#tile-{name}").bounding_box() for name in ("incidents", "alerts")
        ]
        assert boxes[0]["x"] == boxes[1]["x"] and boxes[1]["y"] > boxes[0]["y"]  # stacked
    finally:
        context.close()
