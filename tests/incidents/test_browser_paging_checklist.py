"""Paging set up through the service page's "Paging setup" checklist alone (issue #13).

A fresh database with only the administrator that ``bootstrap`` creates; a real daphne web
server and a real worker, both pointed at an aiosmtpd SMTP server; Debian's chromium driven by
Playwright. The administrator creates a team and a service in the UI, then follows only the
links of the checklist (and of the pages they lead to): an integration, an escalation policy,
someone with a contact method, a test alert, the page arriving. After each step, back on the
service page, that step shows as done; the page e-mail reaches the real SMTP server.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from incidents.models import Delivery, DeliveryStatus, Incident
from tests.incidents.notify_support import Smtp
from tests.live import Proc, WebServer, wait_for
from tests.tocsin.test_browser_readme_tour import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    TIMEOUT_MS,
    body_of,
    fresh_install,
    nav_menu,
    save_admin_form,
    smtp,
    tour,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]

# The fixtures come from the README tour's test: the same fresh install, servers and SMTP.
__all__ = ["fresh_install", "smtp", "tour"]

PAGER = "pager@example.org"  # the contact method the checklist's third step adds
STEPS = [
    "Add an integration",
    "Choose an escalation policy",
    "Someone to page who can be reached",
    "Send a test alert",
    "See the page arrive",
]


def step(page: Any, number: int) -> Any:
    return page.locator(f"#setup [data-step='{number}']")


def done(page: Any) -> list[bool]:
    """Which checklist steps the service page shows as done, in order."""
    items = page.locator("#setup [data-step]")
    assert items.all_inner_texts() and len(items.all()) == len(STEPS)
    return [item.get_attribute("data-done") == "true" for item in items.all()]


def follow(page: Any, number: int, link: str) -> None:
    """Click the link of checklist step ``number`` (checking its title first)."""
    item = step(page, number)
    assert STEPS[number - 1] in item.inner_text()
    item.get_by_role("link", name=link, exact=True).click()
    page.wait_for_load_state("load")


def back_to_service(page: Any, team: str, service: str) -> None:
    """From any page (the app's or the admin's), back to the service page by its links."""
    if page.locator("#user-tools").count():  # the admin: "View site" leads back to Tocsin
        page.locator("#user-tools").get_by_role("link", name="View site").click()
    nav_menu(page, "Alerts", "Services")
    row = page.locator("table tr", has_text=team)
    row.get_by_role("link", name=service, exact=True).click()
    page.wait_for_selector(f"h1:has-text('{service}')")


def test_the_checklist_alone_sets_up_paging_up_to_a_delivered_page(
    tour: tuple[WebServer, Proc], smtp: Smtp, browser: Any, tmp_path: Path
):
    web, worker = tour
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(web.url + "/")
        page.get_by_label("E-mail or username").fill(ADMIN_EMAIL)
        page.locator("input[name=password]").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url + "/")

        # A team (from the UI, the administrator as its manager) and a service.
        page.get_by_role("link", name="Teams", exact=True).click()
        new_team = page.locator("#new-team")
        new_team.get_by_label("Name").fill("Payments")
        new_team.get_by_label("Manager").fill("ops")
        new_team.get_by_role("button", name="Create team").click()
        page.wait_for_selector("h1:has-text('Payments')")
        nav_menu(page, "Alerts", "Services")
        page.get_by_label("Team").select_option(label="Payments")
        page.get_by_label("Name").fill("Checkout API")
        page.get_by_role("button", name="Create service").click()
        page.wait_for_selector("h1:has-text('Checkout API')")
        assert done(page) == [False] * 5

        # 1. An integration: the link leads to the form on the same page.
        follow(page, 1, "Add an integration")
        add = page.locator("form", has=page.get_by_role("button", name="Create integration"))
        add.get_by_label("Kind").select_option("alertmanager")
        add.get_by_role("button", name="Create integration").click()
        page.wait_for_selector("#new-key")
        assert done(page) == [True, False, False, False, False]

        # 2. An escalation policy: none exists yet, so the step creates one, then picks it.
        follow(page, 2, "Create a policy, then pick it")
        assert page.locator("#id_team option:checked").inner_text() == "Payments"
        page.locator("#id_name").fill("Checkout on call")
        first = page.locator(".inline-related:not(.empty-form)").first
        first.get_by_label("ops", exact=False).first.check()
        save_admin_form(page)
        back_to_service(page, "Payments", "Checkout API")
        assert done(page)[1] is False  # created, not yet the service's
        follow(page, 2, "Pick a policy")
        policy = page.locator("#id_escalation_policy")
        choice = policy.locator("option", has_text="Checkout on call").get_attribute("value")
        policy.select_option(choice)
        save_admin_form(page)
        back_to_service(page, "Payments", "Checkout API")
        assert done(page)[:2] == [True, True]
        assert "Checkout on call" in step(page, 2).inner_text()

        # 3. Someone who can be reached: the policy pages ops, reachable at the account's
        # address already; the step's link adds a contact method (and a rule) of their own.
        assert "ops (account e-mail (no notification rules))" in step(page, 3).inner_text()
        follow(page, 3, "Add a contact method")
        methods = page.locator("#method-form")
        methods.get_by_label("Kind").select_option("email")
        methods.get_by_label("Label").fill("pager")
        methods.get_by_label("Address or URL").fill(PAGER)
        methods.get_by_role("button", name="Add contact method").click()
        page.get_by_text("Contact method “pager").wait_for()
        rules = page.locator("#rule-form")
        notify = rules.get_by_label("Notify")
        notify.select_option(notify.locator("option", has_text="pager").get_attribute("value"))
        rules.get_by_role("button", name="Add rule").click()
        page.locator("tr[id^=rule-]").wait_for()
        back_to_service(page, "Payments", "Checkout API")
        assert done(page) == [True, True, True, False, False]
        assert "ops (1 notification rule(s))" in step(page, 3).inner_text()

        # 4. A test alert, from the integrations the step's link leads to.
        follow(page, 4, "Integrations")
        page.locator("#integrations").get_by_role("button", name="Send test alert").click()
        page.get_by_text("Test alert sent through").wait_for()
        assert done(page)[:4] == [True, True, True, True]

        # 5. The page arrives at the real SMTP server, to the contact method's address.
        wait_for(lambda: smtp.messages, 30, "the page e-mail", worker)
        ((to, message),) = smtp.messages
        assert to == [PAGER]
        subject = str(make_header(decode_header(message["Subject"])))
        incident = Incident.objects.get()
        assert f"#{incident.pk}" in subject and incident.title in subject, subject
        assert incident.service.name == "Checkout API"
        text = body_of(message)
        assert re.search(rf"^Open: {re.escape(web.url)}/incidents/{incident.pk}", text, re.M)
        # The worker marks the delivery sent once the SMTP server accepted it.
        sent = Delivery.objects.filter(incident=incident, status=DeliveryStatus.SENT)
        wait_for(sent.exists, 30, "the delivery marked sent", worker)
        page.reload()
        assert done(page) == [True] * 5
        assert "A page about this service was delivered." in step(page, 5).inner_text()
        assert "complete" in page.locator("#setup-heading").inner_text()
        follow(page, 5, "The test incident")
        page.wait_for_url(re.compile(rf"/incidents/{incident.pk}/?$"))
    except Exception:
        page.screenshot(path=str(tmp_path / "paging-checklist-failure.png"), full_page=True)
        raise
    finally:
        context.close()
