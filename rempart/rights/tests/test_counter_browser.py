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


# ---------------------------------------------------------------------------------------------- issue 16: the counter

WIDTH = 1024  # the narrowest window the counter pages are made for
ACCESSIBLE_NAMES = """() => [...document.querySelectorAll('main input, main select, main textarea')]
  .filter(e => e.type !== 'hidden' && e.type !== 'submit')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map(e => e.name)"""
HORIZONTAL_SCROLL = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _fr(day) -> str:
    return day.strftime("%d/%m/%Y")


def _log_in(tab, cast) -> None:
    tab.page.set_viewport_size({"width": WIDTH, "height": 800})
    tab.goto("/accounts/login/")
    tab.page.locator("input[name=login]").fill(cast.staff.email)
    tab.page.locator("input[name=password]").fill(PASSWORD)
    tab.click_and_wait(tab.page.locator("main form button[type=submit]"), "/accounts/2fa/authenticate/")
    tab.page.locator("input[name=code]").fill(totp_code(cast.secrets[cast.staff.email]))
    with tab.page.expect_navigation():
        tab.page.locator("#mfa-code-submit").click()


def _cards(page, family, *, birth="12/05/1985") -> None:
    page.fill("input[name=amc_number]", family.amc)
    page.fill("input[name=adherent_number]", family.adherent)
    page.fill("input[name=nir]", family.parent_nir)
    page.fill("input[name=birth_date]", birth)


def _quote(page, *, frame_price="30,00") -> None:
    """A frame and two class A lenses, as in the PEC tests, typed in the prescription table."""
    import datetime as dt

    from django.utils import timezone

    today = timezone.localdate()
    page.fill("input[name=delivery_date]", _fr(today + dt.timedelta(days=5)))
    page.fill("input[name=prescription_date]", _fr(today - dt.timedelta(days=10)))
    page.fill("input[name=prescriber_id]", "10001234567")
    page.fill("input[name=right_sphere]", "-1,25")
    page.fill("input[name=left_sphere]", "-1,00")
    for n, (code, side, price) in enumerate(
        [("2290100", "", frame_price), ("2290200", "right", "32,50"), ("2290200", "left", "32,50")], start=1
    ):
        page.fill(f"input[name=line{n}_code]", code)
        page.select_option(f"select[name=line{n}_class]", "A")
        page.select_option(f"select[name=line{n}_side]", side)
        page.fill(f"input[name=line{n}_price]", price)


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def test_the_pec_page_fits_1024_names_every_input_and_takes_the_prescription_as_written(tab, cast, family):
    _log_in(tab, cast)
    tab.goto("/comptoir/prise-en-charge/")
    page = tab.page
    assert page.evaluate(HORIZONTAL_SCROLL) <= 0  # no horizontal scroll at 1024 px
    assert page.evaluate(ACCESSIBLE_NAMES) == []
    rows = page.locator("#prescription tbody tr")
    assert rows.count() == 2 and "OD" in rows.nth(0).inner_text() and "OG" in rows.nth(1).inner_text()
    headers = page.text_content("#prescription thead")
    assert all(word in headers for word in ("Sphère", "Cylindre", "Axe", "Addition")), headers
    assert page.get_attribute("input[name=right_axis]", "aria-label") == "OD (œil droit) — axe (°)"

    # Every error at once, the cursor on the first one; a day that does not exist is called so.
    _cards(page, family, birth="31/02/1985")
    _quote(page)
    page.fill("input[name=right_sphere]", "-1,30")
    page.fill("input[name=right_cylinder]", "-0,50")  # a cylinder without its axis
    page.fill("input[name=left_axis]", "200")
    _submit(page, "#pec-submit")
    summary = page.inner_text("#form-errors")
    for expected in (
        "le 31/02/1985 n'existe pas",
        "par pas de 0,25",
        "axe requis avec un cylindre",
        "de 0 à 180",
    ):
        assert expected in summary, summary
    assert page.evaluate("document.activeElement.name") == "birth_date"
    assert page.evaluate(HORIZONTAL_SCROLL) <= 0  # errors under the cells do not widen the page
    assert page.input_value("input[name=nir]") == ""  # never written back
    tab.screenshot("pec-errors-1024")

    page.fill("input[name=nir]", family.parent_nir)
    page.fill("input[name=birth_date]", "12/05/1985")
    page.fill("input[name=right_sphere]", "-1,25")
    page.fill("input[name=right_axis]", "90")
    page.fill("input[name=left_axis]", "")
    _submit(page, "#pec-submit")
    answer = page.inner_text("#pec-answer")
    assert "Accordée" in answer, page.inner_text("main")[:2000]
    number = page.inner_text("#pec-number")
    assert page.get_attribute("#pec-invoice", "href") == f"/comptoir/prises-en-charge/{number}/facturer/"
    assert page.evaluate("document.activeElement.name") == "amc_number"  # blank for the next patient
    assert tab.csp_violations() == [] and tab.script_errors() == []
    tab.screenshot("pec-granted-1024")


