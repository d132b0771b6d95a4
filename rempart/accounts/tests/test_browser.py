"""Explore."""

import json
import time

import pyotp
import pytest
from allauth.mfa.models import Authenticator

from rempart.accounts import invitations
from rempart.accounts.models import Role, User
from rempart.testing import PASSWORD

from .browser import CHROMIUM, _orm_beside_playwright, base_url, browser, playwright  # noqa: F401

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

pytestmark = pytest.mark.browser


def accept_invitation(browser, raw):
    browser.goto(f"/invitation/{raw}/")
    browser.page.fill("input[name=full_name]", "Clé Test")
    browser.page.fill("input[name=password1]", PASSWORD)
    browser.page.fill("input[name=password2]", PASSWORD)
    browser.page.get_by_role("button", name="Créer mon accès").click()
    browser.page.wait_for_url("**/compte/second-facteur/")


def test_explore(browser, cast):
    _inv, raw = invitations.invite(cast.optician, "key@shop.test", Role.STAFF, cast.owner)
    cdp, auth_id = browser.add_virtual_authenticator(user_verified=False)
    browser.page.on("response", lambda r: r.status >= 400 and print("BAD", r.status, r.url))
    accept_invitation(browser, raw)
    browser.page.click("#enrol-passkey")
    browser.page.wait_for_url("**/webauthn/add/")
    browser.page.click("#mfa_webauthn_add")
    browser.page.wait_for_timeout(1500)
    print(1, browser.path(), browser.console)
    data = json.loads(browser.page.text_content("#js_data"))
    print(data)
    data["creation_options"]["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged"
    browser.page.evaluate("d => { document.getElementById('js_data').textContent = d }", json.dumps(data))
    browser.page.click("#mfa_webauthn_add")
    browser.page.wait_for_timeout(1500)
    print(2, browser.path(), browser.text(), browser.console)
    user = User.objects.get(email="key@shop.test")
    print(list(Authenticator.objects.filter(user=user).values_list("type", flat=True)))
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": auth_id, "isUserVerified": True})
    browser.goto("/accounts/2fa/webauthn/add/")
    browser.page.click("#mfa_webauthn_add")
    browser.page.wait_for_url("**/recovery-codes/")
    print(3, browser.page.input_value("#recovery_codes"))
    browser.page.reload()
    print(4, browser.text(), browser.page.locator("#recovery_codes").count())
    browser.page.get_by_role("button", name="Se déconnecter").click()
    browser.page.wait_for_load_state()
    print(5, browser.path(), browser.text())
    browser.page.fill("input[name=login]", "key@shop.test")
    browser.page.fill("input[name=password]", PASSWORD)
    browser.page.locator("main form button[type=submit]").click()
    browser.page.wait_for_url("**/2fa/authenticate/")
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": auth_id, "isUserVerified": False})
    browser.page.get_by_role("button", name="Utiliser ma clé d'accès").click()
    browser.page.wait_for_timeout(1500)
    print(6, browser.path(), browser.console)
    data = json.loads(browser.page.text_content("#js_data"))
    print(data)
    data["request_options"]["publicKey"]["userVerification"] = "discouraged"
    browser.page.evaluate("d => { document.getElementById('js_data').textContent = d }", json.dumps(data))
    browser.page.get_by_role("button", name="Utiliser ma clé d'accès").click()
    browser.page.wait_for_timeout(1500)
    print(7, browser.path(), browser.text(), browser.console)
    browser.page.screenshot(path="/tmp/2fa-fail.png", full_page=True)
    for url in ["/", "/compte/securite/", "/admin/", "/accounts/login/"]:
        browser.goto(url)
        print(8, url, browser.path(), browser.page.inner_text("h1"))
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": auth_id, "isUserVerified": True})
    browser.goto("/accounts/2fa/authenticate/")
    print(9, browser.path())
    browser.page.get_by_role("button", name="Utiliser ma clé d'accès").click()
    browser.page.wait_for_timeout(1500)
    print(10, browser.path(), browser.text()[:200], browser.console)


def test_totp_explore(browser, cast):
    _inv, raw = invitations.invite(cast.optician, "totp@shop.test", Role.STAFF, cast.owner)
    accept_invitation(browser, raw)
    browser.page.click("#enrol-totp")
    browser.page.wait_for_url("**/totp/activate/")
    print(browser.text())
    secret = browser.page.input_value("#authenticator_secret")
    print(secret, browser.page.locator("img").first.get_attribute("src")[:40])
    browser.page.fill("input[name=code]", pyotp.TOTP(secret).now())
    browser.page.locator("main form button[type=submit]").click()
    browser.page.wait_for_url("**/recovery-codes/")
    print(time.time())
