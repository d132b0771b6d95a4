"""The claims portal in a real Chromium: an optician asks for a PEC, invoices it from its button, finds it accepted.

The shop's staff member (password + TOTP) fills the quote, gets the PEC, clicks *Facturer cette prise en charge*,
finds its lines, the AMO estimate and the dates already there, types only the cards and the invoice number, and
sends it: accepted, with its detail; the PEC can no longer be invoiced; *Factures* lists it. Nothing of the
person is on any page. Surveillance is off (it is tested on its own).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rempart.accounts.tests import browser
from rempart.authorizations.models import Pec
from rempart.authorizations.tests.test_api import _adult
from rempart.claims.models import Claim
from rempart.incidents.tests.conftest import COL
from rempart.incidents.tests.test_incident_browser import assert_clean, log_in

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab

RPPS = "10001234565"  # Luhn-valid: the PEC's prescriber, then the invoice's


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


def fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def type_cards(page, row) -> None:
    born = row[COL["birth_date"]]
    page.locator("input[name=amc_number]").fill(row[COL["amc_number"]])
    page.locator("input[name=adherent_number]").fill(row[COL["adherent_number"]])
    page.locator("input[name=nir]").fill(row[COL["nir"]])
    page.locator("input[name=birth_date]").fill(f"{born[8:10]}{born[5:7]}{born[0:4]}")  # the mask adds the /


def test_an_optician_invoices_a_pec_from_its_button_and_finds_it_accepted(tab, cast, population):
    row = _adult(population)
    page = tab.page
    today = timezone.localdate()
    log_in(tab, cast.staff, cast.secrets[cast.staff.email])

    # 1. The PEC, from the quote.
    page.get_by_role("link", name="Prise en charge", exact=True).click()
    tab.wait_for_path("/comptoir/prise-en-charge/")
    type_cards(page, row)
    page.locator("input[name=delivery_date]").fill(fr(today))
    page.locator("input[name=prescription_date]").fill(fr(today - dt.timedelta(days=10)))
    page.locator("input[name=prescriber_id]").fill(RPPS)
    page.locator("input[name=right_sphere]").fill("-1,25")
    page.locator("input[name=left_sphere]").fill("-1,00")
    for n, (code, side, price) in enumerate(
        [("2290100", "", "30,00"), ("2290200", "right", "32,50"), ("2290200", "left", "32,50")], start=1
    ):
        page.locator(f"input[name=line{n}_code]").fill(code)
        page.locator(f"select[name=line{n}_class]").select_option("A")
        page.locator(f"select[name=line{n}_side]").select_option(side)
        page.locator(f"input[name=line{n}_price]").fill(price)
    with page.expect_navigation():
        page.locator("#pec-submit").click()
    number = page.inner_text("#pec-number").strip()
    assert Pec.objects.get(number=number).status == "accepted"

    # 2. « Facturer cette prise en charge »: the lines, the AMO estimate, the dates and the prescriber are there.
    tab.click_and_wait(page.locator("#pec-invoice"), f"/comptoir/prises-en-charge/{number}/facturer/")
    assert page.inner_text("#pec-number").strip() == number
    assert page.locator("input[name=care_date]").input_value() == fr(today)
    assert page.locator("input[name=invoice_date]").input_value() == fr(today)
    assert page.locator("input[name=prescriber_rpps]").input_value() == RPPS
    amo = [page.locator(f"input[name=line{n}_amo_paid]").input_value() for n in (1, 2, 3)]
    assert all(value.replace(",", "").isdigit() for value in amo), amo
    assert page.locator("input[name=amc_number]").evaluate("e => e === document.activeElement")
    tab.screenshot("claims-invoice-pec")

    # 3. A mistyped NIR: the error is on its field, nothing is recorded; then the right one.
    type_cards(page, row)
    page.locator("input[name=nir]").fill("1 23")
    page.locator("input[name=invoice_number]").fill("F-NAV-0001")
    with page.expect_navigation():
        page.locator("#invoice-submit").click()
    assert "NIR à 15 caractères" in page.inner_text("#invoice-errors")
    assert page.locator("input[name=nir]").evaluate("e => e === document.activeElement")  # focus on it
    assert not Claim.objects.exists()
    type_cards(page, row)
    with page.expect_navigation():
        page.locator("#invoice-submit").click()
    assert page.inner_text("#invoice-status").strip() == "Acceptée", page.inner_text("main")
    claim = Claim.objects.get()
    assert (claim.invoice_number, claim.channel, claim.status, claim.pec.number) == (
        "F-NAV-0001",
        "portal",
        "accepted",
        number,
    )

    # 4. Its detail, then « Factures »; the PEC is invoiced.
    tab.click_and_wait(page.locator("#invoice-detail"), "/comptoir/factures/F-NAV-0001/")
    assert page.inner_text("#claim-status").strip() == "Acceptée"
    assert page.inner_text("#claim-reference").strip() == claim.ledger_reference
    assert number in page.inner_text("main")
    page.get_by_role("link", name="Factures", exact=True).first.click()
    tab.wait_for_path("/comptoir/factures/")
    listing = page.inner_text("#claims")
    assert "F-NAV-0001" in listing and "Acceptée" in listing
    tab.screenshot("claims-factures")
    tab.goto("/comptoir/prises-en-charge/")
    assert "facturée" in page.inner_text("main") and page.locator("a", has_text="Facturer cette").count() == 0

    for secret in (row[COL["nir"]], row[COL["last_name"]], row[COL["first_name"]]):
        assert secret not in page.content()
    assert_clean(tab, allowed=(f"/comptoir/prises-en-charge/{number}/facturer/",))  # the 400 of step 3
