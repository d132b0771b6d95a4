"""The operator's statements console (who sees it, list, detail, PDF checked against its digest, English) and
the ``rempart billing`` command."""

from __future__ import annotations

import datetime as dt
import hashlib
from html import unescape
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rempart.accounts.models import SecurityEvent
from rempart.billing.models import Statement
from rempart.billing.statements import prepare_statements
from rempart.billing.tests.conftest import OCT_1, OCT_31, accept, credit, money_ok, paid
from rempart.testing import login

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
    assert statement.pdf_sha256 in detail and "OPTI" in detail
    assert admin.get(f"{CONSOLE}REL-000000000-20261031-1/").status_code == 404


def test_pdf_download_checks_the_digest(cast, client_class, statement):
    admin = person(client_class, cast, cast.admin)
    response = admin.get(f"{CONSOLE}{statement.number}/pdf/")
    assert response["Content-Type"] == "application/pdf"
    assert (
        hashlib.sha256(response.content).hexdigest() == statement.pdf_sha256 == response["X-Content-SHA256"]
    )
    assert SecurityEvent.objects.filter(tag="billing.statement_downloaded").count() == 1
    Statement.objects.filter(pk=statement.pk).update(pdf_content=b"%PDF-forged")
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