def test_the_rights_check_shows_every_error_at_once_with_the_cursor_on_the_first(tab, cast, family):
    _log_in(tab, cast)
    tab.goto("/comptoir/droits/")
    page = tab.page
    page.fill("input[name=amc_number]", "12")
    page.fill("input[name=adherent_number]", family.adherent)
    page.fill("input[name=nir]", family.parent_nir[:-1] + ("0" if family.parent_nir[-1] != "0" else "1"))
    page.fill("input[name=birth_date]", "30/02/1985")
    page.fill("input[name=care_date]", "31/04/2026")
    _submit(page, "#check-submit")
    summary = page.inner_text("#form-errors")
    for expected in ("9 chiffres", "clé du NIR", "le 30/02/1985 n'existe pas", "le 31/04/2026 n'existe pas"):
        assert expected in summary, summary
    assert page.evaluate("document.activeElement.name") == "amc_number"
    assert page.evaluate(HORIZONTAL_SCROLL) <= 0 and page.evaluate(ACCESSIBLE_NAMES) == []


def test_covered_pec_required_leads_to_the_pec_form_with_the_cards_filled_in(tab, cast, family):
    _log_in(tab, cast)
    tab.goto("/comptoir/droits/")
    page = tab.page
    _cards(page, family)
    page.select_option("select[name=domain]", "OPTI")
    _submit(page, "#check-submit")
    assert "prise en charge requise" in page.inner_text("#answer")
    reference = page.inner_text("#check-reference")
    _submit(page, "#pec-from-check")
    assert tab.path() == "/comptoir/prise-en-charge/"  # nothing of the cards in the URL
    assert reference in page.inner_text("#cards-carried")
    assert page.input_value("input[name=amc_number]") == family.amc
    assert page.input_value("input[name=adherent_number]") == family.adherent
    assert page.input_value("input[name=birth_date]") == "12/05/1985"
    assert page.input_value("input[name=nir]") == "" and family.parent_nir not in page.content()
    assert page.input_value("select[name=domain]") == "OPTI"
    _quote(page)
    _submit(page, "#pec-submit")
    assert "Accordée" in page.inner_text("#pec-answer"), page.inner_text("main")[:2000]
    assert page.locator("#pec-invoice").count() == 1


def test_a_revised_quote_names_the_shops_blocking_pec_and_cancels_it(tab, cast, family):
    from rempart.authorizations.models import Pec

    _log_in(tab, cast)
    page = tab.page
    page.on("dialog", lambda dialog: dialog.accept())  # a confirmation, if the page asks for one
    tab.goto("/comptoir/prise-en-charge/")
    _cards(page, family)
    _quote(page)
    _submit(page, "#pec-submit")
    first = page.inner_text("#pec-number")

    _cards(page, family)  # the patient chose another frame: the same quote, revised
    _quote(page, frame_price="28,00")
    _submit(page, "#pec-submit")
    answer = page.inner_text("#pec-answer")
    assert "Refusée" in answer and "est déjà pris en charge" in answer  # a delivery still to come
    refused = page.inner_text("#pec-number")
    blocking = page.inner_text("#pec-blocking")
    assert first in blocking and "toujours ouverte" in blocking
    page.locator(f"#confirm-{first}").check()  # cannot be undone: confirmed first (a required box)
    page.locator(f"#confirm-{first}").check()  # cancelling cannot be undone: it is confirmed first
    with page.expect_navigation():
        page.locator(f"#cancel-{first}").click()
    assert tab.path() == "/comptoir/prise-en-charge/"
    assert page.locator("#revision-kept").count() == 1
    assert (
        page.input_value("input[name=line1_price]") == "28,00" and page.input_value("input[name=nir]") == ""
    )
    _submit(page, "#pec-submit")  # the NIR left empty: the kept one is used
    assert "Accordée" in page.inner_text("#pec-answer"), page.inner_text("main")[:2000]
    assert Pec.objects.get(number=first).cancelled_at is not None

    tab.goto("/comptoir/prises-en-charge/")
    rows = {
        r.locator("td").first.inner_text(): r.inner_text()
        for r in page.locator("#pec-history tbody tr").all()
    }
    assert "en cours" not in rows[refused] and "annulée" in rows[first]


