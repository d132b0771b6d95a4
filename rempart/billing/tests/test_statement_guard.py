"""The database's guard on issued statements (migration billing 0004), on SQLite and PostgreSQL alike.

Raw SQL, as a careless hand or a compromised process with the application's database rights would write it:
once a statement has its PDF's SHA-256, its identity, amounts and PDF cannot change, it cannot be deleted, its
detail file and fee transaction are written once, and its items can be neither updated nor deleted. A
statement being prepared (no PDF yet) stays free, and its status follows its receipts.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.billing.models import Statement, StatementItem

from .conftest import OCT_1, OCT_31, accept, money_ok, paid
from .receivables_support import accepted_claim

pytestmark = pytest.mark.django_db


def _sql(statement: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _refused(statement: str, *params) -> None:
    with pytest.raises(IntegrityError, match="billing: "), transaction.atomic():
        _sql(statement, *params)


def _statement(insurer, *, issued: bool = True) -> Statement:
    return Statement.objects.create(
        number=f"REL-{insurer.amc_number}-20261031-{Statement.objects.count() + 1}", insurer=insurer,
        period_start=OCT_1, period_end=OCT_31, kind=Statement.Kind.CORRECTION if Statement.objects.exists()
        else Statement.Kind.REGULAR, paid_cents=10_000, total_cents=10_000, due_date=dt.date(2026, 11, 10),
        issued_at=timezone.now(), pdf_content=b"%PDF-1.4 issued" if issued else None,
        pdf_sha256="ab" * 32 if issued else "",
    )  # fmt: skip


@pytest.fixture
def issued(cast):
    insurer = cast.insurer.insurer
    tx = accepted_claim(insurer, cast.optician, 10_000, dt.date(2026, 10, 5))
    statement = _statement(insurer)
    StatementItem.objects.create(statement=statement, transaction=tx, claim_id=None, amount_cents=10_000)
    return statement


@pytest.mark.parametrize(
    "assignment",
    [
        "number = 'REL-FORGED'",
        "insurer_id = insurer_id + 1000",
        "kind = 'correction'",
        "period_start = '2026-09-01'",
        "period_end = '2026-11-30'",
        "due_date = '2027-06-30'",
        "paid_cents = 1",
        "reversals_cents = -5",
        "fees_cents = 99",
        "total_cents = 1",
        "pdf_content = NULL",
        "pdf_sha256 = ''",
        "pdf_sha256 = 'cd'",
    ],
)
def test_an_issued_statement_cannot_change(issued, assignment):
    before = Statement.objects.filter(pk=issued.pk).values().get()
    _refused(f"UPDATE billing_statement SET {assignment} WHERE id = %s", issued.pk)  # noqa: S608 (constant SQL)
    assert Statement.objects.filter(pk=issued.pk).values().get() == before


def test_an_issued_statement_cannot_be_deleted_nor_its_items_touched(issued):
    _refused("DELETE FROM billing_statement WHERE id = %s", issued.pk)
    _refused("UPDATE billing_statementitem SET amount_cents = 1 WHERE statement_id = %s", issued.pk)
    _refused("DELETE FROM billing_statementitem WHERE statement_id = %s", issued.pk)
    assert Statement.objects.filter(pk=issued.pk).exists()
    assert list(StatementItem.objects.filter(statement=issued).values_list("amount_cents", flat=True)) == [
        10_000
    ]


def test_an_item_cannot_be_moved_into_an_issued_statement(cast, issued):
    draft = _statement(cast.insurer.insurer, issued=False)
    tx = accepted_claim(cast.insurer.insurer, cast.optician, 500, dt.date(2026, 10, 6))
    item = StatementItem.objects.create(statement=draft, transaction=tx, claim_id=None, amount_cents=500)
    _refused("UPDATE billing_statementitem SET statement_id = %s WHERE id = %s", issued.pk, item.pk)
    _sql("UPDATE billing_statementitem SET amount_cents = 400 WHERE id = %s", item.pk)  # a draft's: free
    _sql("DELETE FROM billing_statementitem WHERE id = %s", item.pk)


def test_the_detail_file_and_the_fee_transaction_are_written_once(cast, issued):
    _sql(
        "UPDATE billing_statement SET detail_path = 'detail/a.csv', detail_sha256 = %s, detail_rows = 3 "
        "WHERE id = %s",
        "ef" * 32,
        issued.pk,
    )
    for assignment in ("detail_path = 'detail/b.csv'", "detail_sha256 = ''", "detail_rows = 4"):
        _refused(f"UPDATE billing_statement SET {assignment} WHERE id = %s", issued.pk)  # noqa: S608
    fee = accounting.post(
        accounting.Kind.FEE,
        [(accounting.insurer_receivable(issued.insurer_id), 100), (accounting.operator_revenue(), -100)],
        idempotency_key="t-fee-1", source=("statement", str(issued.pk)), effective_date=OCT_31,
    )  # fmt: skip
    other = accounting.post(
        accounting.Kind.FEE,
        [(accounting.insurer_receivable(issued.insurer_id), 100), (accounting.operator_revenue(), -100)],
        idempotency_key="t-fee-2", source=("statement", str(issued.pk)), effective_date=OCT_31,
    )  # fmt: skip
    _sql("UPDATE billing_statement SET fee_transaction_id = %s WHERE id = %s", fee.pk, issued.pk)
    _refused("UPDATE billing_statement SET fee_transaction_id = %s WHERE id = %s", other.pk, issued.pk)
    _refused("UPDATE billing_statement SET fee_transaction_id = NULL WHERE id = %s", issued.pk)
    _sql("UPDATE billing_statement SET pdf_en_content = %s, pdf_en_sha256 = %s WHERE id = %s",
         b"%PDF en", "12" * 32, issued.pk)  # fmt: skip
    _refused("UPDATE billing_statement SET pdf_en_sha256 = '' WHERE id = %s", issued.pk)
    _refused("UPDATE billing_statement SET pdf_en_content = NULL WHERE id = %s", issued.pk)


def test_status_and_a_full_save_of_the_same_values_pass(issued):
    _sql("UPDATE billing_statement SET status = 'paid' WHERE id = %s", issued.pk)
    issued.refresh_from_db()
    issued.save()  # every column written again, unchanged
    assert issued.status == Statement.Status.PAID


def test_a_statement_being_prepared_is_free(cast):
    draft = _statement(cast.insurer.insurer, issued=False)
    _sql("UPDATE billing_statement SET total_cents = 7, number = 'REL-DRAFT' WHERE id = %s", draft.pk)
    _sql("UPDATE billing_statement SET pdf_sha256 = %s WHERE id = %s", "ab" * 32, draft.pk)  # issued now
    _refused("UPDATE billing_statement SET total_cents = 8 WHERE id = %s", draft.pk)
    other = _statement(cast.insurer.insurer, issued=False)
    _sql("DELETE FROM billing_statement WHERE id = %s", other.pk)


def test_preparing_a_period_still_works_under_the_guard(cast, amc, default_fees):
    """``prepare_statements`` issues in one save and deletes its empty drafts; both pass the guard."""
    from rempart.billing.statements import prepare_statements

    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    (statement,) = prepare_statements(OCT_1, OCT_31)
    assert statement.pdf_sha256 and statement.fee_transaction_id
    _refused("UPDATE billing_statement SET total_cents = 0 WHERE id = %s", statement.pk)
    _refused("DELETE FROM billing_statementitem WHERE statement_id = %s", statement.pk)
    money_ok()
