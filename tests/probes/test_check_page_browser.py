"""The probes pages in a real browser (Debian's chromium) against a real daphne server: they fit a
phone 390 px wide; the grid turns a check down by itself when its alert fires (live stream);
pausing swaps the row in place; a check page draws its latency charts and tests a
configuration in place (htmx)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.models import Service
from probes.checks import rollups, services
from probes.checks.models import Check, Rollup
from probes.checks.points import Point
from tests.probes import test_check_target as support
from tests.probes.test_heartbeat_page_browser import open_page, overflow

pytestmark = [pytest.mark.browser, pytest.mark.live]

target = support.target  # fixture


def run_now(check: Check) -> None:
    """``services.run_now`` runs its own event loop: not on this thread, where Playwright's
    runs."""

    def run() -> None:
        try:
            services.run_now(Check.objects.get(pk=check.pk))
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


@pytest.fixture
def checks(transactional_db: None, crew: Any, target: Any) -> list[Check]:
    service = Service.objects.create(team=crew.team, name="Storefront and checkout")
    made = []
    for name, path in [
        ("Checkout API behind the load balancer", "/api/v2/checkout/health?region=eu-west-1"),
        ("Front page", "/"),
    ]:
        check = services.create_check(
            service=service,
            name=name,
            kind="http",
            config={"url": target.url(path)},
            interval=60,
            timeout=2.0,
            failure_threshold=1,
        )
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        Rollup.objects.bulk_create(
            Rollup(
                probe=check,
                day=(today - timedelta(days=n)).date(),
                up=100 - (n % 9 == 0) * 3,
                down=(n % 9 == 0) * 3,
                p50=40 + n % 7,
                p95=120 + n % 11,
                p99=300 + n % 13,
            )
            for n in range(1, 90)
        )
        rollups.store_hours(
            {
                (check.pk, today - timedelta(hours=n)): Point(
                    up=100 - (n % 9 == 0) * 3,
                    down=(n % 9 == 0) * 3,
                    p50=40 + n % 7,
                    p95=120 + n % 11,
                    p99=300 + n % 13,
                )
                for n in range(-(timezone.now().hour), 48)
            }
        )
        run_now(check)
        made.append(Check.objects.get(pk=check.pk))
    return made


def badge(page: Any, check: Check) -> str:
    return page.locator(f"#check-{check.pk} .badge").first.inner_text()


def test_the_grid_fits_a_phone_and_a_check_going_down_shows_up_live(
    crew, checks, target, web, browser
):
    context, page = open_page(browser, web, crew.viewer, "/probes/")
    try:
        page.wait_for_selector(f"#check-{checks[0].pk}")
        page.wait_for_selector("#live-status[data-state='connected']", timeout=15_000)
        page.screenshot(path=str(Path("/tmp/tocsin-probes-390.png")), full_page=True)
        assert overflow(page) <= 0
        assert badge(page, checks[0]) == "up"
        widths = page.locator(f"#check-{checks[0].pk} .ck-uptime li").evaluate_all(
            "bars => bars.reduce((days, bar) => days + Number(bar.style.flexGrow), 0)"
        )
        assert widths == 90

        target.set(503, "down for maintenance")
        run_now(checks[0])  # the alert fires: an event on the live stream

        # expect(), not wait_for_function: its string predicates need eval, which the
        # Content-Security-Policy refuses.
        expect = pytest.importorskip("playwright.sync_api").expect
        expect(page.locator(f"#check-{checks[0].pk} .badge")).to_have_text("down", timeout=15_000)
        assert "HTTP 503" in page.locator(f"#check-{checks[0].pk}").inner_text() or (
            "503" in page.locator(f"#check-{checks[0].pk}").inner_text()
        )
        assert page.url.endswith("/probes/")  # refreshed in place
    finally:
        context.close()


def test_pausing_from_the_grid_swaps_the_row(crew, checks, web, browser):
    context, page = open_page(browser, web, crew.responder, "/probes/")
    try:
        row = f"#check-{checks[1].pk}"
        page.wait_for_selector(row)
        page.locator(f"{row} button", has_text="Pause").click()
        page.wait_for_selector(f"{row} >> text=Resume")

        assert badge(page, checks[1]) == "paused"
        assert page.url.endswith("/probes/")
        assert Check.objects.get(pk=checks[1].pk).paused is True
        assert overflow(page) <= 0
    finally:
        context.close()


def test_a_check_page_fits_a_phone_draws_its_charts_and_tests_a_configuration(
    crew, checks, web, browser
):
    context, page = open_page(browser, web, crew.manager, f"/probes/checks/{checks[0].pk}/")
    try:
        page.wait_for_selector("[data-chart='hourly'] canvas")
        assert page.locator(".uplot").count() == 2
        page.screenshot(path=str(Path("/tmp/tocsin-check-390.png")), full_page=True)
        assert overflow(page) <= 0

        page.fill("#id_conditions", "[STATUS] == 200\n[BODY] == ok")
        page.click("text=Run this configuration")
        page.wait_for_selector("#test-result-heading")

        assert "up" in page.locator("#test-result-heading").inner_text()
        assert page.url.endswith(f"/probes/checks/{checks[0].pk}/")
        assert Check.objects.get(pk=checks[0].pk).conditions == []  # nothing saved
        assert overflow(page) <= 0
    finally:
        context.close()
