"""The operator's statements console (who sees it, list, detail, PDF in the reader's language checked against
its digest, the detail file, the correction form with step-up, English) and the ``rempart billing`` command."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from html import unescape
from io import StringIO

import pyotp
import pytest
from django.core.management import CommandError, call_command

from rempart.accounts.models import Role, SecurityEvent
from rempart.authorizations.templatetags.money import euros
from rempart.billing.models import Statement
from rempart.billing.statements import prepare_statements
from rempart.billing.tests.conftest import OCT_1, OCT_31, accept, credit, money_ok, paid
from rempart.billing.tests.tamper_support import forged
from rempart.ledger.models import Disclosure
from rempart.testing import login, make_user

pytestmark = pytest.mark.django_db
CONSOLE = "/operateur/facturation/"


@pytest.fixture
def statement(cast, amc, default_fees) -> Statement:
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    credit(claim, 1_000, dt.date(2026, 10, 12))
    (issued,) = prepare_statements(OCT_1, OCT_31, user=cast.admin)
    return issued


def person(client_class, cast, user):
    browser = client_class()
    login(browser, user, cast.secrets[user.email])
    return browser


def test_only_operator_staff_reach_the_console(cast, client_class, statement):
    pages = [CONSOLE, f"{CONSOLE}{statement.number}/", f"{CONSOLE}{statement.number}/pdf/"]
    admin = person(client_class, cast, cast.admin)
    assert all(admin.get(url).status_code == 200 for url in pages)
    assert f'href="{CONSOLE}"' in admin.get("/").content.decode()
    for user in (cast.analyst, cast.owner, cast.insurer_member):
        browser = person(client_class, cast, user)
        assert all(browser.get(url).status_code == 404 for url in pages), user.email
        assert f'href="{CONSOLE}"' not in browser.get("/").content.decode()
    assert client_class().get(CONSOLE).status_code == 302


def test_list_and_detail_show_the_figures(cast, client_class, statement):
    admin = person(client_class, cast, cast.admin)
    listing = unescape(admin.get(CONSOLE).content.decode())
    assert statement.number in listing and "Relevés assureurs" in listing
    assert unescape(admin.get(f"{CONSOLE}?assureur=999999999").content.decode()).count("REL-") == 0
    detail = unescape(admin.get(f"{CONSOLE}{statement.number}/").content.decode())
    assert "100,00\u00a0€" in detail and "-10,00\u00a0€" in detail  # paid, credit note
    assert statement.pdf_sha256 in detail and statement.pdf_en_sha256 in detail
    assert "Optique" in detail and ">OPTI<" not in detail  # domains by name, never their code
    assert admin.get(f"{CONSOLE}REL-000000000-20261031-1/").status_code == 404


def test_pdf_download_checks_the_digest(cast, client_class, statement):
    admin = person(client_class, cast, cast.admin)
    response = admin.get(f"{CONSOLE}{statement.number}/pdf/")
    assert response["Content-Type"] == "application/pdf"
    assert (
        hashlib.sha256(response.content).hexdigest() == statement.pdf_sha256 == response["X-Content-SHA256"]
    )
    assert SecurityEvent.objects.filter(tag="billing.statement_downloaded").count() == 1
    forged(statement, pdf_content=b"%PDF-forged")
    refused = admin.get(f"{CONSOLE}{statement.number}/pdf/")
    assert refused.status_code == 409 and "empreinte" in unescape(refused.content.decode())
    assert SecurityEvent.objects.filter(tag="billing.statement_tampered").count() == 1


def test_console_in_english(cast, client_class, statement):
    admin = person(client_class, cast, cast.admin)
    page = unescape(admin.get(f"{CONSOLE}{statement.number}/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert "Insurer statements" in page and "Total due" in page


def test_command_prepare_list_show_and_replay(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    out = StringIO()
    call_command("billing", "prepare", "--period", "2026-10", stdout=out)
    assert "REL-123456789-20261031-1" in out.getvalue() and "100,80" in out.getvalue()
    again = StringIO()
    call_command("billing", "prepare", "--period", "2026-10", "--insurer", "123456789", stdout=again)
    assert Statement.objects.count() == 1 and "REL-123456789-20261031-1" in again.getvalue()
    listing = StringIO()
    call_command("billing", "list", "--period", "2026-10", stdout=listing)
    assert "REL-123456789-20261031-1" in listing.getvalue()
    shown = StringIO()
    call_command("billing", "show", "REL-123456789-20261031-1", stdout=shown)
    assert "fees 0,80" in shown.getvalue() and "1 invoices" in shown.getvalue()
    money_ok()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["prepare", "--period", "2026-13"], "n'existe pas"),
     (["prepare", "--period", "novembre"], "AAAA-MM"),
     (["prepare", "--period", "2026-10", "--insurer", "000000000"], "no insurer"),
     (["prepare", "--period", "2026-10", "--as-of", "2026-10-31"], "lendemain"),
     (["prepare", "--period", "2026-10", "--as-of", "31/10/2026"], "YYYY-MM-DD"),
     (["show", "REL-X"], "no statement")],
)  # fmt: skip
def test_command_refusals_are_clear(cast, amc, args, message):
    with pytest.raises(CommandError) as refused:
        call_command("billing", *args)
    assert message in str(refused.value)
    assert Statement.objects.count() == 0


def test_command_names_insurers_without_contract(cast, amc, default_fees):
    from rempart.registry.models import Insurer

    Insurer.objects.create(amc_number="555555555", name="Sans Contrat", kind="mutuelle")
    out = StringIO()
    call_command("billing", "prepare", "--period", "2026-10", stdout=out)
    assert "no billing contract: 555555555" in out.getvalue()


# --- the PDF in the reader's language ----------------------------------------------------------------------


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_pdf_is_rendered_at_issue_in_french_and_english_with_the_same_figures(statement):
    french, english = pdf_text(bytes(statement.pdf_content)), pdf_text(bytes(statement.pdf_en_content))
    assert hashlib.sha256(bytes(statement.pdf_en_content)).hexdigest() == statement.pdf_en_sha256
    assert statement.pdf_en_sha256 != statement.pdf_sha256
    assert "du 1 octobre 2026 au 31 octobre 2026" in french and "Total dû" in french
    assert "from 1 October 2026 to 31 October 2026" in english and "Total due" in english
    assert "100,00" in french and "-10,00" in french and "90,75" in french  # paid, credit note, total
    assert "€100.00" in english and "-€10.00" in english and "€90.75" in english
    assert "Optique" in french and "Optical" in english
    for code in ("OPTI", "rights_check", "share_cents", "by_domain"):
        assert code not in french and code not in english
    for word in ("Échéance", "Payé", "Frais de gestion", "lignes", "Période"):
        assert word not in english, word


def test_each_reader_gets_the_pdf_of_their_language_digest_checked(cast, client_class, statement):
    admin = person(client_class, cast, cast.admin)
    url = f"{CONSOLE}{statement.number}/pdf/"
    french, english = admin.get(url), admin.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert french.content == bytes(statement.pdf_content) and french["Content-Language"] == "fr"
    assert english.content == bytes(statement.pdf_en_content) and english["Content-Language"] == "en"
    assert english["X-Content-SHA256"] == statement.pdf_en_sha256
    assert admin.get(f"{url}?langue=en").content == english.content  # the other language, asked for
    assert admin.get(f"{url}?langue=xx").content == french.content
    downloads = SecurityEvent.objects.filter(tag="billing.statement_downloaded")
    assert downloads.count() == 4 and downloads.filter(details__language="en").count() == 2
    # The English copy altered: refused (409), recorded; the French one still served.
    forged(statement, pdf_en_content=b"%PDF-forged")
    refused = admin.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 409 and "digest" in unescape(refused.content.decode())
    assert SecurityEvent.objects.filter(tag="billing.statement_tampered", details__language="en").count() == 1
    assert admin.get(url).status_code == 200


def test_a_statement_issued_before_english_pdfs_is_served_in_french(cast, client_class, statement):
    forged(statement, pdf_en_content=None, pdf_en_sha256="")
    admin = person(client_class, cast, cast.admin)
    response = admin.get(f"{CONSOLE}{statement.number}/pdf/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.content == bytes(statement.pdf_content) and response["Content-Language"] == "fr"


# --- the detail file from the console ----------------------------------------------------------------------


@pytest.fixture
def _billing_dir(settings, tmp_path):
    settings.REMPART_BILLING_DIR = str(tmp_path / "billing")


def test_the_console_serves_the_detail_file_with_step_up_and_records_it(
    cast, client_class, statement, settings, _billing_dir
):
    admin = person(client_class, cast, cast.admin)
    page = admin.get(f"{CONSOLE}{statement.number}/").content.decode()
    assert f'href="{CONSOLE}{statement.number}/detail.csv"' in page
    response = admin.get(f"{CONSOLE}{statement.number}/detail.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    b"".join(response.streaming_content)
    statement.refresh_from_db()
    assert response["X-Content-SHA256"] == statement.detail_sha256
    row = Disclosure.objects.get(purpose="billing", beneficiary_id__isnull=True)
    assert row.channel == "console" and row.user_id == cast.admin.pk
    assert f"billing_detail:{statement.number}" in row.fields
    assert SecurityEvent.objects.filter(tag="billing.detail_downloaded", user=cast.admin).count() == 1
    settings.REMPART_STEP_UP_SECONDS = 0  # the login's proof is stale: asked again, nothing served
    stale = admin.get(f"{CONSOLE}{statement.number}/detail.csv")
    assert stale.status_code == 302 and "/accounts/2fa/reauthenticate/" in stale.url
    assert Disclosure.objects.filter(purpose="billing", beneficiary_id__isnull=True).count() == 1
    for user in (cast.owner, cast.insurer_member, cast.analyst):
        assert (
            person(client_class, cast, user).get(f"{CONSOLE}{statement.number}/detail.csv").status_code == 404
        )


def test_an_altered_detail_file_is_refused_in_the_console(cast, client_class, statement, _billing_dir):
    from rempart.billing import detail

    written = detail.write_detail(statement)
    os.chmod(written.path, 0o640)
    with open(written.path, "a", encoding="utf-8") as handle:
        handle.write("forged;row\n")
    admin = person(client_class, cast, cast.admin)
    refused = admin.get(f"{CONSOLE}{statement.number}/detail.csv")
    assert refused.status_code == 409 and "empreinte" in unescape(refused.content.decode())
    assert SecurityEvent.objects.filter(tag="billing.detail_tampered").count() == 1
    assert not Disclosure.objects.filter(purpose="billing", beneficiary_id__isnull=True).exists()


# --- the correction form -----------------------------------------------------------------------------------


def treasurer_of(cast):
    secret = pyotp.random_base32()
    user = make_user("t1@operator.test", cast.operator, Role.TREASURY, totp_secret=secret)
    cast.secrets[user.email] = secret
    return user


def test_only_treasury_and_admin_may_correct_and_never_without_a_fresh_second_factor(
    cast, client_class, statement, settings
):
    url = f"{CONSOLE}{statement.number}/rectifier/"
    for user in (cast.analyst, cast.owner, cast.insurer_member):
        browser = person(client_class, cast, user)
        assert browser.get(url).status_code == 404, user.email
        assert browser.post(url, {"reason": "x", "confirm": "on"}).status_code == 404
    admin = person(client_class, cast, cast.admin)
    assert f'href="{url}"' in admin.get(f"{CONSOLE}{statement.number}/").content.decode()
    assert admin.get(url).status_code == 200
    settings.REMPART_STEP_UP_SECONDS = 0
    asked = admin.post(url, {"reason": "avoir tardif", "confirm": "on"})
    assert asked.status_code == 302 and "/accounts/2fa/reauthenticate/" in asked.url
    assert Statement.objects.count() == 1


def test_support_sees_the_statement_but_may_not_correct_it(cast, client_class, statement):
    secret = pyotp.random_base32()
    support = make_user("support@operator.test", cast.operator, Role.SUPPORT, totp_secret=secret)
    cast.secrets[support.email] = secret
    browser = person(client_class, cast, support)
    page = browser.get(f"{CONSOLE}{statement.number}/").content.decode()
    assert f"{statement.number}/rectifier/" not in page
    assert browser.get(f"{CONSOLE}{statement.number}/rectifier/").status_code == 404
    assert (
        browser.post(f"{CONSOLE}{statement.number}/rectifier/", {"reason": "x", "confirm": "on"}).status_code
        == 404
    )
    assert Statement.objects.count() == 1


def test_the_form_says_why_nothing_is_issued_in_french_and_english(cast, client_class, statement):
    treasurer = treasurer_of(cast)
    browser = person(client_class, cast, treasurer)
    url = f"{CONSOLE}{statement.number}/rectifier/"
    empty = browser.post(url, {"reason": "  ", "confirm": ""})
    body = unescape(empty.content.decode())
    assert empty.status_code == 400 and "Indiquez le motif" in body and "Cochez la confirmation" in body
    nothing = browser.post(url, {"reason": "contrôle", "confirm": "on"})
    assert nothing.status_code == 400
    assert f"Rien à rectifier : tout ce que la période {statement.number} devait facturer" in unescape(
        nothing.content.decode()
    )
    english = browser.post(url, {"reason": "check", "confirm": "on"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "Nothing to correct" in unescape(english.content.decode())
    assert "Rien" not in unescape(english.content.decode())
    assert Statement.objects.count() == 1


def test_a_correction_bills_the_late_credit_note_and_is_listed_under_its_original(
    cast, client_class, statement
):
    claim_id = statement.items.first().claim_id
    from rempart.claims.models import Claim

    credit(Claim.objects.get(pk=claim_id), 2_000, dt.date(2026, 10, 20))  # posted after the statement
    treasurer = treasurer_of(cast)
    browser = person(client_class, cast, treasurer)
    response = browser.post(
        f"{CONSOLE}{statement.number}/rectifier/",
        {"reason": "Avoir A-1 passé après émission", "confirm": "on"},
    )
    correction = Statement.objects.get(kind=Statement.Kind.CORRECTION)
    assert response.status_code == 302 and response.url == f"{CONSOLE}{correction.number}/"
    assert correction.corrects == statement and correction.issued_by == treasurer
    assert correction.reversals_cents == -2_000 and correction.number == "REL-123456789-20261031-2"
    assert correction.pdf_sha256 and correction.pdf_en_sha256
    page = unescape(browser.get(response.url).content.decode())
    assert "Avoir A-1 passé après émission" in page and f"{CONSOLE}{statement.number}/" in page
    original = unescape(browser.get(f"{CONSOLE}{statement.number}/").content.decode())
    assert correction.number in original and "Avoir A-1 passé après émission" in original
    assert euros(correction.total_cents) in original  # its total, beside its number and reason
    english = pdf_text(bytes(correction.pdf_en_content))
    assert "Correction statement" in english and "Avoir A-1 passé après émission" in english
    assert SecurityEvent.objects.filter(tag="billing.statement_issued", user=treasurer).count() == 1
    money_ok()
