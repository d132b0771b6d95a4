"""Prise en charge through the gate: the same identification, then what the decision engine needs (purpose "pec")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rempart.gate.core import Found, Verdict, identify_and_record
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.lib import hot_sql
from rempart.registry.models import Beneficiary, Guarantee, Product
from rempart.rights.cards import CardData
from rempart.rights.coverage import ContractFacts, CoverageFacts

PURPOSE_PEC = "pec"


@dataclass(frozen=True)
class PecFacts:
    """What a PEC decision may know of the matched beneficiary: never a name or a NIR."""

    beneficiary_id: int
    insurer_id: int
    birth_year: int
    birth_month: int | None
    birth_day: int | None
    contract: ContractFacts
    coverage: CoverageFacts
    product_responsible: bool
    guarantee: (
        dict | None
    )  # tp_code, rate_percent, amount_cents, pec_required, ceilings (cents), effective_from


_PEC_FACTS = hot_sql.Statement(
    """
    SELECT b.birth_year, b.birth_month, b.birth_day, p.responsible
    FROM registry_beneficiary b
    JOIN registry_contract c ON c.id = b.contract_id
    JOIN registry_product p ON p.id = c.product_id
    WHERE b.id = %s
    """,
    [
        hot_sql.field(Beneficiary, "birth_year"),
        hot_sql.field(Beneficiary, "birth_month"),
        hot_sql.field(Beneficiary, "birth_day"),
        hot_sql.field(Product, "responsible"),
    ],
)


def pec_facts(found: Found, card: CardData) -> PecFacts:
    year, month, day, responsible = _PEC_FACTS.first([found.beneficiary_id])
    guarantee = (
        Guarantee.objects.filter(
            product__contracts__beneficiaries__id=found.beneficiary_id,
            domain=card.domain,
            effective_from__lte=card.care_date,
        )
        .order_by("-effective_from")
        .values("tp_code", "rate_percent", "amount_cents", "pec_required", "ceilings", "effective_from")
        .first()
    )
    return PecFacts(
        beneficiary_id=found.beneficiary_id,
        insurer_id=found.insurer_id,
        birth_year=year,
        birth_month=month,
        birth_day=day,
        contract=found.contract,
        coverage=found.coverage,
        product_responsible=bool(responsible),
        guarantee=guarantee,
    )


def decide_pec(actor: Actor, card: CardData, decide: Callable[[PecFacts], object]):
    """Identify the patient as the rights check does (``card.care_date`` = the delivery date), then call
    ``decide(facts)`` inside the same transaction as the ledger row. Returns (decide's result or None on a
    miss, the ledger reference).

    Validate everything that does not need the beneficiary *before* calling this. If ``decide`` raises, its
    writes are undone but the ledger row is written (outcome ``rejected``) before the exception goes on: an
    answer that differs because the card matched is always recorded.
    """
    fields = ["identity_confirmed", f"coverage:{card.domain}", f"pec_amounts:{card.domain}"]

    def judge(found: Found) -> Verdict:
        result = decide(pec_facts(found, card))
        outcome = getattr(result, "ledger_outcome", Disclosure.Outcome.COVERED)
        return Verdict(outcome, fields, result)

    recorded = identify_and_record(actor, card, PURPOSE_PEC, judge)
    return (recorded.verdict.result if recorded.verdict else None), recorded.row.reference
