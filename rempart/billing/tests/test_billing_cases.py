"""The worked cases of docs/billing-cases.md, one test each (same numbers, same figures).

Unless a case says otherwise: the cast's insurer AMC 123456789, billed monthly, due 10 days after the period
end, under the default schedule from 2026-01-01 (0,05 € a rights check, 1,00 € a PEC, 0,30 € an invoice paid,
0,50 % of the net paid); October 2026 is billed. The money invariant holds after each case.
"""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.accounting import service as accounting
from rempart.accounting.models import Transaction
from rempart.billing.models import BillingContract, Statement, StatementItem
from rempart.billing.statements import issue_correction, prepare_statements
from rempart.billing.tests.conftest import (
    NOV_1,
    NOV_30,
    OCT_1,
    OCT_31,
    accept,
    credit,
    money_ok,
    paid,
    pecs,
    rights_checks,
    schedule,
)

pytestmark = pytest.mark.django_db
D = dt.date


def october():
    (statement,) = prepare_statements(OCT_1, OCT_31)
    return statement


def figures(statement: Statement) -> tuple[int, int, int, int]:
    return statement.paid_cents, statement.reversals_cents, statement.fees_cents, statement.total_cents


def test_case_01_one_claim(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, D(2026, 10, 3))
    paid([claim], D(2026, 10, 10))
    statement = october()
    assert figures(statement) == (10_000, 0, 30 + 50, 10_080)
    assert (statement.number, statement.due_date) == ("REL-123456789-20261031-1", D(2026, 11, 10))
    assert accounting.balance(accounting.insurer_receivable(amc)) == 10_080
    money_ok()


def test_case_02_rights_checks_that_count(cast, amc, default_fees):
    for outcome, count in (("covered", 7), ("not_covered", 3), ("no_match", 4), ("refused", 2),
                           ("rejected", 1), ("listed", 1)):  # fmt: skip
        rights_checks(amc, D(2026, 10, 5), count, outcome)
    rights_checks(amc, D(2026, 11, 1), 5)  # November's
    statement = october()
    assert statement.summary["fees"]["rights_checks"] == 10
    assert figures(statement) == (0, 0, 50, 50)
    money_ok()


def test_case_03_pecs_that_count(cast, amc, default_fees):
    pecs(amc, cast.optician, D(2026, 10, 7), 3, "accepted")
    pecs(amc, cast.optician, D(2026, 10, 8), 1, "partially_accepted")
    pecs(amc, cast.optician, D(2026, 10, 9), 2, "refused")
    statement = october()
    assert statement.summary["fees"]["pecs"] == 4
    assert statement.fees_cents == 400
    money_ok()


def test_case_04_share_rounded_once_half_up(cast, amc):
    schedule(None, D(2026, 1, 1), share=50)
    claims = [accept(amc, cast.optician, 101, D(2026, 10, day)) for day in (3, 4, 5)]
    paid(claims, D(2026, 10, 10))
    statement = october()
    # 3,03 € × 0,50 % = 1,515 cent → 2 cents (rounded per day it would be 3 × 1).
    assert figures(statement) == (303, 0, 2, 305)
    money_ok()


def test_case_05_schedule_change_mid_period(cast, amc, default_fees):
    schedule(None, D(2026, 10, 16), rights_check=10, pec=100, invoice=50, share=0)
    early = accept(amc, cast.optician, 10_000, D(2026, 10, 10))
    late = accept(amc, cast.optician, 10_000, D(2026, 10, 20))
    paid([early, late], D(2026, 10, 25))
    rights_checks(amc, D(2026, 10, 15), 2)
    rights_checks(amc, D(2026, 10, 16), 2)
    statement = october()
    fees = statement.summary["fees"]
    assert (fees["invoice_cents"], fees["share_cents"], fees["rights_check_cents"]) == (30 + 50, 50, 10 + 20)
    assert figures(statement) == (20_000, 0, 160, 20_160)
    money_ok()


def test_case_06_insurer_schedule_from_its_date_default_before(cast, amc, default_fees):
    schedule(amc, D(2026, 10, 16), invoice=100)
    early = accept(amc, cast.optician, 10_000, D(2026, 10, 10))
    late = accept(amc, cast.optician, 10_000, D(2026, 10, 20))
    paid([early, late], D(2026, 10, 25))
    statement = october()
    assert statement.fees_cents == (30 + 50) + 100
    money_ok()


