"""Receiving one invoice: check it, identify the patient through the gate, adjudicate, store, post the money.

No HTTP here: the API, the lot import and the portal call :func:`submit_claim`. The order is what keeps
an invoice from being an oracle:

1. the care domain must be the organisation's (refused and recorded by the gate otherwise);
2. everything the invoice shows by itself (totals, codes, dates, prescriber, PEC number) is checked
   *before* the lookup: a bad invoice gets the same 400 whether the card matched or not;
3. an invoice number already used by the organisation replays its answer (same body) or is a conflict
   (another body) — the organisation's own data, whatever the card;
4. the gate identifies the patient and, inside the same transaction as its ledger row, the claim is
   adjudicated by the pure rules, stored, its PEC consumed and its money posted; a miss is *no match*.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from rempart import gate
from rempart.accounts.events import record_event
from rempart.accounts.models import User
from rempart.authorizations.catalogue import default_catalogue
from rempart.authorizations.models import Pec
from rempart.claims import postings, rules
from rempart.claims.models import Claim, ClaimLine, ClaimLot, CreditNote
from rempart.ledger.models import Disclosure
from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import InvalidIdentifier, validate_rpps
from rempart.registry.models import Professional
from rempart.rights.cards import CardData


class ClaimConflict(ValueError):
    """The invoice number was used before by this organisation for a different invoice."""


@dataclass(frozen=True)
class ClaimOutcome:
    claim: Claim | None  # None: no beneficiary matches the card data (the uniform no-match answer)
    reference: str  # the ledger reference of this request (or of the first one, when replayed)
    replayed: bool = False


def fingerprint(card: CardData, invoice: rules.Invoice) -> str:
    """Keyed: says whether two bodies are the same invoice without keeping the card data in clear."""
    presented = field_cipher().fingerprint(
        "claim-request",
        card.amc_number,
        card.adherent_number,
        card.nir,
        str(card.birth_date),
        str(card.birth_rank),
    )
    body = json.dumps(invoice_as_dict(invoice), sort_keys=True, default=str).encode()
    return hashlib.sha256(bytes(presented) + body).hexdigest()


def invoice_as_dict(invoice: rules.Invoice) -> dict:
    return {
        "invoice_number": invoice.invoice_number,
        "invoice_date": invoice.invoice_date.isoformat(),
        "care_date": invoice.care_date.isoformat(),
        "domain": invoice.domain,
        "prescriber_rpps": invoice.prescriber_rpps,
        "pec_number": invoice.pec_number,
        "lines": [
            {
                "number": line.number,
                "code_system": line.code_system,
                "code": line.code,
                "lpp_class": line.lpp_class,
                "side": line.side,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
                "base_cents": line.base_cents,
                "amo_paid_cents": line.amo_paid_cents,
                "amc_claimed_cents": line.amc_claimed_cents,
            }
            for line in invoice.lines
        ],
        "total_price_cents": invoice.total_price_cents,
        "total_amo_cents": invoice.total_amo_cents,
        "total_amc_cents": invoice.total_amc_cents,
    }


class _Decided:
    """What the gate's callback hands back: the stored claim, and the ledger outcome it stands for."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        rejected = claim.status == Claim.Status.REJECTED
        self.ledger_outcome = Disclosure.Outcome.NOT_COVERED if rejected else Disclosure.Outcome.COVERED


def _rights(facts: gate.ClaimFacts, invoice: rules.Invoice) -> rules.RightsFacts:
    """The rights at the care date, and what the insurer already accepted this calendar year (yearly ceilings)."""
    year_start = invoice.care_date.replace(month=1, day=1)
    accepted = ClaimLine.objects.filter(
        beneficiary_id=facts.beneficiary_id,
        claim__domain=invoice.domain,
        care_date__gte=year_start,
        care_date__lte=invoice.care_date,
        status__in=(ClaimLine.Status.ACCEPTED, ClaimLine.Status.REDUCED),
    ).aggregate(total=Sum("accepted_cents"))["total"]
    return rules.rights_facts(
        facts.contract,
        facts.coverage,
        facts.guarantee,
        facts.product_responsible,
        invoice.care_date,
        year_accepted_cents=accepted or 0,
    )


