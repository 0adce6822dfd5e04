"""The heartbeats pages in a real browser (Debian's chromium) against a real daphne server: they
fit a phone 390 px wide, and pausing from the list swaps the row in place (htmx)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from monitoring.models import Service
from probes.heartbeats import services
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, PingKind
from tests.live import WebServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

PHONE = {"width": 390, "height": 844}


def open_page(browser: Any, web: WebServer, user: Any, path: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport=PHONE, timezone_id="Europe/Paris")
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": web.session_cookie(user),
                "url": web.url,
            }
        ]
    )
    page = context.new_page()
    page.goto(web.url + path)
    return context, page


@pytest.fixture
def jobs(transactional_db: None, crew: Any) -> list[Heartbeat]:
    service = Service.objects.create(team=crew.team, name="Nightly jobs")
    made = []
    for number, name in enumerate(["Database backup to the offsite bucket", "Invoice export"]):
        # Due daily half a day from now: the runs below are on time whatever the hour of the
        # test run (a fixed "30 2 * * *" made them late from 02:30 to 05:30 UTC).
        cron = f"30 {(timezone.now().hour + 12) % 24} * * *"
        heartbeat = Heartbeat.objects.create(service=service, name=name, cron=cron)
        start = timezone.now() - timedelta(hours=3)
        for run in range(5):
            at = start + timedelta(minutes=20 * run)
            services.record_ping(heartbeat, services.PingData(kind=PingKind.START), now=at)
            heartbeat.refresh_from_db()
            services.record_ping(
                heartbeat,
                services.PingData(kind=PingKind.SUCCESS, exit_status=run % (2 + number)),
                now=at + timedelta(seconds=30 + 40 * run),
            )
            heartbeat.refresh_from_db()
        made.append(heartbeat)
    return made


def overflow(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_the_list_fits_a_phone_and_pausing_swaps_the_row(crew, jobs, web, browser):
    context, page = open_page(browser, web, crew.responder, "/probes/heartbeats/")
    try:
        page.wait_for_selector(f"#heartbeat-{jobs[0].pk}")
        page.screenshot(path=str(Path("/tmp/tocsin-heartbeats-390.png")), full_page=True)
        assert overflow(page) <= 0
        badges = page.locator("tbody tr .badge")
        assert [badges.nth(0).inner_text(), badges.nth(1).inner_text()] == ["down", "up"]

        page.locator(f"#heartbeat-{jobs[0].pk} button", has_text="Pause").click()
        page.wait_for_selector(f"#heartbeat-{jobs[0].pk} >> text=Resume")

        assert page.locator(f"#heartbeat-{jobs[0].pk} .badge").first.inner_text() == "paused"
        assert page.url.endswith("/probes/heartbeats/")  # swapped in place, no navigation
        assert Heartbeat.objects.get(pk=jobs[0].pk).status == HeartbeatStatus.PAUSED
    finally:
        context.close()


def test_a_heartbeats_page_fits_a_phone(crew, jobs, web, browser):
    context, page = open_page(browser, web, crew.viewer, f"/probes/heartbeats/{jobs[0].pk}/")
    try:
        page.wait_for_selector("#hb-crontab")
        page.screenshot(path=str(Path("/tmp/tocsin-heartbeat-390.png")), full_page=True)
        assert overflow(page) <= 0
        assert "/start;" in page.locator("#hb-crontab").inner_text()
        assert page.locator(".hb-run").count() == 5
    finally:
        context.close()
