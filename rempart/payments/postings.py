"""What paying a professional posts in the money ledger: their payable is debited, the operator's bank credited.

One ``payment`` transaction per transfer sent, under the key ``payment:<id>`` (posting it again returns the
first one), with the payment as its source. A bank's rejection is the opposite transaction
(``payment_returned``, posted by rempart.payments.returns), never an edit of this one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db.models.expressions import RawSQL

from rempart.accounting import service as accounting
from rempart.accounting.models import Account, Purpose, Transaction
from rempart.payments.models import Payment


def payment_key(payment: Payment) -> str:
    return f"payment:{payment.pk}"


def payment_source(payment: Payment) -> tuple[str, str]:
    return ("payment", str(payment.pk))


def payables_of_run(run_id: int) -> dict[int, Account]:
    """The payable account of every organisation of a run, in one query (they exist: they hold the postings)."""
    organisations = RawSQL("SELECT organisation_id FROM payments_payment WHERE run_id = %s", [run_id])
    accounts = Account.objects.filter(purpose=Purpose.PROFESSIONAL_PAYABLE, organisation_id__in=organisations)
    return {account.organisation_id: account for account in accounts}


def post_payments(
    payments: Sequence[Payment], *, payables: dict[int, Account], effective_date: dt.date
) -> list[Transaction]:
    """Post one ``payment`` transaction per transfer (payable +, bank −), all or none; one result per payment."""
    bank = accounting.operator_bank()
    entries = [
        accounting.entry(
            accounting.Kind.PAYMENT,
            [(payables[payment.organisation_id], payment.amount_cents), (bank, -payment.amount_cents)],
            idempotency_key=payment_key(payment),
            memo=f"virement {payment.reference}",
            source=payment_source(payment),
            effective_date=effective_date,
        )
        for payment in payments
    ]
    return accounting.post_many(entries)
