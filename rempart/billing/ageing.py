"""Each insurer's balance and its ageing at any date, from the money ledger alone.

The figures are ``accounting.books``'s: the balance of the insurer's receivable (``insurer_receivable``,
411-<AMC>) at the date, and its FIFO ageing (receipts and reversals settle the oldest debits first; what
stays open is aged by the day it was posted: current 0–29 days, 30–59, 60–89, 90 and more). No statement,
receipt or contract row is read, so these figures cannot disagree with ``rempart accounts trial-balance``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from rempart.accounting import books
from rempart.accounting.models import Account, Purpose


@dataclass(frozen=True)
class InsurerPosition:
    insurer_id: int
    amc_number: str
    name: str
    account_code: str
    balance_cents: int  # what the insurer owes (negative: it paid in advance)
    ageing: books.Ageing


def positions(at: dt.date | None = None, *, insurer=None) -> list[InsurerPosition]:
    """Every insurer with a receivable (or just ``insurer``), by AMC number."""
    at = at or timezone.localdate()
    accounts = Account.objects.filter(purpose=Purpose.INSURER_RECEIVABLE).select_related("insurer")
    if insurer is not None:
        accounts = accounts.filter(insurer_id=getattr(insurer, "pk", insurer))
    balances = {row.account.pk: row for row in books.balances(accounts=accounts, at=at)}
    result = []
    for account in sorted(accounts, key=lambda a: a.insurer.amc_number):
        result.append(
            InsurerPosition(
                insurer_id=account.insurer_id,
                amc_number=account.insurer.amc_number,
                name=account.insurer.name,
                account_code=account.code,
                balance_cents=balances[account.pk].normal_cents,
                ageing=books.ageing(account, at),
            )
        )
    return result


def position(insurer, at: dt.date | None = None) -> InsurerPosition | None:
    found = positions(at, insurer=insurer)
    return found[0] if found else None


@dataclass(frozen=True)
class Totals:
    balance_cents: int
    current_cents: int
    days_30_cents: int
    days_60_cents: int
    days_90_plus_cents: int


def totals(rows: list[InsurerPosition]) -> Totals:
    return Totals(
        sum(r.balance_cents for r in rows),
        sum(r.ageing.current_cents for r in rows),
        sum(r.ageing.days_30_cents for r in rows),
        sum(r.ageing.days_60_cents for r in rows),
        sum(r.ageing.days_90_plus_cents for r in rows),
    )
