"""Balances at a date, by owner and kind, the trial balance and FIFO ageing — all derived from postings."""

from __future__ import annotations

import datetime as dt

from rempart.accounting import service
from rempart.accounting.tests.conftest import DAY, accept

K = service.Kind


def _receipt(parties, cents: int, key: str, day: dt.date, insurer: int = 0):
    """The insurer pays: the bank is debited, the receivable credited."""
    return service.post(K.RECEIPT, [(parties.bank, cents), (parties.receivables[insurer], -cents)],
                        idempotency_key=key, source=("receipt", key), effective_date=day)  # fmt: skip


def test_balances_at_a_date_count_postings_effective_on_or_before_it(parties):
    accept(parties, 1000, key="claim:1:1", effective_date=DAY)
    accept(parties, 500, key="claim:2:1", effective_date=DAY + dt.timedelta(days=10))
    receivable = parties.receivables[0]
    assert service.balance(receivable, DAY - dt.timedelta(days=1)) == 0
    assert service.balance(receivable, DAY) == 1000
    assert service.balance(receivable, DAY + dt.timedelta(days=9)) == 1000
    assert service.balance(receivable) == 1500


def test_balances_by_owner_and_kind(parties):
    accept(parties, 1000, insurer=0, shop=0, key="claim:1:1")
    accept(parties, 700, insurer=1, shop=0, key="claim:2:1")
    accept(parties, 300, insurer=1, shop=2, key="claim:3:1")
    service.post(K.FEE, [(parties.receivables[1], 25), (parties.revenue, -25)],
                 idempotency_key="fee:1", source=("statement", "1"), effective_date=DAY)  # fmt: skip
    mine = service.balances(insurer=parties.insurers[1])
    assert [(row.account.code, row.debits_cents, row.credits_cents, row.normal_cents) for row in mine] == [
        (parties.receivables[1].code, 1025, 0, 1025)
    ]
    shop = service.balances(organisation=parties.shops[0].pk)
    assert [(row.balance_cents, row.normal_cents) for row in shop] == [(-1700, 1700)]
    both = service.balances(insurer=parties.insurers[0], organisation=parties.shops[2])
    assert {row.account.pk for row in both} == {parties.receivables[0].pk, parties.payables[2].pk}
    quiet = service.balances(insurer=parties.insurers[2])
    assert [(row.debits_cents, row.credits_cents) for row in quiet] == [(0, 0)]  # listed, without postings
    assert (
        service.balances(purpose="professional_payable", at=DAY - dt.timedelta(days=1))[0].balance_cents == 0
    )
    assert service.balance_by_kind() == {"asset": 2025, "liability": -2000, "revenue": -25}
    assert sum(service.balance_by_kind().values()) == 0


def test_the_trial_balance_lists_every_account_and_balances(parties):
    accept(parties, 1000, key="claim:1:1")
    tx = accept(parties, 400, shop=1, key="claim:2:1")
    service.reverse(tx, idempotency_key="avoir:2", effective_date=DAY + dt.timedelta(days=1))
    _receipt(parties, 600, "r1", DAY + dt.timedelta(days=5))
    trial = service.trial_balance()
    assert len(trial.rows) == 8 and trial.balanced
    assert (trial.debits_cents, trial.credits_cents) == (1000 + 400 + 400 + 600,) * 2
    by_code = {row.account.code: row for row in trial.rows}
    assert by_code[parties.receivables[0].code].balance_cents == 1000 + 400 - 400 - 600
    earlier = service.trial_balance(DAY)
    assert earlier.balanced and earlier.debits_cents == 1400


def test_ageing_settles_the_oldest_debits_first(parties):
    receivable = parties.receivables[0]
    at = dt.date(2026, 12, 31)
    accept(parties, 1000, key="claim:1:1", effective_date=at - dt.timedelta(days=120))  # 90+
    accept(parties, 2000, key="claim:2:1", effective_date=at - dt.timedelta(days=65))  # 60
    accept(parties, 3000, key="claim:3:1", effective_date=at - dt.timedelta(days=30))  # 30 (exactly)
    accept(parties, 4000, key="claim:4:1", effective_date=at - dt.timedelta(days=29))  # current
    accept(
        parties, 9999, key="claim:5:1", effective_date=at + dt.timedelta(days=1)
    )  # after the date: not counted
    _receipt(parties, 1500, "r1", at - dt.timedelta(days=10))  # settles the 1000 and 500 of the 2000
    aged = service.ageing(receivable, at)
    assert (aged.days_90_plus_cents, aged.days_60_cents, aged.days_30_cents, aged.current_cents) == (
        0,
        1500,
        3000,
        4000,
    )
    assert aged.unapplied_cents == 0 and aged.total_cents == service.balance(receivable, at) == 8500
    assert (
        service.ageing(receivable, at - dt.timedelta(days=100)).days_90_plus_cents == 0
    )  # nothing 90 days old then
    assert service.ageing(receivable, at - dt.timedelta(days=100)).days_30_cents == 0
    assert service.ageing(receivable, at - dt.timedelta(days=100)).current_cents == 1000


def test_ageing_of_an_insurer_that_paid_in_advance(parties):
    receivable = parties.receivables[0]
    accept(parties, 1000, key="claim:1:1")
    _receipt(parties, 1600, "r1", DAY)
    aged = service.ageing(receivable, DAY)
    assert (aged.open_cents, aged.unapplied_cents, aged.total_cents) == (0, 600, -600)
    assert aged.total_cents == service.balance(receivable, DAY)


def test_ageing_of_a_payable_mirrors_it(parties):
    payable = parties.payables[0]
    accept(parties, 1000, key="claim:1:1", effective_date=DAY - dt.timedelta(days=45))
    accept(parties, 500, key="claim:2:1", effective_date=DAY)
    service.post(K.PAYMENT, [(payable, 700), (parties.bank, -700)], idempotency_key="pay:1",
                 source=("payment", "1"), effective_date=DAY)  # fmt: skip
    aged = service.ageing(payable, DAY)
    assert (aged.days_30_cents, aged.current_cents, aged.total_cents) == (300, 500, 800)
    assert aged.total_cents == -service.balance(payable, DAY)
