"""Explore."""

import pytest

from rempart.accounts import invitations
from rempart.accounts.models import Role
from rempart.testing import PASSWORD

from .browser import CHROMIUM, _orm_beside_playwright, base_url, browser, playwright  # noqa: F401

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

pytestmark = pytest.mark.browser


def test_explore(browser, cast):
    _inv, raw = invitations.invite(cast.optician, "key@shop.test", Role.STAFF, cast.owner)
    cdp, auth_id = browser.add_virtual_authenticator()
    browser.goto(f"/invitation/{raw}/")
    print(browser.path(), browser.text())
    browser.page.fill("input[name=full_name]", "Clé Test")
    browser.page.fill("input[name=password1]", PASSWORD)
    browser.page.fill("input[name=password2]", PASSWORD)
    browser.page.click("button:has-text('Créer mon accès')")
    browser.page.wait_for_load_state()
    print(browser.path(), browser.text())
    browser.page.screenshot(path="/tmp/enrol.png", full_page=True)
    browser.page.click("#enrol-passkey")
    browser.page.wait_for_load_state()
    print(browser.path(), browser.text())
    browser.page.click("#mfa_webauthn_add")
    browser.page.wait_for_timeout(2000)
    print(browser.path(), browser.text())
    print(browser.console)
    print(cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id}))
