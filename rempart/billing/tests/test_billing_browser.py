"""The billing pages in a real Chromium, as their users see them, 1,024 pixels wide.

A month of paid claims is billed (``prepare_statements``); a credit note is posted after the statement. The
operator's administrator (password + TOTP) opens the statements console, the statement, its PDF and its
detail file, then issues the correction from the form: asked for the second factor again, the form refuses a
missing reason, then issues it; the correction is listed under its original. The treasury pages are looked at,
not used (another part of the code owns them). The insurer's member reads its balance, ageing, statements,
payments received, and downloads the PDF and the CSV. All in French, then the same pages once in English: no
raw code (``OPTI``, ``partly_paid``), no English on a French page, no traceback, nothing wider than the window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re

import pytest
from django.utils import timezone

from rempart.accounts.models import Role
from rempart.accounts.tests import browser
from rempart.billing import receipts
from rempart.billing.models import Statement
from rempart.billing.statements import prepare_statements
from rempart.billing.tests.conftest import contract, credit, paid, schedule
from rempart.billing.tests.tamper_support import forget_billing
from rempart.billing.tests.test_detail import paid_claim, people_of
from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
from rempart.incidents.tests.test_incident_browser import assert_clean, download
from rempart.testing import PASSWORD, make_user, totp_code

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url

WINDOW = {"width": 1024, "height": 768}
CONSOLE = "/operateur/facturation/"
TREASURY = "/operateur/facturation/tresorerie/"
PORTAL = "/assureur/facturation/"
NOV_1, NOV_30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)

TOO_WIDE: set[str] = set()  # treasury pages wider than the window (printed at the end of the test)

# What must never show: codes instead of words, and a crash.
RAW = re.compile(
    r"\b(OPTI|PHAR|AUDI|DENT|partly_paid|direct_debit|camt_054|rights_check|by_domain|"
    r"\w+_cents|None|True|False)\b"
)
CRASH = ("Traceback", "Server Error", "Exception Value", "TemplateSyntaxError", "{%", "{{")
# English words that would betray an untranslated string on a French page.
ENGLISH = re.compile(
    r"\b(Statement|Statements|Download|Total due|Due date|Paid|Fees|Insurer|Balance|Receipts|Received|"
    r"Correction|Reason|Issue|Period|Status|the|and|of|by)\b"
)
# French that would betray an untranslated string on an English page.
FRENCH = re.compile(
    r"\b(Relevé|Relevés|Télécharger|Total dû|Échéance|Payé|Frais|Assureur|Période|Statut|Saisie|manuelle|Reçu)\b"
)


@pytest.fixture
def _billing_dir(settings, tmp_path):
    settings.REMPART_BILLING_DIR = str(tmp_path / "billing")


@pytest.fixture
def billed(cast, population, _billing_dir):  # noqa: F811 - the fixture imported above
    """November billed for the cast's insurer (two shops, two people), a late credit note, a receipt."""
    insurer = cast.insurer.insurer
    contract(insurer, due_days=10)
    schedule(None, dt.date(2026, 1, 1), rights_check=5, pec=100, invoice=30, share=50)
    first, second = people_of(insurer, 2)
    claims = [
        paid_claim(cast.optician, insurer, first, [(10_000, "accepted"), (0, "rejected")]),
        paid_claim(cast.optician, insurer, first, [(4_000, "reduced"), (2_500, "accepted")]),
        paid_claim(cast.other_shop, insurer, second, [(3_000, "accepted")]),
    ]
    paid(claims, dt.date(2026, 11, 12))
    (statement,) = prepare_statements(NOV_1, NOV_30, user=cast.admin)
    credit(claims[0], 1_500, dt.date(2026, 11, 20))  # posted after the statement: a correction bills it
    treasurer = make_user("treso@operator.test", cast.operator, Role.TREASURY)
    receipts.record_manual_receipt(
        insurer=insurer, statement=statement, amount_cents=5_000, received_on=timezone.localdate(),
        reference="VIR-MUTUELLE-TEST-1", user=treasurer,
    )  # fmt: skip
    yield statement
    forget_billing()


