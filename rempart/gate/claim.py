"""Invoices through the gate (purpose "claim"): the patient identified exactly as at the rights check.

An invoice must not become an oracle a hijacked account uses instead of the rights check: it is
identified by the same core, counted by surveillance (a canary on an invoice trips it), and its answer
— adjudicated or *no match* — leaves only after its ledger row.
"""

from __future__ import annotations

from collections.abc import Callable

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
    fields = ["identity_confirmed", f"coverage:{card.domain}", f"claim_amounts:{card.domain}"]

    def judge(found: Found) -> Verdict:
        result = decide(pec_facts(found, card))
        outcome = getattr(result, "ledger_outcome", Disclosure.Outcome.COVERED)
        return Verdict(outcome, fields, result)

    recorded = identify_and_record(actor, card, PURPOSE_CLAIM, judge)
    return (recorded.verdict.result if recorded.verdict else None), recorded.row