def test_a_step_up_offers_only_what_satisfies_it_and_keeps_the_cards(tab, cast, family):
    from django.utils import timezone

    from rempart.surveillance.models import ActorState

    _log_in(tab, cast)
    tab.goto("/comptoir/droits/")
    ActorState.objects.update_or_create(
        actor=f"u:{cast.staff.pk}", defaults={"step_up_since": timezone.now()}
    )
    page = tab.page
    _cards(page, family)
    page.select_option("select[name=domain]", "OPTI")
    _submit(page, "#check-submit")
    assert tab.path().startswith("/accounts/2fa/reauthenticate/"), tab.path()
    main = page.locator("main")
    assert main.locator("input[name=code]").count() == 1
    assert main.locator("input[type=password]").count() == 0
    links = [a.get_attribute("href") or "" for a in main.locator("a").all()]
    assert not any("/accounts/reauthenticate/" in h or "code" in h for h in links), links
    assert family.parent_nir not in page.url and family.amc not in page.url
    main.locator("input[name=code]").fill(totp_code(cast.secrets[cast.staff.email], 1))
    _submit(page, "#mfa-code-submit")
    assert tab.path() == "/comptoir/droits/"
    assert page.locator("#draft-kept").count() == 1
    assert page.input_value("input[name=amc_number]") == family.amc
    assert page.input_value("input[name=nir]") == "" and family.parent_nir not in page.content()
    _submit(page, "#check-submit")  # the NIR left empty: the kept one is used
    assert "answer-covered" in page.get_attribute("#answer", "class")


def test_the_histories_are_searched_by_reference_and_date_and_references_do_not_break(tab, cast, family):
    import datetime as dt

    from django.utils import timezone

    _log_in(tab, cast)
    page = tab.page
    references = []
    for _n in range(2):
        tab.goto("/comptoir/droits/")
        _cards(page, family)
        page.select_option("select[name=domain]", "OPTI")
        _submit(page, "#check-submit")
        references.append(page.inner_text("#check-reference"))
    tab.goto("/comptoir/historique/")
    page.fill("#history-search input[name=q]", references[0].lower())
    _submit(page, "#history-search-submit")
    table = page.inner_text("table.history tbody")
    assert references[0] in table and references[1] not in table
    assert (
        page.evaluate("getComputedStyle(document.querySelector('table.history code.ref')).whiteSpace")
        == "nowrap"
    )
    box = page.locator("table.history code.ref").first.bounding_box()
    assert box["height"] < 30  # one line

    today = timezone.localdate()
    tab.goto(f"/comptoir/historique/?day={_fr(today)}")
    assert all(r in page.inner_text("table.history tbody") for r in references)
    tab.goto(
        f"/comptoir/historique/?since={_fr(today - dt.timedelta(days=9))}&until={_fr(today - dt.timedelta(days=1))}"
    )
    assert "ne correspond à la recherche" in page.inner_text("table.history tbody")
    tab.goto("/comptoir/historique/?day=31/02/2026")
    assert "le 31/02/2026 n'existe pas" in page.inner_text("#history-search")
    assert page.evaluate(HORIZONTAL_SCROLL) <= 0

    tab.goto("/comptoir/prise-en-charge/")
    _cards(page, family)
    _quote(page)
    _submit(page, "#pec-submit")
    number = page.inner_text("#pec-number")
    tab.goto(f"/comptoir/prises-en-charge/?q={number}&day={_fr(today)}")
    assert number in page.inner_text("#pec-history tbody")
    tab.goto("/comptoir/prises-en-charge/?q=PEC-0000-0000")
    assert number not in page.inner_text("#pec-history tbody")
    assert page.evaluate(HORIZONTAL_SCROLL) <= 0
