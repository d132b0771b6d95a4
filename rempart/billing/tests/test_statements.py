"""Statements: what is billed (paid claims only, each transaction once), replay, numbering, fees posted,
corrections, the PDF and its digest, refusals; the money invariant after each."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounting.models import Transaction
from rempart.accounts.models import Role
from rempart.billing import statements
from rempart.billing.models import Statement, StatementItem
from rempart.billing.statements import StatementError, issue_correction, prepare_statements
from rempart.billing.tests.conftest import (
    NOV_1,
    NOV_30,
    OCT_1,
    OCT_31,
    accept,
    credit,
    money_ok,
    paid,
)
from rempart.billing.tests.tamper_support import forged

pytestmark = pytest.mark.django_db


def test_bills_only_claims_paid_in_the_period(cast, amc, default_fees):
    paid_claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    unpaid = accept(amc, cast.optician, 7_000, dt.date(2026, 10, 4))
    late_paid = accept(amc, cast.other_shop, 2_000, dt.date(2026, 10, 5))
    paid([paid_claim], dt.date(2026, 10, 10))
    paid([late_paid], dt.date(2026, 11, 2))  # paid in November: November's statement bills it

    (statement,) = prepare_statements(OCT_1, OCT_31)

    assert statement.number == "REL-123456789-20261031-1"
    assert statement.due_date == dt.date(2026, 11, 10)
    assert list(
        StatementItem.objects.filter(statement=statement).values_list("claim_id", "amount_cents")
    ) == [(paid_claim.pk, 10_000)]
    assert statement.paid_cents == 10_000 and statement.reversals_cents == 0
    # Fees: one invoice 0,30 € + 0,50 % of 100 € = 0,50 €.
    assert statement.fees_cents == 80 and statement.total_cents == 10_080
    assert statement.summary["by_domain"] == {
        "OPTI": {"lines": 1, "paid_cents": 10_000, "reversals_cents": 0}
    }
    assert accounting.balance(accounting.operator_revenue()) == -80
    assert unpaid.pk not in set(StatementItem.objects.values_list("claim_id", flat=True))
    money_ok()

    (november,) = prepare_statements(NOV_1, NOV_30)
    assert november.paid_cents == 2_000
    assert november.summary["by_category"] == {
        "OPTI+PHAR": {"lines": 1, "paid_cents": 2_000, "reversals_cents": 0}
    }
    money_ok()


def test_replayed_period_bills_nothing(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    (first,) = prepare_statements(OCT_1, OCT_31)
    items, txs = StatementItem.objects.count(), Transaction.objects.count()

    (again,) = prepare_statements(OCT_1, OCT_31)

    assert again.pk == first.pk
    assert (StatementItem.objects.count(), Transaction.objects.count()) == (items, txs)
    assert Statement.objects.count() == 1
    money_ok()


def test_credit_note_on_a_claim_paid_earlier_goes_on_the_next_statement(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    prepare_statements(OCT_1, OCT_31)
    credit(claim, 2_500, dt.date(2026, 11, 12))  # not yet netted in any payment: billed all the same

    (november,) = prepare_statements(NOV_1, NOV_30)

    assert (november.paid_cents, november.reversals_cents) == (0, -2_500)
    assert november.fees_cents == 0  # no invoice, a negative net bears no share
    assert november.total_cents == -2_500
    money_ok()


def test_a_correction_bills_what_its_period_missed(cast, amc, default_fees):
    first = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([first], dt.date(2026, 10, 10))
    (october,) = prepare_statements(OCT_1, OCT_31)
    # A claim of October paid in October, posted late (after the statement was issued).
    late = accept(amc, cast.optician, 4_000, dt.date(2026, 10, 20))
    paid([late], dt.date(2026, 10, 25))

    correction = issue_correction(october, user=cast.admin, reason="facture enregistrée en retard")

    assert correction.kind == Statement.Kind.CORRECTION and correction.corrects == october
    assert correction.number == "REL-123456789-20261031-2"
    assert correction.paid_cents == 4_000
    # Fees of the whole period (2 invoices 0,60 € + 0,50 % of 140 € = 0,70 €) minus those billed (0,80 €).
    assert correction.fees_cents == 130 - 80
    assert correction.summary["reason"] == "facture enregistrée en retard"
    october.refresh_from_db()
    assert october.paid_cents == 10_000  # never edited
    with pytest.raises(StatementError) as refused:
        issue_correction(october, user=cast.admin, reason="encore")
    assert refused.value.code == "nothing_to_correct"
    money_ok()


def test_fee_posting_is_once_per_statement(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    (statement,) = prepare_statements(OCT_1, OCT_31)
    tx = statement.fee_transaction
    assert tx.kind == accounting.Kind.FEE and tx.effective_date == OCT_31
    legs = dict(tx.postings.values_list("account_id", "amount_cents"))
    assert legs == {accounting.insurer_receivable(amc).pk: 80, accounting.operator_revenue().pk: -80}
    again = accounting.post(
        accounting.Kind.FEE,
        [(accounting.insurer_receivable(amc), 80), (accounting.operator_revenue(), -80)],
        idempotency_key=f"billing:{statement.number}:fee",
        source=("statement", str(statement.pk)),
    )
    assert again.pk == tx.pk


def test_nothing_to_bill_makes_no_statement(cast, amc, default_fees):
    accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))  # never paid
    assert prepare_statements(OCT_1, OCT_31) == []
    assert Statement.objects.count() == 0
    money_ok()


def test_insurer_without_contract_is_refused_clearly(cast, default_fees):
    insurer = cast.insurer.insurer  # no contract
    with pytest.raises(StatementError) as refused:
        prepare_statements(OCT_1, OCT_31, insurer=insurer)
    assert refused.value.code == "no_contract" and "123456789" in str(refused.value)
    assert prepare_statements(OCT_1, OCT_31) == []
    assert list(statements.insurers_without_contract()) == [insurer]


def test_refusals_period_not_over_and_wrong_periodicity(cast, amc):
    today = timezone.localdate()
    with pytest.raises(StatementError) as refused:
        prepare_statements(today, today)
    assert refused.value.code == "period_not_over"
    with pytest.raises(StatementError) as refused:
        prepare_statements(OCT_31, OCT_31, insurer=amc)  # a day, but the contract is monthly
    assert refused.value.code == "wrong_period"


def test_each_insurer_bills_its_own(cast, amc, other_amc, default_fees):
    mine = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    theirs = accept(other_amc, cast.optician, 5_000, dt.date(2026, 10, 3))
    paid([mine, theirs], dt.date(2026, 10, 10))
    first, second = prepare_statements(OCT_1, OCT_31)
    assert (first.insurer, first.paid_cents) == (amc, 10_000)
    assert (second.insurer, second.paid_cents, second.due_date) == (other_amc, 5_000, dt.date(2026, 11, 30))
    money_ok()


def test_pdf_is_kept_with_its_digest_and_checked(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    (statement,) = prepare_statements(OCT_1, OCT_31)
    content = statements.verified_pdf(statement)
    assert content.startswith(b"%PDF") and hashlib.sha256(content).hexdigest() == statement.pdf_sha256
    forged(statement, pdf_content=content + b"x")  # the database's guards switched off, as an attacker would
    statement.refresh_from_db()
    with pytest.raises(statements.StatementTampered):
        statements.verified_pdf(statement)


def test_through_a_real_payment_run(cast, amc, default_fees):
    """A claim paid by ``prepare_run``/``approve_run`` today is billed by today's daily statement (as of tomorrow)."""
    from rempart.accounts.models import Membership  # noqa: F401 - the cast's roles
    from rempart.payments import runs
    from rempart.payments.tests.conftest import IBANS, set_iban
    from rempart.testing import make_user

    amc.billing_contract.period = "daily"
    amc.billing_contract.save()
    iban, bic = IBANS["optician"]
    set_iban(cast.optician, iban, bic)
    today = timezone.localdate()
    claim = accept(amc, cast.optician, 12_345, today - dt.timedelta(days=1))
    preparer = make_user("t1@operator.test", cast.operator, Role.TREASURY)
    approver = make_user("t2@operator.test", cast.operator, Role.TREASURY)
    run = runs.prepare_run(
        today - dt.timedelta(days=1), user=preparer, execution_date=runs.next_business_day(today)
    )
    runs.approve_run(run, user=approver)

    (statement,) = prepare_statements(today, today, as_of=today + dt.timedelta(days=1))

    assert list(statement.items.values_list("claim_id", "amount_cents")) == [(claim.pk, 12_345)]
    money_ok()


