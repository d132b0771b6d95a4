"""Asking for a prise en charge: identify through the gate, decide with the pure engine, store, answer.

No HTTP here: the API endpoint and the portal form call :func:`request_pec`. A request with bad input
stores nothing; bad input that the request alone shows is refused before the card is looked up (no
ledger row, the same answer for every card), and bad input that only the beneficiary's facts reveal is
refused after its ledger row (outcome ``rejected``). An identical request with the same idempotency key
returns the PEC already decided.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from rempart import gate
from rempart.authorizations import rules
from rempart.authorizations.catalogue import default_catalogue
from rempart.authorizations.models import Pec
from rempart.authorizations.optics import Correction
from rempart.ledger.models import Disclosure
from rempart.lib.identifiers import LunarDate
from rempart.registry.models import NO_TIERS_PAYANT_CODES
from rempart.rights.cards import CardData

PEC_DOMAINS = ("OPTI", "AUDI")


class PecConflict(ValueError):
    """The idempotency key was used before for a different request."""


@dataclass(frozen=True)
class PecOutcome:
    pec: Pec | None  # None: no beneficiary matches the card data (the uniform no-match answer)
    reference: str  # the ledger reference of this request (or of the first one, when replayed)
    replayed: bool = False


def _fingerprint(card: CardData, request: rules.PecRequest) -> str:
    from rempart.lib.crypto import field_cipher

    presented = field_cipher().fingerprint(
        "pec-request",
        card.amc_number,
        card.adherent_number,
        card.nir,
        str(card.birth_date),
        str(card.birth_rank),
    )
    body = json.dumps(request.as_dict(), sort_keys=True).encode()
    return hashlib.sha256(bytes(presented) + body).hexdigest()


def _history(beneficiary_id: int, domain: str) -> list[rules.HistoryItem]:
    items = []
    for stored in Pec.objects.filter(
        beneficiary_id=beneficiary_id, domain=domain, cancelled_at__isnull=True
    ).exclude(status=Pec.Status.REFUSED):
        for item in stored.decision.get("history", []):
            correction = item.get("correction")
            items.append(
                rules.HistoryItem(
                    domain=item["domain"],
                    delivery_date=dt.date.fromisoformat(item["delivery_date"]),
                    item=item["item"],
                    side=item["side"],
                    correction=Correction.of(**correction) if correction else None,
                )
            )
    return items


def _history_json(items: tuple[rules.HistoryItem, ...]) -> list[dict]:
    return [
        {
            "domain": item.domain,
            "delivery_date": item.delivery_date.isoformat(),
            "item": item.item,
            "side": item.side,
            "correction": (
                {
                    "sphere": str(item.correction.sphere),
                    "cylinder": str(item.correction.cylinder),
                    "addition": str(item.correction.addition),
                }
                if item.correction
                else None
            ),
        }  # fmt: skip
        for item in items
    ]


def _facts(facts: gate.PecFacts) -> rules.BeneficiaryFacts:
    contract, coverage = facts.contract, facts.coverage
    ends = [d for d in (contract.end_date, coverage.end) if d is not None]
    guarantee = facts.guarantee
    terms = None
    if (
        guarantee is not None
        and guarantee["tp_code"] not in NO_TIERS_PAYANT_CODES
        and contract.status == "active"
    ):
        terms = rules.GuaranteeTerms(
            rate_percent=guarantee["rate_percent"],
            amount_cents=guarantee["amount_cents"],
            ceilings=dict(guarantee["ceilings"] or {}),
        )
    return rules.BeneficiaryFacts(
        birth_date=LunarDate(facts.birth_year, facts.birth_month, facts.birth_day),
        rights_start=max(contract.start_date, coverage.start),
        rights_end=min(ends) if ends else None,
        product_responsible=facts.product_responsible,
        guarantee=terms,
    )


class _Decided:
    """What the gate's callback hands back: the stored PEC, and the ledger outcome it stands for."""

    def __init__(self, pec: Pec) -> None:
        self.pec = pec
        refused = pec.status == Pec.Status.REFUSED
        self.ledger_outcome = Disclosure.Outcome.NOT_COVERED if refused else Disclosure.Outcome.COVERED


