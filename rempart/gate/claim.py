"""Invoices through the gate (purpose "claim"): the patient identified exactly as at the rights check.

An invoice must not become an oracle a hijacked account uses instead of the rights check: it is
identified by the same core, counted by surveillance (a canary on an invoice trips it), and its answer
— adjudicated or *no match* — leaves only after its ledger row.
"""

from __future__ import annotations

from collections.abc import Callable

from rempart.gate.batch import decide_chunk
from rempart.gate.core import Found, Verdict, identify_and_record
from rempart.gate.pec import PecFacts, pec_facts
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.rights.cards import CardData

PURPOSE_CLAIM = "claim"

# What an invoice's adjudication may know of the matched beneficiary: the same as a PEC decision.
ClaimFacts = PecFacts


def decide_claim(actor: Actor, card: CardData, decide: Callable[[ClaimFacts], object]):
    """Identify the patient (``card.care_date`` = the care date of the invoice), then call ``decide(facts)``
    inside the same transaction as the ledger row. Returns (decide's result or None on a miss, the ledger row).

    Check the invoice itself *before* calling this (totals, codes, dates): only what depends on the
    beneficiary may be decided here. If ``decide`` raises, its writes are undone and the ledger row is still
    written (outcome ``rejected``) before the exception goes on.
    """
    fields = claim_fields(card.domain)

    def judge(found: Found) -> Verdict:
        result = decide(pec_facts(found, card))
        outcome = getattr(result, "ledger_outcome", Disclosure.Outcome.COVERED)
        return Verdict(outcome, fields, result)

    recorded = identify_and_record(actor, card, PURPOSE_CLAIM, judge)
    return (recorded.verdict.result if recorded.verdict else None), recorded.row


def claim_fields(domain: str) -> list[str]:
    """What an adjudicated invoice discloses (the same for one invoice and for a lot's)."""
    return ["identity_confirmed", f"coverage:{domain}", f"claim_amounts:{domain}"]


def decide_claims_chunk(actor: Actor, cards, *, prepare, decide, write):
    """A chunk of a lot's invoices through the gate at once (rempart.gate.batch): identified, decided by the
    pure ``decide(position, facts) -> (outcome, result)``, recorded, then written by ``write(decided)``."""

    def judge(position: int, facts: ClaimFacts) -> Verdict:
        outcome, result = decide(position, facts)
        return Verdict(outcome, claim_fields(cards[position].domain), result)

    return decide_chunk(
        actor,
        cards,
        PURPOSE_CLAIM,
        prepare=prepare,
        decide=judge,
        write=write,
        rejected_fields=lambda card: ["identity_confirmed", f"coverage:{card.domain}"],
    )
