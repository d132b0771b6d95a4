"""The payments pages in a real Chromium, on the demo's own data (``demo_setup``): the README tour, click by click.

The optician's owner (password + TOTP) opens *Paiements*, a payment and its statement, and downloads the PDF
and the CSV; the admin who prepared the waiting run is told why they may not approve it; the treasurer opens it,
is asked for the second factor again, approves, and downloads the pain.001 (valid against the XSD, the run's
count and total); a run the treasurer then prepares is one a second member of the treasury must approve.
No IBAN in clear on any page. Surveillance stays on, as in the demo.
"""

from __future__ import annotations

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from lxml import etree

from rempart.accounts import demo
from rempart.accounts.models import SecurityEvent, User
from rempart.accounts.tests import browser
from rempart.incidents.tests.test_incident_browser import VIEWPORT, another_tab, assert_clean, download
from rempart.lib.crypto import field_cipher
from rempart.payments import demo as payments_demo
from rempart.payments import sepa
from rempart.payments.models import FileDownload, PaymentRun
from rempart.payments.tests.returns_support import forget_payments
from rempart.registry.seeding import DEMO_ADHERENT
from rempart.testing import totp_code

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab

CONSOLE = "/operateur/paiements/"
PAIN = {"p": f"urn:iso:std:iso:20022:tech:xsd:{sepa.SCHEMA}"}


@pytest.fixture
def seeded(transactional_db):
    """The demo, as `python3 scripts/dev.py demo` seeds it (a smaller registry)."""
    call_command("demo_setup", beneficiaries=60, stdout=StringIO())
    yield {
        "approved": PaymentRun.objects.get(status=PaymentRun.Status.APPROVED),
        "waiting": PaymentRun.objects.get(status=PaymentRun.Status.PREPARED),
    }
    forget_payments()  # SQLite: before the ledger is wiped, which they point at