def request_pec(
    actor: gate.Actor, card: CardData, request: rules.PecRequest, *, idempotency_key: str = ""
) -> PecOutcome:
    """Decide and store one PEC (raises rules.PecInputError for bad input, PecConflict for a reused key)."""
    if request.domain not in PEC_DOMAINS or card.domain != request.domain:
        raise rules.PecInputError(
            None, "domain", "une prise en charge se demande en optique (OPTI) ou en audiologie (AUDI)"
        )
    gate.refuse_foreign_domain(actor, gate.PURPOSE_PEC, request.domain)  # 403, recorded, before anything else
    today = timezone.localdate()
    # Everything that does not need the beneficiary is checked before the card is looked up: a bad quote
    # gets the same 400 whether the card matched or not. What only the beneficiary's facts reveal (a code
    # reserved to another age) is raised inside the gate, which records it (outcome "rejected").
    rules.check_request(request, None, default_catalogue(), rules.default_rules(), today)
    fingerprint = _fingerprint(card, request)
    key = idempotency_key.strip()[:80]
    if key:
        previous = Pec.objects.filter(organisation_id=actor.organisation_id, idempotency_key=key).first()
        if previous is not None:
            if previous.request_fingerprint != fingerprint:
                raise PecConflict("cette clé d'idempotence a déjà servi pour une autre demande")
            return PecOutcome(previous, previous.ledger_reference, replayed=True)

    def decide(facts: gate.PecFacts) -> _Decided:
        decision = rules.decide(
            request, _facts(facts), _history(facts.beneficiary_id, request.domain),
            default_catalogue(), rules.default_rules(), today=today,
        )  # fmt: skip
        stored = decision.as_dict()
        stored["history"] = _history_json(rules.history_items(request, decision))
        pec = Pec.objects.create(
            organisation_id=actor.organisation_id,
            user_id=actor.user_id,
            token_id=actor.token_id,
            insurer_id=facts.insurer_id,
            beneficiary_id=facts.beneficiary_id,
            domain=request.domain,
            status=decision.status,
            delivery_date=request.delivery_date,
            valid_until=decision.valid_until,
            quote=request.as_dict(),
            decision=stored,
            total_committed_cents=decision.totals.amc_cents,
            rule_version=decision.rule_version,
            data_version=decision.data_version,
            ledger_reference="",
            idempotency_key=key,
            request_fingerprint=fingerprint,
        )
        return _Decided(pec)

    try:
        decided, reference = gate.decide_pec(actor, card, decide)
    except IntegrityError:  # the same key, decided concurrently: answer with that one
        previous = Pec.objects.filter(organisation_id=actor.organisation_id, idempotency_key=key).first()
        if previous is None or previous.request_fingerprint != fingerprint:
            raise PecConflict("cette clé d'idempotence a déjà servi pour une autre demande") from None
        return PecOutcome(previous, previous.ledger_reference, replayed=True)
    if decided is None:
        return PecOutcome(None, reference)
    Pec.objects.filter(pk=decided.pec.pk).update(ledger_reference=reference)
    decided.pec.ledger_reference = reference
    return PecOutcome(decided.pec, reference)


def cancel_pec(pec: Pec, organisation_id: int) -> bool:
    """Cancel a PEC of one's own organisation (not once an invoice consumed it)."""
    with transaction.atomic():
        updated = Pec.objects.filter(
            pk=pec.pk, organisation_id=organisation_id, cancelled_at__isnull=True, consumed_at__isnull=True
        ).update(cancelled_at=timezone.now())
    return bool(updated)


def blocking_pecs(pec: Pec) -> list[Pec]:
    """The shop's own PECs, still open (neither cancelled nor invoiced), that refused lines of ``pec`` as too
    early a renewal: a revised quote for the same patient meets the shop's first one. Only the same shop's:
    another shop's PEC is not shown (its number and date would tell where the patient went)."""
    lines = pec.decision.get("lines") or []
    dates = {
        line["previous_delivery"]
        for line in lines
        if line.get("status") == "refused"
        and rules.Reason.RENEWAL_TOO_EARLY in (line.get("reasons") or ())
        and line.get("previous_delivery")
    }
    if not dates:
        return []
    return list(
        Pec.objects.filter(
            organisation_id=pec.organisation_id, beneficiary_id=pec.beneficiary_id, domain=pec.domain,
            cancelled_at__isnull=True, consumed_at__isnull=True, delivery_date__in=sorted(dates),
        ).exclude(status=Pec.Status.REFUSED).exclude(pk=pec.pk).order_by("delivery_date", "created_at")
    )  # fmt: skip