def test_held_or_cancelled_payments_do_not_count_as_paid(cast, amc, default_fees):
    from rempart.payments.models import Payment, PaymentRun

    held = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    cancelled = accept(amc, cast.other_shop, 5_000, dt.date(2026, 10, 3))
    run = paid([held], dt.date(2026, 10, 10))
    Payment.objects.filter(run=run).update(status=Payment.Status.HELD)
    other = paid([cancelled], dt.date(2026, 10, 11))
    PaymentRun.objects.filter(pk=other.pk).update(status=PaymentRun.Status.CANCELLED)
    assert prepare_statements(OCT_1, OCT_31) == []
    money_ok()


def test_all_insurers_or_none(cast, amc, other_amc, default_fees, monkeypatch):
    from rempart.billing import statement_pdf

    paid([accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3)),
          accept(other_amc, cast.optician, 5_000, dt.date(2026, 10, 3))], dt.date(2026, 10, 10))  # fmt: skip
    calls = []

    def failing(statement, language="fr"):
        calls.append(statement.number)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return b"%PDF-1.4 test"

    monkeypatch.setattr(statement_pdf, "render", failing)
    before = Transaction.objects.count()
    with pytest.raises(RuntimeError):
        prepare_statements(OCT_1, OCT_31)
    assert (Statement.objects.count(), StatementItem.objects.count()) == (0, 0)
    assert Transaction.objects.count() == before
    monkeypatch.undo()
    assert len(prepare_statements(OCT_1, OCT_31)) == 2
    money_ok()