def _convention(organisation_id: int) -> rules.ConventionFacts:
    professional = Professional.objects.filter(organisation__id=organisation_id).first()
    if professional is None:
        return rules.ConventionFacts(in_force=False, domains=())
    return rules.ConventionFacts(
        in_force=professional.convention == Professional.Convention.CONVENTIONNE,
        domains=tuple(professional.domains or ()),
    )


def _pec(
    number: str | None, organisation_id: int, beneficiary_id: int
) -> tuple[Pec | None, rules.PecFacts | None]:
    """The PEC the invoice names, locked for this transaction (two invoices racing for one PEC: one wins)."""
    if not number:
        return None, None
    pec = Pec.objects.select_for_update().filter(number=number.strip().upper()).first()
    if pec is None:
        return None, None
    facts = rules.PecFacts(
        number=pec.number,
        same_organisation=pec.organisation_id == organisation_id,
        same_beneficiary=pec.beneficiary_id == beneficiary_id,
        status=pec.status,
        valid_until=pec.valid_until,
        cancelled=pec.cancelled_at is not None,
        consumed=pec.consumed_at is not None,
        lines=rules.pec_lines(pec.quote, pec.decision),
        domain=pec.domain,
    )
    return pec, facts


def _prior_lines(organisation_id: int, beneficiary_id: int, invoice: rules.Invoice) -> list[rules.PriorLine]:
    codes = {line.code for line in invoice.lines}
    rows = ClaimLine.objects.filter(
        organisation_id_copy=organisation_id,
        beneficiary_id=beneficiary_id,
        code__in=codes,
        care_date=invoice.care_date,
        status__in=(ClaimLine.Status.ACCEPTED, ClaimLine.Status.REDUCED, ClaimLine.Status.PENDING),
    ).values_list("code", "care_date", "amc_claimed_cents")
    return [rules.PriorLine(code=code, care_date=day, amc_claimed_cents=cents) for code, day, cents in rows]


def _store(actor, invoice, facts, decision, pec, *, channel, lot, lot_line, fingerprint_value) -> Claim:
    claim = new_claim(
        actor,
        invoice,
        facts,
        decision,
        pec,
        channel=channel,
        lot=lot,
        lot_line=lot_line,
        fingerprint_value=fingerprint_value,
    )
    claim.save(force_insert=True)
    ClaimLine.objects.bulk_create(new_lines(claim, invoice, decision))
    return claim


def new_claim(
    actor, invoice, facts, decision, pec, *, channel, lot, lot_line, fingerprint_value, ledger_reference=""
) -> Claim:
    """The claim as stored (not saved yet): the invoice, who sent it, how it was judged. No identity."""
    return Claim(
        organisation_id=actor.organisation_id,
        invoice_number=invoice.invoice_number,
        user_id=actor.user_id,
        token_id=actor.token_id,
        channel=channel,
        lot=lot,
        lot_line=lot_line,
        insurer_id=facts.insurer_id,
        beneficiary_id=facts.beneficiary_id,
        domain=invoice.domain,
        invoice_date=invoice.invoice_date,
        care_date=invoice.care_date,
        prescriber_rpps=_compact_rpps(invoice.prescriber_rpps),
        pec=pec,
        pec_number=invoice.pec_number or "",
        status=decision.status,
        total_price_cents=invoice.total_price_cents,
        total_amo_cents=invoice.total_amo_cents,
        claimed_cents=invoice.total_amc_cents,
        # Pending review: nothing is owed until an operator decides (the proposal stays in ``decision``).
        accepted_cents=0 if decision.status == Claim.Status.PENDING_REVIEW else decision.accepted_cents,
        decision=decision.as_dict(),
        rule_version=decision.rule_version,
        data_version=decision.data_version,
        request_fingerprint=fingerprint_value,
        ledger_reference=ledger_reference,
    )


def new_lines(claim: Claim, invoice: rules.Invoice, decision: rules.ClaimDecision) -> list[ClaimLine]:
    """The claim's lines with their decisions (not saved yet); pending review keeps the unrejected ones pending."""
    pending = decision.status == Claim.Status.PENDING_REVIEW
    by_number = {line.number: line for line in decision.lines}
    return [
        ClaimLine(
            claim=claim,
            number=line.number,
            organisation_id_copy=claim.organisation_id,
            beneficiary_id=claim.beneficiary_id,
            care_date=invoice.care_date,
            code_system=line.code_system,
            code=line.code,
            lpp_class=line.lpp_class or "",
            side=line.side or "",
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            base_cents=line.base_cents,
            amo_paid_cents=line.amo_paid_cents,
            amc_claimed_cents=line.amc_claimed_cents,
            status=ClaimLine.Status.PENDING
            if pending and by_number[line.number].status != "rejected"
            else by_number[line.number].status,
            accepted_cents=by_number[line.number].accepted_cents,
            reasons=list(by_number[line.number].reasons),
        )
        for line in invoice.lines
    ]


