"""What a claim is worth in the money ledger: accepting it makes the insurer owe and the operator owe the professional.

A claim's postings always add up to what it is worth now: accepted (or partly) → its accepted amount;
rejected or pending review → nothing. Each change (acceptance, a review that reduces or rejects, a
credit note) posts the difference as its own balanced transaction, never an edit of an earlier one.
"""

from __future__ import annotations

from rempart.accounting import service as accounting
from rempart.claims.models import Claim

OWED = (Claim.Status.ACCEPTED, Claim.Status.PARTIAL)


def worth(claim: Claim) -> int:
    return claim.accepted_cents if claim.status in OWED else 0


def post_adjudication(claim: Claim) -> None:
    """Post the difference between what the claim is worth and what was posted for it (idempotent)."""
    receivable = accounting.insurer_receivable(claim.insurer_id)
    payable = accounting.professional_payable(claim.organisation_id)
    source = ("claim", str(claim.pk))
    posted = accounting.source_balance(source, receivable)
    delta = worth(claim) - posted
    if delta == 0:
        return
    version = accounting.source_transaction_count(source) + 1
    if posted == 0:
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