def log_in(tab, email: str) -> None:
    """The demo's password, then the TOTP code of the demo's secret: the browser lands on the home page."""
    page = tab.page
    page.set_viewport_size(VIEWPORT)
    tab.goto("/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    tab.click_and_wait(page.locator("main form button[type=submit]"), "/accounts/2fa/authenticate/")
    page.locator("#mfa-code-submit").locator("xpath=..").locator("input[name=code]").fill(
        totp_code(demo.demo_totp_secret(email))
    )
    with page.expect_navigation():
        page.locator("#mfa-code-submit").click()
    assert tab.path() == "/", tab.path()


def flat(text: str) -> str:
    """Page text with the thin and non-breaking spaces of French amounts made plain."""
    return text.replace("\u202f", "").replace("\u00a0", " ")


def test_the_owner_reads_a_statement_and_the_treasurer_approves_with_the_second_factor(
    tab, chromium_browser, base_url, seeded, settings
):
    approved, waiting = seeded["approved"], seeded["waiting"]
    paid = approved.payments.get()
    professional = paid.organisation.professional
    iban = field_cipher().decrypt("iban", professional.iban_cipher)
    page = tab.page

    # 1. The owner: Paiements → the payment → its statement, PDF and CSV. The waiting run is not shown.
    log_in(tab, demo.OPTICIAN_OWNER)
    page.get_by_role("link", name="Paiements", exact=True).first.click()
    tab.wait_for_path("/comptoir/paiements/")
    listing = flat(page.inner_text("#payments"))
    assert paid.reference in listing and "112,07 €" in listing and professional.masked_iban() in listing
    assert "Émis" in listing and waiting.reference not in listing
    tab.click_and_wait(
        page.get_by_role("link", name=paid.reference), f"/comptoir/paiements/{paid.reference}/"
    )
    assert flat(page.inner_text("#payment-amount")) == flat(page.inner_text("#payment-total")) == "112,07 €"
    lines = page.inner_text("#payment-lines")
    assert all(number in lines for number in ("F-DEMO-0001", "F-DEMO-0002", "F-DEMO-0003"))
    assert "Prise en charge déjà facturée" in lines  # the rejected invoice, with its reason
    tab.screenshot("payments-statement")
    pdf = download(tab, page.get_by_role("link", name="Relevé PDF"))
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    csv = download(tab, page.get_by_role("link", name="Relevé CSV")).decode("utf-8-sig")
    assert paid.reference in csv and "F-DEMO-0003" in csv and iban not in csv
    assert iban not in page.content()
    assert_clean(tab)

    # 2. The admin prepared the waiting run: its page says why they may not approve it, and offers no button.
    with another_tab(chromium_browser, base_url) as admin:
        log_in(admin, demo.OPERATOR_ADMIN)
        admin.goto(f"{CONSOLE}{waiting.reference}/")
        assert "Seul un membre de la trésorerie" in admin.page.inner_text("#approval-refusal")
        assert admin.page.locator("#approve-link").count() == 0
        admin.goto(f"{CONSOLE}{waiting.reference}/approuver/")
        assert "trésorerie" in admin.page.inner_text("#approve-refusal")
        assert admin.page.locator("#approve-form").count() == 0
        assert_clean(admin)

    # 3. The treasurer: the run, « Approuver… », the second factor again, approve, the file.
    with another_tab(chromium_browser, base_url) as treasury:
        log_in(treasury, demo.TREASURER)
        secret = demo.demo_totp_secret(demo.TREASURER)
        t = treasury.page
        t.get_by_role("link", name="Campagnes de paiement", exact=True).first.click()
        treasury.wait_for_path(CONSOLE)
        treasury.click_and_wait(
            t.get_by_role("link", name=waiting.reference), f"{CONSOLE}{waiting.reference}/"
        )
        assert flat(t.inner_text("#run-total")) == "123,00 €" and iban not in t.content()
        settings.REMPART_STEP_UP_SECONDS = 0  # the login's second factor is no longer fresh
        t.locator("#approve-link").click()
        t.wait_for_url(re.compile(r".*/accounts/2fa/reauthenticate/\?next=.*"), wait_until="domcontentloaded")
        settings.REMPART_STEP_UP_SECONDS = 300
        t.locator("input[name=code]").fill(totp_code(secret, 1))
        with t.expect_navigation():
            t.locator("input[name=code]").press("Enter")
        assert treasury.path() == f"{CONSOLE}{waiting.reference}/approuver/"
        assert t.inner_text("#approve-count") == "1"
        with t.expect_navigation():
            t.locator("#approve-submit").click()
        assert treasury.path() == f"{CONSOLE}{waiting.reference}/"
        assert f"Campagne {waiting.reference} approuvée" in t.inner_text("ul.messages")
        waiting.refresh_from_db()
        assert waiting.status == PaymentRun.Status.APPROVED and waiting.approved_by.email == demo.TREASURER
        assert t.inner_text("#run-sha256") == waiting.file_sha256
        treasury.screenshot("payments-run-approved")

        content = download(treasury, t.locator("#download-link"))
        assert content == bytes(waiting.file_content)
        assert hashlib.sha256(content).hexdigest() == waiting.file_sha256
        header = sepa.validate_pain001(content).find("p:CstmrCdtTrfInitn/p:GrpHdr", PAIN)
        assert header.findtext("p:MsgId", namespaces=PAIN) == waiting.reference
        assert int(header.findtext("p:NbOfTxs", namespaces=PAIN)) == waiting.transfer_count == 1
        assert header.findtext("p:CtrlSum", namespaces=PAIN) == "123.00"
        tree = etree.fromstring(content)
        assert tree.findtext(".//p:CdtrAcct/p:Id/p:IBAN", namespaces=PAIN) == iban  # only in the file
        assert FileDownload.objects.filter(run=waiting, user__email=demo.TREASURER).count() == 1
        tags = set(SecurityEvent.objects.filter(user__email=demo.TREASURER).values_list("tag", flat=True))
        assert {"mfa.step_up", "payments.run_approved", "payments.file_downloaded"} <= tags

        # 4. A run the treasurer prepares: the page says a second member of the treasury must approve it.
        another_invoice(paid.organisation)
        treasury.goto(CONSOLE)
        treasury.click_and_wait(t.locator("#prepare-link"), f"{CONSOLE}preparer/")
        with t.expect_navigation():
            t.locator("#prepare-submit").click()
        own = PaymentRun.objects.get(status=PaymentRun.Status.PREPARED)
        assert own.prepared_by.email == demo.TREASURER and treasury.path() == f"{CONSOLE}{own.reference}/"
        assert "Vous avez préparé cette campagne" in t.inner_text("#approval-refusal")
        assert t.locator("#approve-link").count() == 0
        treasury.goto(f"{CONSOLE}{own.reference}/approuver/")
        assert "quatre yeux" in t.inner_text("#approve-refusal") and t.locator("#approve-form").count() == 0
        own.refresh_from_db()
        assert own.status == PaymentRun.Status.PREPARED
        assert_clean(treasury)
    call_command("accounts", "check", stdout=StringIO())


def another_invoice(optician) -> None:
    """The tour's own patient (Camille, DEMO-0001) gets glasses too: something new to pay."""
    camille = payments_demo.Glasses("F-NAV-0006", "ASSURE", "Camille", "F", "1985-05-12", "2850575123456",
                                    payments_demo.ADULT, adherent=DEMO_ADHERENT)  # fmt: skip
    insurer = User.objects.get(email="donnees@demo.rempart.test").membership.organisation.insurer
    claim = payments_demo.deliver_and_invoice(
        payments_demo.import_actor(optician), insurer, camille, timezone.localdate()
    )
    assert claim.status == "accepted"
