"""Balances, ageing and the trial balance, derived from postings alone (no balance is stored anywhere).

Every figure is debit-positive like the postings (``balance_cents``), except ``normal_cents`` and the
ageing, which are on the account's normal side: what an insurer owes, what the operator owes a
professional, as a positive amount. ``at`` is a date: postings *effective* on or before it count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, Sum
from django.utils import timezone

from rempart.accounting.models import Account, Posting

_DEBITS = Sum("amount_cents", filter=Q(amount_cents__gt=0), default=0)
_CREDITS = Sum("amount_cents", filter=Q(amount_cents__lt=0), default=0)


def _postings(at: dt.date | None):
    postings = Posting.objects.all()
    return postings if at is None else postings.filter(effective_date__lte=at)


def balance(account: Account, at: dt.date | None = None) -> int:
    """The account's balance in cents, debit-positive (a professional's payable is negative: a credit)."""
    return (
        _postings(at).filter(account_id=account.pk).aggregate(total=Sum("amount_cents", default=0))["total"]
    )


@dataclass(frozen=True)
class AccountBalance:
    account: Account
    debits_cents: int  # sum of the debits, positive
    credits_cents: int  # sum of the credits, positive

    @property
    def balance_cents(self) -> int:
        """Debit-positive, like the postings."""
        return self.debits_cents - self.credits_cents

    @property
    def normal_cents(self) -> int:
        """On the account's normal side: what the insurer owes, what is owed to the professional."""
        return self.balance_cents * self.account.normal_sign


def balances(
    *,
    insurer=None,
    organisation=None,
    purpose: str | None = None,
    kind: str | None = None,
    at: dt.date | None = None,
    accounts=None,
) -> list[AccountBalance]:
    """Each matching account (also those without postings) with its debits and credits, by code.

    ``insurer`` / ``organisation`` (object or id) select the accounts they own; given both, either matches.
    """
    selected = Account.objects.select_related("insurer", "organisation") if accounts is None else accounts
    owners = Q()
    if insurer is not None:
        owners |= Q(insurer_id=getattr(insurer, "pk", insurer))
    if organisation is not None:
        owners |= Q(organisation_id=getattr(organisation, "pk", organisation))
    selected = selected.filter(owners)
    if purpose:
        selected = selected.filter(purpose=purpose)
    if kind:
        selected = selected.filter(kind=kind)
    chosen = list(selected.order_by("code"))
    postings = _postings(at)
    if owners or purpose or kind or accounts is not None:
        postings = postings.filter(account_id__in=[account.pk for account in chosen])
    sums = {
        row["account_id"]: (row["debits"], -row["credits"])
        for row in postings.values("account_id").annotate(debits=_DEBITS, credits=_CREDITS).order_by()
    }
    return [AccountBalance(account, *sums.get(account.pk, (0, 0))) for account in chosen]


def balance_by_kind(at: dt.date | None = None) -> dict[str, int]:
    """Debit-positive balance per account kind (asset, liability, …); they add up to zero."""
    rows = _postings(at).values("account__kind").annotate(total=Sum("amount_cents")).order_by()
    return {row["account__kind"]: row["total"] for row in rows}


@dataclass(frozen=True)
class TrialBalance:
    at: dt.date | None
    rows: list[AccountBalance]

    @property
    def debits_cents(self) -> int:
        return sum(row.debits_cents for row in self.rows)

    @property
    def credits_cents(self) -> int:
        return sum(row.credits_cents for row in self.rows)

    @property
    def balanced(self) -> bool:
        return self.debits_cents == self.credits_cents


def trial_balance(at: dt.date | None = None) -> TrialBalance:
    """Every account's debits, credits and balance at a date; total debits equal total credits.

    They do because each transaction sums to zero and all its postings carry its effective date (both
    checked by the database when the transaction is sealed), so a date never cuts a transaction in two.
    """
    return TrialBalance(at, balances(at=at))


@dataclass(frozen=True)
class Ageing:
    """An account's open amount by age, on its normal side (what an insurer owes, by how overdue it is).

    Settlement is FIFO: the credits of a receivable (receipts, reversals) settle its oldest debits first,
    whatever they refer to; what stays unsettled is aged by its effective date. Mirrored for a payable.
    ``unapplied_cents`` is what was settled beyond every open item (an insurer that paid in advance).
    """

    at: dt.date
    current_cents: int  # 0–29 days
    days_30_cents: int  # 30–59 days
    days_60_cents: int  # 60–89 days
    days_90_plus_cents: int  # 90 days and more
    unapplied_cents: int = 0

    @property
    def open_cents(self) -> int:
        return self.current_cents + self.days_30_cents + self.days_60_cents + self.days_90_plus_cents

    @property
    def total_cents(self) -> int:
        """Equals the account's normal-side balance at ``at``."""
        return self.open_cents - self.unapplied_cents


def ageing(account: Account, at: dt.date | None = None) -> Ageing:
    at = at or timezone.localdate()
    sign = account.normal_sign
    days = (
        _postings(at)
        .filter(account_id=account.pk)
        .values("effective_date")
        .annotate(debits=_DEBITS, credits=_CREDITS)
        .order_by("effective_date")
    )  # one row per date, not per posting: bounded by the days the account has lived
    items, settled = [], 0
    for day in days:
        opened, closed = (day["debits"], -day["credits"]) if sign > 0 else (-day["credits"], day["debits"])
        if opened:
            items.append((day["effective_date"], opened))
        settled += closed
    buckets = [0, 0, 0, 0]
    for when, amount in items:
        applied = min(amount, settled)
        settled -= applied
        if amount > applied:
            buckets[min((at - when).days // 30, 3)] += amount - applied
    return Ageing(at, *buckets, unapplied_cents=settled)
