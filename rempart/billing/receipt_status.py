"""A statement's receipts and the status they give it: shared by receipts (credits) and debit returns.

Kept apart from rempart.billing.receipts so that debit_returns, which receipts calls for the debit entries of a
camt.054, builds on it without an import circle.
"""

from __future__ import annotations

from django.db.models import Sum

from rempart.billing.models import Statement


class ReceiptError(Exception):
    """Refused: the message (French unless the user's language is English) says what and why."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _kept(statement: Statement):
    """The statement's receipts that count: posted, and not returned by the insurer's bank."""
    return statement.receipts.filter(transaction__isnull=False, return_transaction__isnull=True)


def refresh_status(statement_id: int) -> None:
    """Paid, partly paid, issued — or returned: a direct debit came back and nothing is received on it."""
    statement = Statement.objects.select_for_update().get(pk=statement_id)
    received = _kept(statement).aggregate(s=Sum("amount_cents", default=0))["s"]
    status = (
        Statement.Status.PAID
        if received >= statement.total_cents
        else Statement.Status.PARTLY_PAID
        if received > 0
        else Statement.Status.RETURNED
        if statement.receipts.filter(return_transaction__isnull=False).exists()
        else Statement.Status.ISSUED
    )
    if status != statement.status:
        Statement.objects.filter(pk=statement.pk).update(status=status)


def received_cents(statement: Statement) -> int:
    return _kept(statement).aggregate(s=Sum("amount_cents", default=0))["s"]