def test_case_07_credit_note_in_the_period(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 20_000, D(2026, 10, 3))
    paid([claim], D(2026, 10, 10))
    credit(claim, 5_000, D(2026, 10, 12))
    statement = october()
    # One invoice 0,30 € + 0,50 % of the net 150 € = 0,75 €.
    assert figures(statement) == (20_000, -5_000, 105, 15_105)
    assert statement.summary["by_domain"]["OPTI"] == {
        "lines": 2,
        "paid_cents": 20_000,
        "reversals_cents": -5_000,
    }
    money_ok()


def test_case_08_claim_of_september_paid_in_october(cast, amc, default_fees):
    schedule(None, D(2026, 10, 1), invoice=40, share=0)
    claim = accept(amc, cast.optician, 10_000, D(2026, 9, 28))
    paid([claim], D(2026, 10, 2))
    statement = october()
    # Billed by October; its fees count on 1 October, at the schedule of that day.
    assert figures(statement) == (10_000, 0, 40, 10_040)
    money_ok()


def test_case_09_unpaid_waits_for_its_payment(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, D(2026, 10, 20))
    assert prepare_statements(OCT_1, OCT_31) == []
    paid([claim], D(2026, 11, 3))
    (november,) = prepare_statements(NOV_1, NOV_30)
    assert figures(november) == (10_000, 0, 80, 10_080)
    assert november.number == "REL-123456789-20261130-1"
    money_ok()


def test_case_10_replay_bills_nothing(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, D(2026, 10, 3))
    paid([claim], D(2026, 10, 10))
    first = october()
    before = (Statement.objects.count(), StatementItem.objects.count(), Transaction.objects.count())
    again = october()
    assert again.pk == first.pk and figures(again) == figures(first)
    assert (Statement.objects.count(), StatementItem.objects.count(), Transaction.objects.count()) == before
    money_ok()


def test_case_11_correction_for_a_late_posting(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, D(2026, 10, 3))
    paid([claim], D(2026, 10, 10))
    original = october()
    late = accept(amc, cast.other_shop, 5_000, D(2026, 10, 28))  # posted after October was issued
    paid([late], D(2026, 10, 30))
    correction = issue_correction(original, user=cast.admin, reason="paiement du 30/10 enregistré en retard")
    # Period fees now: 2 invoices 0,60 € + 0,50 % of 150 € = 0,75 € → 1,35 €; 0,80 € already billed.
    assert figures(correction) == (5_000, 0, 55, 5_055)
    assert correction.number == "REL-123456789-20261031-2"
    assert correction.summary["by_category"] == {
        "OPTI+PHAR": {"lines": 1, "paid_cents": 5_000, "reversals_cents": 0}
    }
    assert accounting.balance(accounting.insurer_receivable(amc)) == 10_080 + 5_055
    money_ok()


def test_case_12_only_a_credit_note(cast, amc, default_fees):
    claim = accept(amc, cast.optician, 10_000, D(2026, 9, 3))
    paid([claim], D(2026, 9, 10))
    credit(claim, 3_000, D(2026, 10, 15))  # September was never billed here: the claim comes with it
    statement = october()
    # Both: the September claim (paid, never billed) and the credit note; net 70 €.
    assert figures(statement) == (10_000, -3_000, 30 + 35, 7_065)
    money_ok()


def test_case_13_weekly_contract(cast, amc, default_fees):
    BillingContract.objects.filter(insurer=amc).update(period="weekly", due_days=7)
    claim = accept(amc, cast.optician, 10_000, D(2026, 10, 27))
    paid([claim], D(2026, 10, 29))
    assert prepare_statements(OCT_1, OCT_31) == []  # not a monthly insurer any more
    (week,) = prepare_statements(D(2026, 10, 26), D(2026, 11, 1))
    assert (week.number, week.due_date) == ("REL-123456789-20261101-1", D(2026, 11, 8))
    assert figures(week) == (10_000, 0, 80, 10_080)
    money_ok()


def test_every_case_is_documented():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "billing-cases.md").read_text(encoding="utf-8")
    tested = {name[10:12] for name in globals() if name.startswith("test_case_")}
    documented = set(re.findall(r"^## Case (\d\d):", doc, re.MULTILINE))
    assert tested == documented and len(tested) >= 10