def submit_claim(
    actor: gate.Actor,
    card: CardData,
    invoice: rules.Invoice,
    *,
    channel: str,
    lot: ClaimLot | None = None,
    lot_line: int | None = None,
    today: dt.date | None = None,
) -> ClaimOutcome:
    """Receive one invoice. Raises rules.ClaimInputError (bad invoice), ClaimConflict (number reused),
    gate.RefusedDomain (a domain the organisation does not practise) and surveillance's CheckRefused."""
    gate.refuse_foreign_domain(actor, gate.PURPOSE_CLAIM, invoice.domain)
    today = today or timezone.localdate()
    claim_rules = rules.default_rules()
    rules.check_invoice(invoice, today=today, rules=claim_rules)
    fingerprint_value = fingerprint(card, invoice)
    previous = Claim.objects.filter(
        organisation_id=actor.organisation_id, invoice_number=invoice.invoice_number
    ).first()
    if previous is not None:
        return _replay(previous, fingerprint_value)

    def decide(facts: gate.ClaimFacts) -> _Decided:
        pec, pec_facts = _pec(invoice.pec_number, actor.organisation_id, facts.beneficiary_id)
        decision = rules.adjudicate(
            invoice,
            _rights(facts, invoice),
            _convention(actor.organisation_id),
            pec_facts,
            _prior_lines(actor.organisation_id, facts.beneficiary_id, invoice),
            catalogue=default_catalogue(),
            rules=claim_rules,
            today=today,
        )
        claim = _store(
            actor,
            invoice,
            facts,
            decision,
            pec,
            channel=channel,
            lot=lot,
            lot_line=lot_line,
            fingerprint_value=fingerprint_value,
        )
        if pec is not None and decision.status != Claim.Status.REJECTED:
            # Locked above (select_for_update): a concurrent invoice for the same PEC waits, then sees it consumed.
            Pec.objects.filter(pk=pec.pk).update(consumed_at=timezone.now())
        postings.post_adjudication(claim)
        return _Decided(claim)

    card = with_care_date(card, invoice.care_date)
    try:
        decided, row = gate.decide_claim(actor, card, decide)
    except IntegrityError:  # the same invoice number, received concurrently: answer with that one
        previous = Claim.objects.filter(
            organisation_id=actor.organisation_id, invoice_number=invoice.invoice_number
        ).first()
        if previous is None:
            raise
        return _replay(previous, fingerprint_value)
    if decided is None:
        return ClaimOutcome(None, row.reference)
    Claim.objects.filter(pk=decided.claim.pk).update(ledger_reference=row.reference)
    decided.claim.ledger_reference = row.reference
    return ClaimOutcome(decided.claim, row.reference)


def _replay(previous: Claim, fingerprint_value: str) -> ClaimOutcome:
    if previous.request_fingerprint != fingerprint_value:
        raise ClaimConflict("ce numéro de facture a déjà servi pour une autre facture")
    return ClaimOutcome(previous, previous.ledger_reference, replayed=True)


def _compact_rpps(value: str | None) -> str:
    """The 11 digits (the 12-digit IdNPS form and spaces are accepted by the rules, stored as the RPPS)."""
    if not value:
        return ""
    try:
        return validate_rpps(value)
    except InvalidIdentifier:
        return value[:11]


def with_care_date(card: CardData, care_date: dt.date) -> CardData:
    """The card as the gate reads it for an invoice: rights at the care date."""
    return dataclasses.replace(card, care_date=care_date)


