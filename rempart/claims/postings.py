"""What a claim is worth in the money ledger: accepting it makes the insurer owe and the operator owe the professional.

A claim's postings always add up to what it is worth now: accepted (or partly) → its accepted amount;
rejected or pending review → nothing. Each change (acceptance, a review that reduces or rejects, a
credit note) posts the difference as its own balanced transaction, never an edit of an earlier one.
"""

from __future__ import annotations

from django.db.models import Sum

from rempart.accounting import service as accounting
from rempart.claims.models import Claim

OWED = (Claim.Status.ACCEPTED, Claim.Status.PARTIAL)


def worth(claim: Claim) -> int:
    """What the claim earns now: its accepted amount less its credit notes (nothing if not owed)."""
    if claim.status not in OWED:
        return 0
    credited = claim.credit_notes.aggregate(total=Sum("amount_cents"))["total"] or 0
    return max(0, claim.accepted_cents - credited)


def post_adjudication(claim: Claim, *, kind: str | None = None) -> None:
    """Post the difference between what the claim is worth and what was posted for it (idempotent).

    ``kind`` names the cause when the caller knows it (a credit note); otherwise it follows from the change."""
    receivable = accounting.insurer_receivable(claim.insurer_id)
    payable = accounting.professional_payable(claim.organisation_id)
    source = ("claim", str(claim.pk))
    posted = accounting.source_balance(source, receivable)
    delta = worth(claim) - posted
    if delta == 0:
        return
    version = accounting.source_transaction_count(source) + 1
    if kind is not None:
        pass
    elif posted == 0:
        kind = accounting.Kind.CLAIM_ACCEPTED
    elif delta < 0:
        kind = accounting.Kind.CLAIM_REVERSED if worth(claim) == 0 else accounting.Kind.REVIEW_ADJUSTED
    else:
        kind = accounting.Kind.REVIEW_ADJUSTED
    accounting.post(
        kind,
        [(receivable, delta), (payable, -delta)],
        idempotency_key=f"claim:{claim.pk}:{version}",
        memo=f"facture {claim.invoice_number}",
        source=source,
    )
