"""Two-factor in a real browser against a real daphne server: set up from the account menu by
scanning (here: reading) the secret, then sign in with the password and the app's code."""

from __future__ import annotations

import base64
import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.live]

TIMEOUT_MS = 15_000


def app_code(secret: str) -> str:
    """What an authenticator app shows for this secret now."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key)
    totp.time = time.time()
    return f"{totp.token():06d}"


def test_set_up_then_sign_in_with_a_code(transactional_db, web, browser):
    make_user("dana")
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(web.url + "/accounts/login/")
        page.get_by_label("E-mail or username").fill("dana")
        page.locator("input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url + "/")

        page.locator(".user-menu summary").click()
        page.get_by_role("link", name="Two-factor").click()
        page.get_by_role("link", name="Set up two-factor").click()
        assert page.locator(".two-factor-qr svg").is_visible()
        secret = page.locator("#two-factor-secret").inner_text().strip()
        page.get_by_role("textbox", name="Code").fill(app_code(secret))
        page.get_by_role("button", name="Turn on two-factor").click()
        codes = page.locator("#recovery-codes code").all_inner_texts()
        assert len(codes) == 10

        page.locator(".user-menu summary").click()
        page.get_by_role("button", name="Log out").click()
        page.goto(web.url + "/accounts/login/")
        page.get_by_label("E-mail or username").fill("dana")
        page.locator("input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url + "/accounts/login/code/")
        page.goto(web.url + "/teams/")  # not signed in yet
        assert page.url.startswith(web.url + "/accounts/login/")
        page.go_back()
        # The app's code of this 30-second step was used to set up: the device takes a code
        # only once, so let it forget (as the next step would).
        TOTPDevice.objects.update(last_t=-1)
        page.get_by_role("textbox", name="Code").fill(app_code(secret))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(web.url + "/")
        assert page.locator("h1").inner_text() == "Dashboard"
        assert errors == []
    finally:
        context.close()
