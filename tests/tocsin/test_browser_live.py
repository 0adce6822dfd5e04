"""The live page in a real browser against a real daphne server.

Chromium (Debian's, driven by Playwright) opens /live/, the htmx ws extension connects, and
tocsin.js subscribes with the newest event id on the page. Events written by this test process
must appear within two seconds; events written while the browser is cut off must appear, once,
after it reconnects.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction

from monitoring.models import AlertStatus, Service
from monitoring.pipeline import AlertInput, process
from tests.conftest import declared_payload, team_test_event
from tests.live import ASYNC_UNSAFE, WebServer, free_port, start, wait_for, web_command
from tocsin.events import record

pytestmark = [pytest.mark.browser, pytest.mark.live]

SCREENSHOT_DIR = Path("/tmp")


def open_page(
    browser: Any, server: WebServer, user: Any, path: str = "/live/", **options: Any
) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **options)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": server.session_cookie(user),
                "url": server.url,
            }
        ]
    )
    page = context.new_page()
    page.goto(server.url + path)
    return context, page


def wait_connected(page: Any, timeout_ms: int = 10_000) -> None:
    page.wait_for_selector('#live-status[data-state="connected"]', timeout=timeout_ms)


def test_event_written_by_the_server_appears_within_two_seconds(
    transactional_db, crew, web, browser
):
    context, page = open_page(browser, web, crew.viewer, timezone_id="Asia/Kolkata")
    try:
        wait_connected(page)
        with transaction.atomic():
            event = record(
                "team.test",
                team=crew.team,
                subject=crew.team,
                payload=declared_payload("team.test", message="hello"),
            )
        row = page.locator(f'#live-events [data-event-id="{event.pk}"]')
        row.wait_for(timeout=2_000)
        assert "team.test" in row.inner_text()
        # The row's time is shown in the browser's zone, the UTC original kept as its title.
        local = event.created_at.astimezone(ZoneInfo("Asia/Kolkata"))
        shown = row.locator("time")
        assert shown.inner_text() == local.strftime("%Y-%m-%d %H:%M:%S")
        assert shown.get_attribute("title") == event.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert page.locator(".event-head [data-tz-label]").inner_text() == "GMT+5:30"
        with transaction.atomic():
            hidden = team_test_event(crew.other_team)
            after = team_test_event(crew.team)
        page.locator(f'[data-event-id="{after.pk}"]').wait_for(timeout=2_000)
        assert page.locator(f'[data-event-id="{hidden.pk}"]').count() == 0
        page.screenshot(path=str(SCREENSHOT_DIR / "tocsin-live.png"), full_page=True)
    finally:
        context.close()


def test_team_filter_subscribes_to_that_team_only(transactional_db, crew, web, browser):
    context, page = open_page(browser, web, crew.admin, "/live/?team=payments")
    try:
        wait_connected(page)
        with transaction.atomic():
            other = team_test_event(crew.other_team)
            mine = team_test_event(crew.team)
        page.locator(f'[data-event-id="{mine.pk}"]').wait_for(timeout=2_000)
        assert page.locator(f'[data-event-id="{other.pk}"]').count() == 0
    finally:
        context.close()


def test_events_missed_while_disconnected_are_replayed_exactly_once(
    transactional_db, crew, web, browser
):
    with transaction.atomic():
        before = team_test_event(crew.team)
    context, page = open_page(browser, web, crew.responder)
    try:
        wait_connected(page)
        assert page.locator(f'[data-event-id="{before.pk}"]').count() == 1
        # Cut the network, then drop the socket: the page cannot reconnect until we allow it.
        context.set_offline(True)
        page.evaluate("window.Tocsin.live.socket.close()")
        page.wait_for_selector('#live-status[data-state="reconnecting"]', timeout=5_000)
        with transaction.atomic():
            missed = team_test_event(crew.team, subject_label="missed")
        # Long enough for the page's first reconnection attempts to fail while offline.
        time.sleep(2.5)
        assert page.locator(f'[data-event-id="{missed.pk}"]').count() == 0
        assert page.locator("#live-status").get_attribute("data-state") == "reconnecting"
        context.set_offline(False)
        page.locator(f'[data-event-id="{missed.pk}"]').wait_for(timeout=15_000)
        wait_connected(page)
        with transaction.atomic():
            later = team_test_event(crew.team)
        page.locator(f'[data-event-id="{later.pk}"]').wait_for(timeout=2_000)
        ids = [
            int(i)
            for i in page.locator("#live-events [data-event-id]").evaluate_all(
                "rows => rows.map(r => r.dataset.eventId)"
            )
        ]
        assert ids.count(missed.pk) == 1
        assert ids.count(before.pk) == 1
        assert ids == sorted(ids, reverse=True)
    finally:
        context.close()


def test_page_says_signed_out_when_the_session_ends(transactional_db, crew, web, browser):
    from django.contrib.sessions.models import Session

    context, page = open_page(browser, web, crew.viewer)
    try:
        wait_connected(page)
        cookie = next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
        Session.objects.filter(session_key=cookie["value"]).delete()
        page.evaluate("window.Tocsin.live.socket.close()")
        page.wait_for_selector('#live-status[data-state="signed-out"]', timeout=10_000)
        notice = page.locator("#live-notice")
        assert "Log in again" in notice.inner_text()
        assert notice.locator("a").get_attribute("href") == "/accounts/login/?next=%2Flive%2F"
    finally:
        context.close()


def test_browser_reconnects_after_the_web_server_restarts(
    transactional_db, crew, browser, live_log_dir
):
    port = free_port()
    args = web_command(port)

    def serve() -> Any:
        proc = start(
            f"web-restart-{port}-{time.monotonic_ns()}",
            args,
            live_log_dir,
            **{ASYNC_UNSAFE: ""},  # an empty value keeps Django's async guard on in the server
        )
        import httpx

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_for(answers, 30, "the web server to answer", proc)
        return proc

    proc = serve()
    server = WebServer(proc, port)
    context, page = open_page(browser, server, crew.viewer)
    try:
        wait_connected(page)
        proc.stop(signal.SIGTERM)
        page.wait_for_selector('#live-status[data-state="reconnecting"]', timeout=10_000)
        with transaction.atomic():
            missed = team_test_event(crew.team)
        proc = serve()
        page.locator(f'[data-event-id="{missed.pk}"]').wait_for(timeout=30_000)
        wait_connected(page)
        assert page.locator(f'[data-event-id="{missed.pk}"]').count() == 1
    finally:
        context.close()
        proc.stop()


def test_screenshots_of_dashboard_and_team_page(transactional_db, crew, web, browser):
    # Alert events come from the pipeline (their subscribers open incidents from the alert).
    service = Service.objects.create(team=crew.team, name="Checkout API")
    for status in (AlertStatus.FIRING, AlertStatus.RESOLVED, AlertStatus.FIRING):
        labels = {"alertname": "HighLatency"}
        process(service, [AlertInput(labels=labels, status=status)], source="test")
    with transaction.atomic():
        team_test_event(crew.team)
    context, page = open_page(browser, web, crew.manager, "/")
    try:
        assert page.locator("h1").inner_text() == "Dashboard"
        page.screenshot(path=str(SCREENSHOT_DIR / "tocsin-dashboard.png"), full_page=True)
        page.goto(web.url + "/teams/payments/")
        assert re.search("Payments", page.locator("h1").inner_text())
        page.screenshot(path=str(SCREENSHOT_DIR / "tocsin-team.png"), full_page=True)
        page.goto(web.url + "/live/")
        wait_connected(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "tocsin-live-colours.png"), full_page=True)
    finally:
        context.close()