def review_claim(
    claim: Claim, *, reviewer, decision: str, accepted_cents: int | None, reason: str, note: str, request=None
) -> Claim:
    """An operator's decision on a claim pending review: accept, reduce (to an amount) or reject, with a reason."""
    with transaction.atomic():
        locked = Claim.objects.select_for_update().get(pk=claim.pk)
        if locked.status != Claim.Status.PENDING_REVIEW:
            raise ValueError("cette facture n'est plus en examen")
        if decision == "accept":
            amount = locked.decision.get("accepted_cents", locked.accepted_cents)
        elif decision == "reduce":
            proposed = locked.decision.get("accepted_cents", locked.claimed_cents)
            if accepted_cents is None or not 0 <= accepted_cents <= proposed:
                raise ValueError("montant accepté attendu, entre 0 et le montant proposé par les règles")
            amount = accepted_cents
        elif decision == "reject":
            amount = 0
        else:
            raise ValueError(f"décision inconnue : {decision}")
        status = (
            Claim.Status.REJECTED
            if amount == 0
            else Claim.Status.ACCEPTED
            if amount == locked.claimed_cents
            else Claim.Status.PARTIAL
        )
        locked.status, locked.accepted_cents = status, amount
        locked.reviewed_by, locked.reviewed_at = reviewer, timezone.now()
        locked.review_reason, locked.review_note = reason, note
        locked.save(
            update_fields=[
                "status",
                "accepted_cents",
                "reviewed_by",
                "reviewed_at",
                "review_reason",
                "review_note",
            ]
        )
        _spread_review(locked, amount)
        if status == Claim.Status.REJECTED and locked.pec_id:
            Pec.objects.filter(pk=locked.pec_id).update(consumed_at=None)  # the PEC can be invoiced again
        postings.post_adjudication(locked)
        record_event(
            "claim.reviewed",
            request=request,
            user=reviewer,
            invoice=locked.invoice_number,
            claim=locked.pk,
            professional_organisation=locked.organisation_id,
            decision=decision,
            accepted_cents=amount,
            reason=reason,
        )
    return locked


def _spread_review(claim: Claim, amount: int) -> None:
    """The reviewed amount over the lines, in line order, never above what each line would have been accepted for."""
    remaining = amount
    for line in claim.lines.order_by("number"):
        if line.status == ClaimLine.Status.REJECTED:
            continue
        share = min(line.accepted_cents, remaining)
        remaining -= share
        status = (
            ClaimLine.Status.ACCEPTED
            if share == line.amc_claimed_cents
            else ClaimLine.Status.REDUCED
            if share
            else ClaimLine.Status.REJECTED
        )
        ClaimLine.objects.filter(pk=line.pk).update(accepted_cents=share, status=status)


class CreditRefused(ValueError):
    """A credit note that cannot be applied (claim not owed, amount above what is left, number reused)."""


def credit_claim(
    actor: gate.Actor, claim: Claim, *, number: str, amount_cents: int, reason: str
) -> CreditNote:
    """Record an *avoir* on one of the organisation's accepted claims and post it (idempotent by its number)."""
    with transaction.atomic():
        locked = Claim.objects.select_for_update().get(pk=claim.pk, organisation_id=actor.organisation_id)
        previous = CreditNote.objects.filter(organisation_id=actor.organisation_id, number=number).first()
        if previous is not None:
            if (previous.claim_id, previous.amount_cents) != (locked.pk, amount_cents):
                raise CreditRefused("ce numéro d'avoir a déjà servi pour un autre avoir")
            return previous
        if locked.status not in postings.OWED:
            raise CreditRefused("seule une facture acceptée peut recevoir un avoir")
        left = postings.worth(locked)
        if not 0 < amount_cents <= left:
            raise CreditRefused(f"montant de l'avoir attendu entre 1 et {left} centimes (ce qui reste dû)")
        note = CreditNote.objects.create(
            claim=locked,
            number=number,
            organisation_id=actor.organisation_id,
            amount_cents=amount_cents,
            reason=reason[:200],
            user_id=actor.user_id,
            token_id=actor.token_id,
        )
        postings.post_adjudication(locked, kind=postings.accounting.Kind.CLAIM_REVERSED)
        record_event(
            "claim.credited",
            user=User.objects.filter(pk=actor.user_id).first() if actor.user_id else None,
            organisation=locked.organisation,
            invoice=locked.invoice_number,
            credit_note=note.number,
            amount_cents=amount_cents,
            channel=actor.channel,
            token=actor.session_ref if actor.token_id else "",
        )
    return note