@contextlib.contextmanager
def window(chromium_browser, base_url, locale: str = "fr-FR"):
    """One person's browser, 1,024 pixels wide, in ``locale`` (its Accept-Language)."""
    context = chromium_browser.new_context(locale=locale, viewport=WINDOW)
    context.set_default_timeout(browser.TIMEOUT_MS)
    page = context.new_page()
    tab = browser.Tab(page=page, base_url=base_url)
    page.on("console", lambda message: tab.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: tab.console.append(f"pageerror: {error}"))
    page.on("response", lambda r: r.status >= 400 and tab.failed_requests.append(f"{r.status} {r.url}"))
    try:
        yield tab
    finally:
        context.close()


def log_in(tab, email: str, secret: str, step: int = 0) -> None:
    """Password then TOTP (``step``: another 30-second code, as one code is accepted once)."""
    tab.goto("/accounts/login/")
    tab.page.locator("input[name=login]").fill(email)
    tab.page.locator("input[name=password]").fill(PASSWORD)
    tab.click_and_wait(tab.page.locator("main form button[type=submit]"), "/accounts/2fa/authenticate/")
    tab.page.locator("#mfa-code-submit").locator("xpath=..").locator("input[name=code]").fill(
        totp_code(secret, step)
    )
    with tab.page.expect_navigation():
        tab.page.locator("#mfa-code-submit").click()
    assert tab.path() == "/", tab.path()


def to_english(tab) -> None:
    with tab.page.expect_navigation():
        tab.page.locator("form.lang button[value=en]").click()
    assert tab.page.get_attribute("html", "lang") == "en"


def looks_right(
    tab, *, english: bool = False, allowed: tuple[str, ...] = (), width_checked: bool = True
) -> str:
    """The page's text, once checked: no raw code, no crash, the other language absent, nothing too wide."""
    text = tab.page.inner_text("main")
    assert not RAW.findall(text), (tab.path(), RAW.findall(text))
    assert not any(mark in text for mark in CRASH), tab.path()
    other = FRENCH if english else ENGLISH
    assert not other.findall(text), (tab.path(), other.findall(text))
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    if width_checked:
        assert width <= WINDOW["width"], (tab.path(), width)
    elif width > WINDOW["width"]:
        TOO_WIDE.add(f"{tab.path()} ({width} px)")
    assert_clean(tab, allowed=allowed)
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def visit(tab, path: str, *, english: bool = False) -> str:
    response = tab.goto(path)
    assert response.status == 200, (path, response.status)
    # The treasury's pages belong to another part of the code: their width is reported, not enforced here.
    return looks_right(tab, english=english, width_checked=not path.startswith(TREASURY))


