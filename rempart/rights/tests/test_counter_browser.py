"""The counter page in a real Chromium: typed the French way with input masks, answered in colour, nothing echoed."""

import pytest

from rempart.accounts.tests import browser
from rempart.testing import PASSWORD, totp_code

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab


def test_an_optician_checks_rights_at_the_counter(tab, cast, family):
    tab.goto("/accounts/login/")
    tab.page.locator("input[name=login]").fill(cast.staff.email)
    tab.page.locator("input[name=password]").fill(PASSWORD)
    tab.click_and_wait(tab.page.locator("main form button[type=submit]"), "/accounts/2fa/authenticate/")
    tab.page.locator("#mfa-code-submit").locator("xpath=..").locator("input[name=code]").fill(
        totp_code(cast.secrets[cast.staff.email])
    )
    with tab.page.expect_navigation():
        tab.page.locator("#mfa-code-submit").click()

    tab.goto("/comptoir/droits/")
    page = tab.page
    assert page.evaluate("document.activeElement.name") == "amc_number"  # ready to type
    page.keyboard.type(family.amc)
    page.keyboard.press("Tab")
    page.keyboard.type(family.adherent)
    page.keyboard.press("Tab")
    page.keyboard.type(family.parent_nir)  # digits only: the mask groups them
    assert page.input_value("input[name=nir]") == " ".join(
        [family.parent_nir[0], family.parent_nir[1:3], family.parent_nir[3:5], family.parent_nir[5:7],
         family.parent_nir[7:10], family.parent_nir[10:13], family.parent_nir[13:15]]
    )  # fmt: skip
    page.keyboard.press("Tab")
    page.keyboard.type("12051985")
    assert page.input_value("input[name=birth_date]") == "12/05/1985"
    page.select_option("select[name=domain]", "OPTI")
    with page.expect_navigation():
        page.locator("#check-submit").click()

    answer = page.locator("#answer")
    assert "answer-covered" in answer.get_attribute("class")
    assert "Couvert" in answer.inner_text() and "prise en charge requise" in answer.inner_text()
    reference = page.inner_text("#check-reference")
    assert reference.startswith("RC-")
    html = page.content()
    assert family.parent_nir not in html and family.parent_nir[:5] not in html.replace(" ", "")
    assert "Testeur" not in html
    assert page.input_value("input[name=nir]") == ""  # blank for the next patient
    assert tab.csp_violations() == [] and tab.script_errors() == []
    tab.screenshot("counter-covered")
