"""In a real Chromium: the Pro Santé Connect button, the provider's page, and back to Rempart logged in.

Debian's Chromium (/usr/bin/chromium) driven by Playwright against pytest-django's live server on
http://localhost:<port>, and the local OpenID Connect provider on http://127.0.0.1:<port> (another site,
as PSC is): the browser follows the redirects itself, the session cookie comes back with the callback.
"""

from __future__ import annotations

import re

import pytest

from rempart.accounts.models import SecurityEvent
from rempart.accounts.tests import browser
from rempart.psc.tests.helpers import CALLBACK

if not browser.CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Debian's Chromium at {browser.CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab


@pytest.fixture
def psc_live(psc, base_url, settings):
    """The provider knows the live server's callback; Rempart's public address is the live server's."""
    psc.redirect_uris[:] = [base_url + CALLBACK]
    settings.REMPART_BASE_URL = base_url
    return psc


def press_the_psc_button(tab, psc, identity) -> None:
    psc.at_card = identity
    tab.goto("/accounts/login/")
    tab.screenshot("psc-login-page")
    tab.page.get_by_role("button", name="Se connecter avec Pro Santé Connect").click()
    tab.page.wait_for_url(re.compile(re.escape(psc.issuer) + r"/authorize\?.*"))
    assert "Pro Santé Connect — fournisseur de test" in tab.text()
    assert identity.national_id in tab.text()
    tab.page.get_by_role("button", name="Valider avec ma e-CPS").click()


def test_the_psc_button_logs_a_linked_professional_in(tab, psc_live, pros, cast):
    press_the_psc_button(tab, psc_live, pros.staff)
    tab.wait_for_path("/")
    assert "Bonjour" in tab.text()
    assert cast.staff.email in tab.text()
    assert SecurityEvent.objects.get(tag="psc.login", user=cast.staff).details["second_factor"] == "psc"
    assert not tab.csp_violations(), tab.console
    assert not tab.script_errors(), tab.console
    tab.screenshot("psc-logged-in")


def test_an_unknown_professional_gets_the_refusal_page(tab, psc_live, pros):
    press_the_psc_button(tab, psc_live, pros.stranger)
    tab.page.wait_for_url(re.compile(r".*/accounts/psc/login/callback/.*"))
    assert tab.h1() == "Connexion Pro Santé Connect refusée"
    assert "reliée à aucun compte Rempart" in tab.text()
    tab.screenshot("psc-refused")
    tab.goto("/")
    assert tab.path().startswith("/accounts/login/")  # nothing was opened


def test_an_insufficient_level_lands_on_the_second_factor_page(tab, psc_live, pros):
    pros.staff.acr = "eidas0"
    press_the_psc_button(tab, psc_live, pros.staff)
    tab.wait_for_path("/accounts/2fa/authenticate/")
    assert "Pro Santé Connect ne dit pas que votre carte CPS ou votre e-CPS a été utilisée" in tab.text()
