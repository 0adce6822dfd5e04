"""README's "A 5-minute tour", steps 2, 3, 5 and 6, in a real browser as written (issue #13).

A fresh database with only the administrator that ``bootstrap`` (``make run``) creates from
``TOCSIN_ADMIN_EMAIL``; a real daphne web server and a real worker, both pointed at an aiosmtpd
SMTP server on 127.0.0.1; Debian's chromium driven by Playwright. Everything is set up through
the UI and the admin, with the button and link names the README uses, the shipped Alertmanager
fixture is posted to the ingest URL the service page shows (as the README's curl does), and the
page e-mail's signed link acknowledges the incident without logging in.
"""

from __future__ import annotations

import io
import json
import re
import signal
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message as MailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from incidents.models import Incident, IncidentStatus, NotificationRule
from tests.incidents.notify_support import Smtp, smtp_server
from tests.live import (
    ASYNC_UNSAFE,
    Proc,
    WebServer,
    free_port,
    start,
    start_worker,
    wait_for,
    wait_until_serving,
    web_command,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager-webhook-v4.json"
ADMIN_EMAIL = "ops@example.org"
ADMIN_PASSWORD = "tour-pass-0123456789"
TIMEOUT_MS = 15_000


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def fresh_install(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What step 1 (``make run``) leaves: an empty database with one administrator."""
    monkeypatch.setenv("TOCSIN_ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD", ADMIN_PASSWORD)
    out = io.StringIO()
    call_command("bootstrap", "--no-static", stdout=out)
    assert f"administrator created: ops <{ADMIN_EMAIL}>" in out.getvalue()
    (admin,) = get_user_model().objects.all()
    return admin


@pytest.fixture
def tour(
    fresh_install: Any, smtp: Smtp, browser: Any, live_log_dir: Path
) -> Iterator[tuple[WebServer, Proc]]:
    """This test's own web server and worker, knowing their URL (for the links they write) and
    the SMTP server. The Django async guard stays on in them (the browser fixture lifts it in
    this process only)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"TOCSIN_BASE_URL": url, ASYNC_UNSAFE: "", **smtp.env()}
    args = web_command(port)
    web = start(f"web-tour-{port}", args, live_log_dir, **env)
    worker = None
    try:
        wait_until_serving(web, port)
        worker = start_worker(live_log_dir, name=f"worker-tour-{port}", **env)
        yield WebServer(web, port), worker
    finally:
        for proc in (worker, web):
            if proc is not None:
                proc.stop(signal.SIGINT, timeout=10)


def body_of(message: MailMessage) -> str:
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def nav_menu(page: Any, group: str, item: str) -> None:
    """Open a navigation group (a <details>) and follow one of its links."""
    page.locator("nav summary", has_text=group).click()
    page.locator("nav details[open]").get_by_role("link", name=item, exact=True).click()


def save_admin_form(page: Any) -> None:
    with page.expect_navigation():
        page.locator("input[type=submit][name=_save]").click()
    errors = page.locator(".errornote, .errorlist")
    assert errors.count() == 0, errors.all_inner_texts()


def test_the_readme_tour_pages_and_the_mail_link_acknowledges(tour, smtp, browser):
    web, worker = tour
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        # 2. Sign in with the administrator's e-mail address: the home page is the dashboard.
        page.goto(web.url + "/")
        page.get_by_label("E-mail or username").fill(ADMIN_EMAIL)
        page.locator("input[name=password]").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url + "/")
        assert page.locator("h1").inner_text() == "Dashboard"

        # 3. Admin → Teams → Add team, with a member (you) and a role.
        page.get_by_role("link", name="Admin", exact=True).click()
        page.locator("#content-main").get_by_role("link", name="Teams", exact=True).click()
        page.get_by_role("link", name="Add team").click()
        page.locator("#id_name").fill("Payments")
        user = page.locator("select[name$='-0-user']")
        user.locator("xpath=following-sibling::span[contains(@class,'select2')][1]").click()
        page.locator(".select2-search__field").fill("ops")
        page.locator(".select2-results__option", has_text="ops").first.click()
        page.locator("select[name$='-0-role']").select_option("responder")
        save_admin_form(page)
        assert "Payments" in page.locator(".messagelist").inner_text()

        # 5. Services → New service, then Add integration (Alertmanager).
        page.goto(web.url + "/")
        nav_menu(page, "Alerts", "Services")
        page.get_by_label("Team").select_option(label="Payments")
        page.get_by_label("Name").fill("Checkout API")
        page.get_by_role("button", name="Create service").click()
        page.wait_for_selector("h1:has-text('Checkout API')")
        service_url = page.url
        add = page.locator("form", has=page.get_by_role("button", name="Create integration"))
        add.get_by_label("Kind").select_option("alertmanager")
        add.get_by_role("button", name="Create integration").click()
        snippet = page.locator("details.setup[open] pre").first.inner_text()
        ingest = re.search(r'url: "([^"]+)"', snippet)
        assert ingest, snippet
        ingest_url = ingest.group(1)
        assert ingest_url.startswith(f"{web.url}/ingest/alertmanager/")
        key = page.locator("#new-key-value").input_value()
        assert key and ingest_url.rstrip("/").endswith(key)

        # The alert appears on Alerts without a reload.
        nav_menu(page, "Alerts", "Alerts")
        page.wait_for_selector('#live-status[data-state="connected"]')
        page.evaluate("window.tourMarker = 'no reload'")
        body = json.loads(FIXTURE.read_text())
        posted = httpx.post(ingest_url, json=body, timeout=30)
        assert posted.status_code == 200, posted.text
        row = page.locator("table tr", has_text="Probe failure: https://api.example.org")
        row.wait_for()
        assert "Checkout API" in row.inner_text()
        assert page.evaluate("window.tourMarker") == "no reload"

        # 6. Notifications (user menu): a contact method and a rule.
        page.locator("details.user-menu summary").click()
        page.get_by_role("link", name="Notifications", exact=True).click()
        methods = page.locator("#method-form")
        methods.get_by_label("Kind").select_option("email")
        methods.get_by_label("Label").fill("work mail")
        methods.get_by_label("Address or URL").fill(ADMIN_EMAIL)
        methods.get_by_role("button", name="Add contact method").click()
        rules = page.locator("#rule-form")
        page.get_by_text("Contact method “work mail").wait_for()
        notify = rules.get_by_label("Notify")
        notify.select_option(notify.locator("option", has_text="work mail").get_attribute("value"))
        rules.get_by_role("button", name="Add rule").click()
        rule = page.locator("tr[id^=rule-]")
        rule.wait_for()
        assert "work mail" in rule.inner_text()

        # Admin → Escalation policies: step 1 is you.
        page.get_by_role("link", name="Admin", exact=True).click()
        page.locator("#content-main").get_by_role("link", name="Escalation policies").click()
        page.get_by_role("link", name="Add escalation policy").click()
        page.locator("#id_team").select_option(label="Payments")
        page.locator("#id_name").fill("Checkout on call")
        step = page.locator(".inline-related:not(.empty-form)").first
        step.get_by_label("ops", exact=False).first.check()
        save_admin_form(page)
        assert page.locator("#result_list").get_by_text("Checkout on call").count() == 1

        # Admin → Service incident settings: attach it to the service.
        page.get_by_role("link", name="Home").first.click()
        page.locator("#content-main").get_by_role("link", name="Service incident settings").click()
        page.locator("#services-on-defaults").get_by_role("link", name="Customise").click()
        policy = page.locator("#id_escalation_policy")
        choice = policy.locator("option", has_text="Checkout on call").get_attribute("value")
        policy.select_option(choice)
        save_admin_form(page)

        # Send test alert on the integration: an incident opens and you are paged.
        page.goto(service_url)
        assert "Checkout on call" in page.locator("[data-policy]").inner_text()
        assert "ops" in page.locator("[data-pagees]").inner_text()  # who would be paged now
        page.get_by_role("button", name="Send test alert").click()
        page.get_by_text("Test alert sent through").wait_for()
        wait_for(lambda: smtp.messages, 30, "the page e-mail", worker)
        ((to, message),) = smtp.messages
        assert to == [ADMIN_EMAIL]
        (rule,) = NotificationRule.objects.all()  # the page went through the rule added above
        assert rule.contact_method.label == "work mail"
        assert message["X-Tocsin-Delivery"].endswith(f":rule-{rule.pk}")
        text = body_of(message)
        ack = re.search(r"^Acknowledge: (\S+)$", text, re.M)
        assert ack and ack.group(1).startswith(f"{web.url}/"), text
        opened = re.search(rf"^Open: {re.escape(web.url)}/incidents/(\d+)", text, re.M)
        assert opened, text
        incident = Incident.objects.get(pk=int(opened.group(1)))
        assert f"#{incident.pk}" in str(make_header(decode_header(message["Subject"])))
        assert incident.status == IncidentStatus.TRIGGERED
        assert incident.service.name == "Checkout API"

        # The signed link acknowledges it without logging in.
        stranger = browser.new_context(viewport={"width": 390, "height": 844})
        try:
            link = stranger.new_page()
            link.goto(ack.group(1))
            assert link.locator("h1").inner_text() == f"Acknowledge incident #{incident.pk}?"
            link.get_by_role("button", name="Acknowledge as ops").click()
            link.wait_for_selector("h1:has-text('Done')")
            assert "acknowledged" in link.locator("main").inner_text()
        finally:
            stranger.close()

        # The incident shows as acknowledged, in the database and on its page.
        incident.refresh_from_db()
        assert incident.status == IncidentStatus.ACKNOWLEDGED
        nav_menu(page, "Incidents", "Incidents")
        page.get_by_role("link", name=re.compile(re.escape(incident.title))).first.click()
        page.wait_for_url(re.compile(rf"/incidents/{incident.pk}/?"))
        assert page.locator("[data-incident-status]").inner_text() == "acknowledged"
    except Exception:
        page.screenshot(path="/tmp/tocsin-readme-tour-failure.png", full_page=True)
        raise
    finally:
        context.close()