def test_the_operator_corrects_a_statement_and_the_insurer_reads_its_billing(
    cast, billed, chromium_browser, base_url, settings
):
    statement = billed
    admin_secret = cast.secrets[cast.admin.email]

    # 1. The operator's administrator: the list, the statement, its documents.
    with window(chromium_browser, base_url) as admin:
        log_in(admin, cast.admin.email, admin_secret)
        page = admin.page
        page.get_by_role("link", name="Relevés assureurs", exact=True).first.click()
        admin.wait_for_path(CONSOLE)
        listing = looks_right(admin)
        assert statement.number in listing and "Mutuelle Test (123456789)" in listing
        admin.click_and_wait(page.get_by_role("link", name=statement.number), f"{CONSOLE}{statement.number}/")
        text = looks_right(admin)
        assert "195,00 €" in text and "Optique" in text and "Réglé en partie" in text
        assert "Pharmacie + Optique" in text or "Optique + Pharmacie" in text  # the other shop's category
        pdf = download(admin, page.locator("#pdf-link"))
        assert hashlib.sha256(pdf).hexdigest() == statement.pdf_sha256
        english_pdf = download(admin, page.locator("#pdf-other-link"))
        assert hashlib.sha256(english_pdf).hexdigest() == statement.pdf_en_sha256
        csv = download(admin, page.locator("#detail-link")).decode("utf-8")
        assert csv.count("\n") == 5 and statement.number in csv  # header + the four paid lines
        admin.goto(f"{CONSOLE}{statement.number}/")
        looks_right(admin)

        # 2. The correction: the second factor again, a reason required, then issued and listed.
        settings.REMPART_STEP_UP_SECONDS = 0
        page.locator("#correct-link").click()
        page.wait_for_url(
            re.compile(r".*/accounts/2fa/reauthenticate/\?next=.*"), wait_until="domcontentloaded"
        )
        settings.REMPART_STEP_UP_SECONDS = 300
        page.locator("input[name=code]").fill(totp_code(admin_secret, 1))
        with page.expect_navigation():
            page.locator("input[name=code]").press("Enter")
        assert admin.path() == f"{CONSOLE}{statement.number}/rectifier/"
        looks_right(admin)
        with page.expect_navigation():
            page.locator("#correction-submit").click()
        refused = looks_right(admin, allowed=("/rectifier/",))  # the form again, 400
        admin.failed_requests.clear()
        assert "Indiquez le motif du relevé rectificatif." in refused
        assert (
            "Cochez la confirmation" in refused and not Statement.objects.filter(kind="correction").exists()
        )
        page.locator("textarea[name=reason]").fill("Avoir passé après l'émission du relevé")
        page.locator("input[name=confirm]").check()
        with page.expect_navigation():
            page.locator("#correction-submit").click()
        correction = Statement.objects.get(kind="correction")
        assert admin.path() == f"{CONSOLE}{correction.number}/"
        text = looks_right(admin)
        assert f"Relevé rectificatif {correction.number} émis" in text and "-15,00 €" in text
        admin.click_and_wait(page.locator("#kind a"), f"{CONSOLE}{statement.number}/")
        corrections = page.inner_text("#corrections")
        assert correction.number in corrections and "Avoir passé après l'émission" in corrections

        # 3. The treasury pages, looked at.
        for path in (TREASURY, f"{TREASURY}encaissements/", f"{TREASURY}prelevements/"):
            text = visit(admin, path)
            assert "Mutuelle Test" in text or "VIR-MUTUELLE-TEST-1" in text or "prélèvement" in text.lower()
        assert "VIR-MUTUELLE-TEST-1" in visit(admin, f"{TREASURY}encaissements/")

        # 5a. The same person switches to English (the language buttons of every page).
        to_english(admin)
        assert "Insurer statements" in visit(admin, CONSOLE, english=True)
        text = visit(admin, f"{CONSOLE}{statement.number}/", english=True)
        assert "Optical" in text and correction.number in text and "Total due" in text
        pdf = download(admin, page.locator("#pdf-link"))
        assert hashlib.sha256(pdf).hexdigest() == statement.pdf_en_sha256
        text = visit(admin, f"{CONSOLE}{statement.number}/rectifier/", english=True)
        assert "Issue a correction statement" in text
        for path in (TREASURY, f"{TREASURY}encaissements/", f"{TREASURY}prelevements/"):
            visit(admin, path, english=True)

    # 4. The insurer's member: balance and ageing, statements, payments received, the documents.
    member = cast.insurer_member
    with window(chromium_browser, base_url) as insurer:
        log_in(insurer, member.email, cast.secrets[member.email])
        page = insurer.page
        page.get_by_role("link", name="Facturation", exact=True).first.click()
        insurer.wait_for_path(PORTAL)
        text = looks_right(insurer)
        assert "Solde et ancienneté" in text and statement.number in text and correction.number in text
        insurer.click_and_wait(
            page.get_by_role("link", name="Paiements reçus par l'opérateur"), f"{PORTAL}encaissements/"
        )
        text = looks_right(insurer)
        assert "VIR-MUTUELLE-TEST-1" in text and "50,00 €" in text
        insurer.click_and_wait(
            page.get_by_role("link", name=statement.number), f"{PORTAL}releves/{statement.number}/"
        )
        text = looks_right(insurer)
        assert "Optique" in text and "195,00 €" in text and correction.number in text
        pdf = download(insurer, page.locator("#pdf-link"))
        assert hashlib.sha256(pdf).hexdigest() == statement.pdf_sha256
        csv = download(insurer, page.locator("#detail-link")).decode("utf-8")
        assert csv.count("\n") == 5
        insurer.click_and_wait(page.locator("#corrections a"), f"{PORTAL}releves/{correction.number}/")
        text = looks_right(insurer)
        assert "rectifie" in text and statement.number in text

        # 5b. In English.
        to_english(insurer)
        text = visit(insurer, PORTAL, english=True)
        assert "Balance and ageing" in text and statement.number in text
        assert "VIR-MUTUELLE-TEST-1" in visit(insurer, f"{PORTAL}encaissements/", english=True)
        text = visit(insurer, f"{PORTAL}releves/{statement.number}/", english=True)
        assert "Optical" in text and correction.number in text
        pdf = download(insurer, page.locator("#pdf-link"))
        assert hashlib.sha256(pdf).hexdigest() == statement.pdf_en_sha256

    if TOO_WIDE:
        print("treasury pages wider than 1,024 px:", ", ".join(sorted(TOO_WIDE)))
