"""The rights check through the gate: confirm (or not) a patient's tiers payant for one domain and date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rempart.gate.core import Found, Verdict, identify_and_record
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.rights.cards import CardData
from rempart.rights.coverage import GuaranteeFacts, decide

PURPOSE_RIGHTS_CHECK = "rights_check"


@dataclass(frozen=True)
class RightsAnswer:
    outcome: str
    reference: str
    checked_at: dt.datetime
    domain: str
    care_date: dt.date
    terms: GuaranteeFacts | None
    valid_until: dt.date | None


def check_rights(actor: Actor, card: CardData) -> RightsAnswer:
    """Confirm (or not) a patient's tiers payant for one domain and date, recording the answer in the ledger.

    Raises :class:`rempart.gate.core.RefusedDomain` for a domain the organisation does not practise, and
    surveillance's ``CheckRefused`` when the actor is switched off, stepped up, throttled or suspended.
    """

    def judge(found: Found) -> Verdict:
        decision = decide(found.contract, found.coverage, found.guarantee, card.care_date)
        fields = ["identity_confirmed", f"coverage:{card.domain}"]
        if decision.covered:
            fields += [f"tp_terms:{card.domain}", "valid_until"]
        outcome = Disclosure.Outcome.COVERED if decision.covered else Disclosure.Outcome.NOT_COVERED
        return Verdict(outcome, fields, decision)

    recorded = identify_and_record(actor, card, PURPOSE_RIGHTS_CHECK, judge, decision_writes=False)
    decision = recorded.verdict.result if recorded.verdict else None
    return RightsAnswer(
        outcome=recorded.outcome,
        reference=recorded.row.reference,
        checked_at=recorded.row.created_at,
        domain=card.domain,
        care_date=card.care_date,
        terms=decision.terms if decision else None,
        valid_until=decision.valid_until if decision else None,
    )
