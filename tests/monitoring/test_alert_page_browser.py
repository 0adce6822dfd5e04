"""The alert page in a real browser against a real daphne server: the connection indicator turns
"connected" and what the pipeline does to the alert (a new occurrence, resolution) shows without
a reload."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from monitoring.models import AlertStatus, Service
from monitoring.pipeline import AlertInput, process
from tests.tocsin.test_browser_live import open_page, wait_connected

pytestmark = [pytest.mark.browser, pytest.mark.live]

LABELS = {"alertname": "AlertPageLiveProbe"}


def send(service, status=AlertStatus.FIRING, **kw):
    item = AlertInput(labels=dict(LABELS), status=status, **kw)
    return process(service, [item], source="alertmanager")[0].alert


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def test_occurrences_and_resolution_show_without_reload(transactional_db, crew, web, browser):
    service = Service.objects.create(team=crew.team, name="Checkout API", slug="checkout-api")
    alert = send(service)
    context, page = open_page(browser, web, crew.viewer, reverse("alert", args=[alert.pk]))
    try:
        wait_connected(page)
        assert text_of(page, "[data-occurrences]") == "1 time, fired 1 time"
        page.evaluate("window.notReloaded = true")

        send(service, annotations={"summary": "p99 over 3 s"})  # new content: alert.updated
        # expect(), not wait_for_function: its string predicates need eval, which the
        # Content-Security-Policy refuses.
        expect = pytest.importorskip("playwright.sync_api").expect
        expect(page.locator("[data-occurrences]")).to_have_text(
            re.compile(r"^\s*2 times"), timeout=10_000
        )
        send(service, status=AlertStatus.RESOLVED)
        expect(page.locator("#alert-live .lead")).to_contain_text("resolved", timeout=10_000)
        assert page.locator('[data-history] tr[data-kind="alert.resolved"]').count() == 1
        assert page.evaluate("window.notReloaded") is True
        assert page.locator("#live-status").get_attribute("data-state") == "connected"
    finally:
        context.close()
