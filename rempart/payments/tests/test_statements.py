"""Remittance statements: the lines add up to the transfer, in the reader's language, as a PDF that opens and a
CSV a spreadsheet cannot run; no IBAN in clear and nothing of a patient.

The payments are built here directly (runs, transfers, statement lines for claims made with the factory below),
so that these tests do not depend on how payment runs are prepared. test_portal and test_api reuse the fixtures.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import time

import pytest
from django.utils import timezone
from pypdf import PdfReader

from rempart.accounting import service as accounting
from rempart.accounts.models import Organisation
from rempart.claims.models import Claim
from rempart.lib.crypto import field_cipher
from rempart.payments import statements
from rempart.payments.models import Payment, PaymentItem, PaymentRun
from rempart.registry.bank_details import mask_iban

IBAN = "FR7630006000011234567890189"  # synthetic, valid key
OTHER_IBAN = "FR1420041010050500013M02606"
EXECUTED = dt.date(2026, 12, 3)
_numbers = itertools.count(1)

Kind = PaymentItem.Kind


def make_claim(
    organisation: Organisation,
    number: str,
    *,
    status: str = Claim.Status.ACCEPTED,
    claimed: int = 10_000,
    accepted: int | None = None,
    reasons: tuple[str, ...] = (),
    review_reason: str = "",
    care_date: dt.date = dt.date(2026, 11, 20),
    invoice_date: dt.date = dt.date(2026, 11, 21),
) -> Claim:
    """A claim as the claims service stores it (no identity: an internal beneficiary id, codes and amounts)."""
    if accepted is None:
        accepted = claimed if status == Claim.Status.ACCEPTED else 0
    insurer = Organisation.objects.get(kind="insurer").insurer
    return Claim.objects.create(
        organisation=organisation, invoice_number=number, channel=Claim.Channel.API, insurer=insurer,
        beneficiary_id=424242, domain="OPTI", invoice_date=invoice_date, care_date=care_date, status=status,
        total_price_cents=claimed + 5000, total_amo_cents=5000, claimed_cents=claimed, accepted_cents=accepted,
        decision={"status": status, "lines": [], "reasons": list(reasons), "review_reasons": [],
                  "explanation": ""},
        rule_version="test", data_version="test", request_fingerprint=f"fp-{number}", ledger_reference="",
        review_reason=review_reason,
    )  # fmt: skip


def make_run(*, execution_date: dt.date = EXECUTED, status: str = PaymentRun.Status.APPROVED) -> PaymentRun:
    n = next(_numbers)
    return PaymentRun.objects.create(
        reference=f"RUN-TEST-{n:05d}",
        cutoff=execution_date - dt.timedelta(days=1),
        execution_date=execution_date,
        status=status,
        prepared_at=timezone.now(),
    )


def make_payment(
    organisation: Organisation,
    lines: list[tuple[str, Claim | None, int]],
    *,
    run: PaymentRun | None = None,
    reference: str | None = None,
    status: str = Payment.Status.SENT,
    iban: str = IBAN,
    amount: int | None = None,
    **fields,
) -> Payment:
    """A transfer and its statement lines (kind, claim, amount); its amount is their sum unless given."""
    run = run or make_run()
    payment = Payment.objects.create(
        run=run, organisation=organisation, reference=reference or f"PAY-TEST-{next(_numbers):06d}",
        amount_cents=sum(cents for _k, _c, cents in lines) if amount is None else amount, status=status,
        creditor_name="OPTIQUE DU TEST", iban_cipher=field_cipher().encrypt("iban", iban) if iban else None,
        iban_masked=mask_iban(iban) if iban else "", bic="AGRIFRPPXXX" if iban else "", **fields,
    )  # fmt: skip
    PaymentItem.objects.bulk_create(
        [
            PaymentItem(payment=payment, kind=kind, claim=claim, amount_cents=cents)
            for kind, claim, cents in lines
        ]
    )
    return payment


def returned_transfer(organisation: Organisation, amount: int) -> tuple[Payment, object]:
    """An earlier transfer the bank rejected, and the reversal transaction a later statement takes back."""
    earlier = make_payment(
        organisation, [], amount=amount, status=Payment.Status.RETURNED, return_reason="AC04",
        run=make_run(execution_date=EXECUTED - dt.timedelta(days=7)),
    )  # fmt: skip
    reversal = accounting.post(
        accounting.Kind.PAYMENT_RETURNED,
        [(accounting.operator_bank(), -amount), (accounting.professional_payable(organisation), amount)],
        idempotency_key=f"test-return:{earlier.pk}",
        source=("payment", str(earlier.pk)),
    )
    Payment.objects.filter(pk=earlier.pk).update(return_transaction=reversal)
    return earlier, reversal


@pytest.fixture
def statement_payment(cast) -> Payment:
    """The optician's transfer: two invoices paid (one reduced), a review, a credit note, a returned transfer
    taken back and a rejected invoice — 100,00 + 80,00 + 15,00 − 20,00 + 42,00 + 0 = 217,00 €."""
    org = cast.optician
    paid = make_claim(org, "F2026-0001", claimed=10_000)
    reduced = make_claim(
        org, "F2026-0002", status=Claim.Status.PARTIAL, claimed=12_000, accepted=8_000,
        reasons=("reduced_to_guarantee",),
    )  # fmt: skip
    reviewed = make_claim(org, "F2026-0003", claimed=1_500, review_reason="amount_above_threshold")
    credited = make_claim(org, "F2026-0000", claimed=5_000)
    rejected = make_claim(
        org, "F2026-0004", status=Claim.Status.REJECTED, claimed=9_000, reasons=("rights_closed",)
    )
    _earlier, reversal = returned_transfer(org, 4_200)
    payment = make_payment(
        org,
        [(Kind.CLAIM, paid, 10_000), (Kind.CLAIM, reduced, 8_000), (Kind.REVIEW, reviewed, 1_500),
         (Kind.CREDIT_NOTE, credited, -2_000), (Kind.RETURN, None, 4_200), (Kind.REJECTED, rejected, 0)],
        reference="PAY-2026-12-03-0001",
    )  # fmt: skip
    PaymentItem.objects.filter(payment=payment, kind=Kind.RETURN).update(transaction=reversal)
    return payment


def pdf_text(content: bytes) -> str:
    """The PDF's text. ReportLab writes Helvetica's bullet (the IBAN mask's •) as WinAnsi code 0x7F, which
    viewers draw as a bullet and pypdf reads back as U+007F."""
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages).replace("\x7f", "•")
    return text.replace("\u202f", "").replace("\u00a0", " ")


def flat(text: str) -> str:
    """Text with its line breaks (a wrapped table cell) read as spaces."""
    return " ".join(text.split())


def csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())  # UTF-8 with BOM: spreadsheets read the accents right
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""), delimiter=";"))


def euros_of(cell: str) -> int:
    """ "-1234,50" or "-1234.50" → cents, exactly (no floats)."""
    sign = -1 if cell.startswith("-") else 1
    whole, rest = cell.lstrip("-").replace(",", ".").split(".")
    return sign * (int(whole) * 100 + int(rest))


# ---------------------------------------------------------------------------------------------- totals


def test_the_lines_add_up_to_the_transfer(statement_payment):
    statement = statements.build_statement(statement_payment, "fr")
    assert statement.total_cents == statement_payment.amount_cents == 21_700 and statement.balanced
    assert [line.kind for line in statement.lines] == [
        Kind.CLAIM, Kind.CLAIM, Kind.REVIEW, Kind.RETURN, Kind.CREDIT_NOTE, Kind.REJECTED
    ]  # fmt: skip
    assert sum(cents for _kind, _label, _n, cents in statement.subtotals()) == 21_700
    assert [(kind, n) for kind, _label, n, _cents in statement.subtotals()] == [
        (Kind.CLAIM, 2), (Kind.REVIEW, 1), (Kind.RETURN, 1), (Kind.CREDIT_NOTE, 1), (Kind.REJECTED, 1)
    ]  # fmt: skip
    reduced = next(line for line in statement.lines if line.invoice_number == "F2026-0002")
    assert (reduced.claimed_cents, reduced.accepted_cents, reduced.paid_cents) == (12_000, 8_000, 8_000)
    assert reduced.reasons == (("reduced_to_guarantee", "Ramené au montant de la garantie"),)
    credit = next(line for line in statement.lines if line.kind == Kind.CREDIT_NOTE)
    assert (credit.invoice_number, credit.paid_cents, credit.claimed_cents) == ("F2026-0000", -2_000, None)
    taken_back = next(line for line in statement.lines if line.kind == Kind.RETURN)
    assert taken_back.returned_reference.startswith("PAY-TEST-") and taken_back.paid_cents == 4_200


def test_the_csv_total_row_is_the_transfer_and_the_lines_sum_to_it(statement_payment):
    rows = csv_rows(statements.statement_csv(statements.build_statement(statement_payment, "fr")))
    header, lines, total = rows[0], rows[1:-1], rows[-1]
    paid = header.index("Payé sur ce relevé (€)")
    assert header[:4] == ["Référence du paiement", "Date d'exécution", "IBAN", "Facture"]
    assert len(lines) == 6 and all(row[0] == "PAY-2026-12-03-0001" for row in rows[1:])
    assert sum(euros_of(row[paid]) for row in lines) == euros_of(total[paid]) == 21_700
    assert total[4] == "Total du virement" and total[paid] == "217,00"
    assert all(row[1] == "2026-12-03" and row[2] == "FR76 •••• 0189" for row in rows[1:])
    reduced = next(row for row in lines if row[3] == "F2026-0002")
    assert reduced[5:10] == ["2026-11-20", "2026-11-21", "120,00", "80,00", "80,00"]
    assert reduced[-2:] == ["reduced_to_guarantee", "Ramené au montant de la garantie"]
    credit = next(row for row in lines if row[4] == "Avoir")
    assert credit[paid] == "-20,00"


def test_an_unbalanced_statement_says_so(cast):
    claim = make_claim(cast.optician, "F-GAP-1", claimed=5_000)
    payment = make_payment(cast.optician, [(Kind.CLAIM, claim, 5_000)], amount=6_000)
    statement = statements.build_statement(payment, "fr")
    assert not statement.balanced
    text = pdf_text(statements.statement_pdf(statement))
    assert "Écart" in text and "Contactez l'opérateur" in text


# ---------------------------------------------------------------------------------------------- PDF


def test_the_pdf_opens_and_shows_the_statement_in_french(statement_payment):
    content = statements.statement_pdf(statements.build_statement(statement_payment, "fr"))
    assert content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(content))
    assert reader.metadata.title == "Relevé de paiement PAY-2026-12-03-0001"
    text = pdf_text(content)
    for expected in (
        "Relevé de paiement", "Optique du Test", "750000010", "PAY-2026-12-03-0001", "03/12/2026",
        "217,00", "FR76 •••• 0189", "F2026-0001", "F2026-0002", "Ramené au montant de la garantie",
        "Droits non ouverts à la date des soins", "Total du virement", "-20,00", "Facture rejetée",
    ):  # fmt: skip
        assert expected in flat(text), expected


def test_the_statement_is_in_english_for_an_english_reader(statement_payment):
    statement = statements.build_statement(statement_payment, "en")
    text = flat(pdf_text(statements.statement_pdf(statement)))
    assert "Remittance statement" in text and "Reduced to the guarantee's amount" in text
    assert "Partially accepted" in text and "Rejected invoice" in text and "Transfer total" in text
    assert "Relevé de paiement" not in text and "Ramené au montant" not in text
    assert PdfReader(io.BytesIO(statements.statement_pdf(statement))).metadata.title.startswith("Remittance")
    rows = csv_rows(statements.statement_csv(statement))
    assert rows[0][:2] == ["Payment reference", "Execution date"] and rows[-1][9] == "217.00"
    assert "Credit note" in {row[4] for row in rows}


def test_a_long_statement_runs_over_pages_with_every_line(cast):
    claims = [make_claim(cast.optician, f"F-LONG-{n:04d}", claimed=1_000 + n) for n in range(600)]
    payment = make_payment(cast.optician, [(Kind.CLAIM, claim, claim.claimed_cents) for claim in claims])
    started = time.perf_counter()
    content = statements.statement_pdf(statements.build_statement(payment, "fr"))
    elapsed = time.perf_counter() - started
    reader = PdfReader(io.BytesIO(content))
    text = pdf_text(content)
    assert len(reader.pages) > 5 and all(f"F-LONG-{n:04d}" in text for n in (0, 299, 599))
    assert elapsed < 20, elapsed  # a big pharmacy's week, on a shared 2-core machine


# ---------------------------------------------------------------------------------------------- attacks


def test_the_csv_runs_no_formula(cast):
    """An invoice number or an unknown reason code (shown as itself) that a spreadsheet would run."""
    claim = make_claim(cast.optician, '=HYPERLINK("http://evil.test","x")', reasons=("+cmd|' /C calc'!A0",))
    at = make_claim(cast.optician, "@SUM(1+1)")
    payment = make_payment(cast.optician, [(Kind.CLAIM, claim, 10_000), (Kind.CLAIM, at, 10_000)])
    rows = csv_rows(statements.statement_csv(statements.build_statement(payment, "fr")))
    cells = [cell for row in rows for cell in row]
    assert '\'=HYPERLINK("http://evil.test","x")' in cells and "'@SUM(1+1)" in cells
    assert "'+cmd|' /C calc'!A0" in cells
    assert not any(cell and cell[0] in "=+@\t\r" for cell in cells)
    assert not any(cell.startswith("-") and not cell[1:].replace(",", "").isdigit() for cell in cells)


def test_no_iban_in_clear_in_the_statement(statement_payment):
    for language in ("fr", "en"):
        statement = statements.build_statement(statement_payment, language)
        for content in (
            pdf_text(statements.statement_pdf(statement)),
            statements.statement_csv(statement).decode("utf-8-sig"),
        ):
            compact = content.replace(" ", "").replace("\n", "")
            assert IBAN not in compact and IBAN[4:] not in compact and "30006000011234567890" not in compact
            assert "FR76 •••• 0189" in content


def test_a_held_transfer_says_why_and_is_not_a_gap(cast):
    """A held transfer carries no line: what is owed waits for a later run (rempart.payments.runs)."""
    payment = make_payment(
        cast.optician, [], amount=10_000, status=Payment.Status.HELD, iban="", held_reason="no_iban"
    )
    statement = statements.build_statement(payment, "fr")
    assert statement.held and statement.balanced
    text = flat(pdf_text(statements.statement_pdf(statement)))
    assert "Retenu" in text and "aucun IBAN enregistré" in text and "rien n'a été versé" in text
    assert "Écart" not in text


def test_a_returned_transfer_gives_the_bank_s_reason(cast):
    earlier, _reversal = returned_transfer(cast.optician, 3_000)
    text = flat(pdf_text(statements.statement_pdf(statements.build_statement(earlier, "fr"))))
    assert "Rejeté par la banque" in text and "Compte clôturé (AC04)" in text
