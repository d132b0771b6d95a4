"""The billing treasury over HTTP: who sees it, receipts by hand with step-up and four eyes, camt.054, pain.008,
cutting tiers payant for an overdue insurer."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pyotp
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from rempart.accounting import books
from rempart.accounting import service as accounting
from rempart.accounts.models import Role, SecurityEvent
from rempart.billing.models import BillingContract, CollectionFile, Receipt
from rempart.surveillance.models import Switch
from rempart.testing import login, make_user

from .receivables_support import INSURER_IBAN, accepted_claim, camt054_credits, contract, statement

BASE = "/operateur/facturation/tresorerie/"
pytestmark = pytest.mark.django_db


def _member(cast, email: str, role: str = Role.TREASURY):
    secret = pyotp.random_base32()
    user = make_user(email, cast.operator, role, totp_secret=secret)
    cast.secrets[email] = secret
    return user


def browser_of(client_class, cast, user):
    browser = client_class()
    login(browser, user, cast.secrets[user.email])
    return browser


def text(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def owed(cast):
    insurer = cast.insurer.insurer
    accepted_claim(insurer, cast.optician, 50_000, timezone.localdate() - dt.timedelta(days=70))
    return insurer, statement(insurer, 50_000, due=timezone.localdate() - dt.timedelta(days=40))


def test_only_operator_staff_see_the_treasury(cast, client_class, owed):
    treasurer = _member(cast, "t1@operator.test")
    support = _member(cast, "support@operator.test", Role.SUPPORT)
    pages = [BASE, f"{BASE}encaissements/", f"{BASE}prelevements/"]
    browsers = {user: browser_of(client_class, cast, user) for user in (treasurer, cast.admin, support)}
    for user, browser in browsers.items():
        assert all(browser.get(url).status_code == 200 for url in pages), user.email
    page = text(browsers[treasurer].get(BASE))
    assert "Mutuelle Test (123456789)" in page and "500,00" in page and "40 j" in page
    assert f'href="{BASE}"' in page  # the nav link
    assert browsers[support].get(f"{BASE}encaissements/saisir/").status_code == 404  # seeing is not recording
    for user in (cast.owner, cast.staff, cast.insurer_member):
        browser = browser_of(client_class, cast, user)
        assert all(browser.get(url).status_code == 404 for url in pages), user.email
        assert f'href="{BASE}"' not in text(browser.get("/"))
    assert client_class().get(BASE).status_code == 302


def test_manual_receipt_four_eyes_through_the_console(cast, client_class, owed, settings):
    settings.REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS = 10_000
    insurer, billed = owed
    first, second = _member(cast, "t1@operator.test"), _member(cast, "t2@operator.test")
    browser = browser_of(client_class, cast, first)
    form = {"insurer": insurer.pk, "statement": billed.number, "amount": "300,00",
            "received_on": timezone.localdate().isoformat(), "reference": "VIR 2026-77"}  # fmt: skip
    assert browser.post(f"{BASE}encaissements/saisir/", form).status_code == 302
    receipt = Receipt.objects.get()
    assert receipt.transaction is None and receipt.amount_cents == 30_000
    assert "Approuver" not in text(browser.get(BASE))  # not for the one who entered it
    assert browser.post(f"{BASE}encaissements/{receipt.pk}/approuver/").status_code == 302
    receipt.refresh_from_db()
    assert receipt.transaction is None

    other = browser_of(client_class, cast, second)
    assert other.post(f"{BASE}encaissements/{receipt.pk}/approuver/").status_code == 302
    receipt.refresh_from_db()
    assert receipt.approved_by == second and receipt.transaction is not None
    assert books.balance(accounting.insurer_receivable(insurer)) == 20_000

    bad = other.post(f"{BASE}encaissements/saisir/", {**form, "amount": "-3", "statement": "NOPE"})
    assert bad.status_code == 400 and "Montant illisible" in text(bad) and "Aucun relevé" in text(bad)


def test_a_stale_second_factor_is_asked_again(cast, client_class, owed, settings):
    treasurer = _member(cast, "t1@operator.test")
    browser = browser_of(client_class, cast, treasurer)
    settings.REMPART_STEP_UP_SECONDS = 0
    for url in (f"{BASE}encaissements/saisir/", f"{BASE}encaissements/importer/"):
        response = browser.get(url)
        assert response.status_code == 302 and "/accounts/" in response.url
    response = browser.post(f"{BASE}prelevements/", {"collection_date": "2099-01-01"})
    assert response.status_code == 302 and not CollectionFile.objects.exists()


def test_camt054_import_through_the_console(cast, client_class, owed):
    _insurer, billed = owed
    browser = browser_of(client_class, cast, _member(cast, "t1@operator.test"))
    good = camt054_credits([{"amount": 50_000, "e2e": billed.number}])
    response = browser.post(f"{BASE}encaissements/importer/", {"file": SimpleUploadedFile("n.xml", good)})
    assert response.status_code == 302 and Receipt.objects.count() == 1
    again = browser.post(f"{BASE}encaissements/importer/", {"file": SimpleUploadedFile("n.xml", good)})
    assert again.status_code == 400 and "déjà été importé" in text(again)
    broken = browser.post(f"{BASE}encaissements/importer/", {"file": SimpleUploadedFile("b.xml", b"<x")})
    assert broken.status_code == 400 and "Fichier illisible" in text(broken)
    assert Receipt.objects.count() == 1
    assert "Avis de crédit (camt.054)" in text(browser.get(f"{BASE}encaissements/"))


def test_collection_file_made_and_downloaded(cast, client_class, owed):
    insurer, billed = owed
    contract(insurer)
    browser = browser_of(client_class, cast, _member(cast, "t1@operator.test"))
    page = text(browser.get(f"{BASE}prelevements/"))
    assert billed.number in page and INSURER_IBAN not in page and "FR76 **** 0185" in page
    later = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    assert browser.post(f"{BASE}prelevements/", {"collection_date": later}).status_code == 302
    made = CollectionFile.objects.get()
    download = browser.get(f"{BASE}prelevements/{made.reference}/fichier/")
    assert download.status_code == 200 and download.content == bytes(made.file_content)
    assert SecurityEvent.objects.filter(tag="billing.collection_downloaded").exists()
    refused = browser.post(f"{BASE}prelevements/", {"collection_date": later})
    assert refused.status_code == 400 and "Aucun relevé à prélever" in text(refused)


def test_switch_off_from_the_treasury(cast, client_class, owed):
    insurer, _billed = owed
    BillingContract.objects.create(insurer=insurer, overdue_alert_days=30)
    browser = browser_of(client_class, cast, _member(cast, "t1@operator.test"))
    assert "Couper le tiers payant" in text(browser.get(BASE))
    assert (
        browser_of(client_class, cast, cast.owner).post(f"{BASE}assureurs/{insurer.pk}/couper/").status_code
        == 404
    )
    assert browser.post(f"{BASE}assureurs/{insurer.pk}/couper/", {"reason": "Retard"}).status_code == 302
    switch = Switch.objects.get()
    assert switch.target == Switch.Target.INSURER and switch.insurer == insurer and switch.active
    assert "tiers payant coupé" in text(browser.get(BASE))


def test_the_overdue_alert_in_the_surveillance_queue_leads_to_the_insurer_switch(cast, client_class, owed):
    from rempart.billing import overdue

    insurer, _billed = owed
    BillingContract.objects.create(insurer=insurer, overdue_alert_days=30)
    alert = overdue.raise_alerts()[0]
    analyst = browser_of(client_class, cast, cast.analyst)
    queue = text(analyst.get("/operateur/surveillance/"))
    assert f'id="alert-{alert.pk}"' in queue and "assureur en retard de paiement" in queue
    assert "?target=insurer&amc_number=123456789" in queue
    panel = analyst.get("/operateur/surveillance/coupures/?target=insurer&amc_number=123456789")
    assert panel.status_code == 200
    response = analyst.post(
        "/operateur/surveillance/coupures/",
        {
            "target": "insurer",
            "amc_number": "123456789",
            "reason": "Retard de paiement",
            "channel": "",
            "domain": "",
        },
    )
    assert response.status_code == 302
    assert Switch.objects.get().insurer == insurer


def _waiting(cast, settings, owed, author):
    settings.REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS = 10_000
    insurer, billed = owed
    from rempart.billing import receipts

    return receipts.record_manual_receipt(
        insurer=insurer, statement=billed, amount_cents=30_000, received_on=timezone.localdate(),
        reference="VIR 2026-78", user=author,
    )  # fmt: skip


def test_a_waiting_receipt_discarded_through_the_console(cast, client_class, owed, settings):
    from rempart.accounting.models import Transaction

    author, other = _member(cast, "t1@operator.test"), _member(cast, "t2@operator.test")
    receipt = _waiting(cast, settings, owed, author)
    url = f"{BASE}encaissements/{receipt.pk}/ecarter/"
    browser = browser_of(client_class, cast, author)
    assert f'action="{url}"' in text(browser.get(BASE))  # its author may discard it
    before = Transaction.objects.count()

    support = browser_of(client_class, cast, _member(cast, "support@operator.test", Role.SUPPORT))
    assert support.post(url, {"reason": "non"}).status_code == 404  # outside the treasury: refused
    assert browser_of(client_class, cast, cast.admin).post(url, {"reason": "non"}).status_code == 404
    empty = browser.post(url, {"reason": " "}, follow=True)
    assert "Indiquez pourquoi" in text(empty)
    receipt.refresh_from_db()
    assert receipt.discarded_at is None

    settings.REMPART_STEP_UP_SECONDS = 0
    stale = browser.post(url, {"reason": "doublon"})
    assert stale.status_code == 302 and "/accounts/" in stale.url
    receipt.refresh_from_db()
    assert receipt.discarded_at is None
    settings.REMPART_STEP_UP_SECONDS = 600

    second = browser_of(client_class, cast, other)
    assert second.post(url, {"reason": "virement jamais reçu"}).status_code == 302
    receipt.refresh_from_db()
    assert receipt.discarded_by == other and receipt.transaction_id is None
    approve = second.post(f"{BASE}encaissements/{receipt.pk}/approuver/", follow=True)
    assert "écarté" in text(approve)
    receipt.refresh_from_db()
    assert receipt.transaction_id is None and Transaction.objects.count() == before
    listing = text(second.get(f"{BASE}encaissements/"))
    assert "écarté (virement jamais reçu)" in listing
    assert "Aucun encaissement en attente." in text(second.get(BASE))
    assert SecurityEvent.objects.filter(tag="billing.receipt_discarded").count() == 1


def test_a_returned_direct_debit_shows_its_reason_as_a_label(cast, client_class, owed):
    from rempart.billing import collection, receipts

    from .bank_credit_support import camt054_returns

    insurer, billed = owed
    contract(insurer)
    collection.make_collection_file(collection_date=timezone.localdate() + dt.timedelta(days=2))
    receipts.import_camt054(camt054_credits([{"amount": 50_000, "e2e": billed.number}]))
    browser = browser_of(client_class, cast, _member(cast, "t1@operator.test"))
    response = browser.post(
        f"{BASE}encaissements/importer/",
        {"file": SimpleUploadedFile("r.xml", camt054_returns([{"amount": 50_000, "e2e": billed.number,
                                                                "reason": "MD01"}]))},
        follow=True,
    )  # fmt: skip
    page = text(response)
    assert "1 prélèvement(s) rejeté(s)" in page and "rejeté le 01/12/2026" in page
    assert "Pas de mandat valable (MD01)" in page and ">MD01<" not in page
    english = browser_of(client_class, cast, cast.admin)
    english.cookies["django_language"] = "en"
    listing = english.get(f"{BASE}encaissements/", HTTP_ACCEPT_LANGUAGE="en")
    assert "No valid mandate (MD01)" in text(listing)
    assert books.balance(accounting.insurer_receivable(insurer)) == 50_000


def test_the_collection_page_shows_the_scheme(cast, client_class, owed):
    insurer, _billed = owed
    contract(insurer, sepa_scheme="B2B")
    page = text(browser_of(client_class, cast, _member(cast, "t1@operator.test")).get(f"{BASE}prelevements/"))
    assert "<td>B2B</td>" in page
