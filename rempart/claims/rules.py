"""Claims adjudication: an invoice and what the gate found, in; a decision per line and per invoice, out.

Pure: no database, no HTTP, no clock (``today`` is passed in). The claims app checks the invoice first
(:func:`check_invoice`, before the patient is identified), then identifies the patient through the gate
(purpose ``claim``), gathers the facts below and calls :func:`adjudicate`. The decision carries the rule
and data versions that make it reproducible. The rules, their order and their sources are documented,
with worked cases, in docs/claims-cases.md; in short:

1. **The invoice as a whole** (every line rejected with one code): rights open on the care date; the
   professional's tiers payant agreement in force and covering the domain; tiers payant granted for the
   domain (``tp_code`` not in ``NO_TIERS_PAYANT_CODES``); for the domains paid against a prise en charge
   (PEC): the PEC found for this organisation, for this beneficiary, granted, not cancelled, not already
   invoiced, valid on the care date.
2. **Each line**: not a duplicate of a line already accepted (same code, care date and amount); a
   catalogue code of the domain and class (optics, audiology); then its limits — the PEC's commitment
   for the matching PEC line, or the guarantee (rate of the BR *AMO included* minus what the AMO paid,
   flat amount, ceilings), and the price limit (PLV) of its class. The line is paid the lowest of the
   claimed amount and its limits, integer cents; the limit (or tied limits) that set it are named.
3. **Review** (configurable): above an amount, or on listed anomalies, an invoice that pays something
   waits for an operator (``pending_review``), with the amounts proposed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rempart.authorizations.arithmetic import percent_of, split_in_proportion
from rempart.authorizations.catalogue import Catalogue
from rempart.authorizations.wording import eur
from rempart.registry.models import NO_TIERS_PAYANT_CODES
from rempart.rights.coverage import ContractFacts, CoverageFacts

from .invoice_checks import LEFT, RIGHT, ClaimInputError, Invoice, InvoiceLine, check_invoice
from .reasons import REASONS, Reason, label
from .ruleset import ClaimRules, ClaimRulesError, DomainRules, default_rules, load_rules, parse_rules

__all__ = [
    "ACCEPTED",
    "LEFT",
    "PARTIALLY_ACCEPTED",
    "PENDING_REVIEW",
    "REASONS",
    "REDUCED",
    "REJECTED",
    "RIGHT",
    "ClaimDecision",
    "ClaimInputError",
    "ClaimRules",
    "ClaimRulesError",
    "ConventionFacts",
    "GuaranteeTerms",
    "Invoice",
    "InvoiceLine",
    "LineDecision",
    "PecFacts",
    "PecLine",
    "PriorLine",
    "Reason",
    "RightsFacts",
    "adjudicate",
    "check_invoice",
    "default_rules",
    "label",
    "load_rules",
    "parse_rules",
    "pec_lines",
    "rights_facts",
]

ACCEPTED, REDUCED, REJECTED = "accepted", "reduced", "rejected"
PARTIALLY_ACCEPTED, PENDING_REVIEW = "partially_accepted", "pending_review"
PEC_GRANTED = frozenset({"accepted", "partially_accepted"})


# ---------------------------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class GuaranteeTerms:
    """The product's terms for the domain on the care date (registry ``Guarantee``)."""

    tp_code: str
    rate_percent: int | None  # % of the BR, AMO share included ("100" = the ticket modérateur)
    amount_cents: int | None  # a flat amount, once per invoice
    ceilings: Mapping[str, int | None] = field(default_factory=dict)  # cents; products-v1 §3 keys
    pec_required: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping) -> GuaranteeTerms:
        """From the gate's guarantee dict (``tp_code``, ``rate_percent``, ``amount_cents``, ``ceilings``…)."""
        return cls(
            tp_code=str(values.get("tp_code") or ""),
            rate_percent=values.get("rate_percent"),
            amount_cents=values.get("amount_cents"),
            ceilings=dict(values.get("ceilings") or {}),
            pec_required=bool(values.get("pec_required")),
        )


@dataclass(frozen=True)
class RightsFacts:
    """From the gate, at the care date."""

    rights_open: bool  # contract active and coverage open on the care date
    guarantee: GuaranteeTerms | None  # None: no terms for the domain on the care date
    product_responsible: bool  # kept with the facts; the v1 rules do not use it (the PEC did)
    # What the insurer already accepted for this beneficiary and domain in the calendar year of the care
    # date (every organisation): the guarantee's ``yearly_max`` applies to what is left.
    year_accepted_cents: int = 0


@dataclass(frozen=True)
class ConventionFacts:
    """The professional's tiers payant agreement (registry ``Professional``)."""

    in_force: bool
    domains: tuple[str, ...]


@dataclass(frozen=True)
class PecLine:
    """One *accepted* line of the PEC, with what the insurer committed on it."""

    lpp_code: str
    lpp_class: str
    side: str | None
    quantity: int
    amc_cents: int


@dataclass(frozen=True)
class PecFacts:
    """The PEC named by the invoice as the claims app found it (pass None when no PEC has that number)."""

    number: str
    same_organisation: bool
    same_beneficiary: bool
    status: str  # accepted | partially_accepted | refused
    valid_until: dt.date | None
    cancelled: bool
    consumed: bool  # already consumed by another invoice
    lines: tuple[PecLine, ...]
    domain: str | None = None  # when given, a PEC of another domain is not this invoice's


@dataclass(frozen=True)
class PriorLine:
    """A line already accepted for the same organisation and beneficiary."""

    code: str
    care_date: dt.date
    amc_claimed_cents: int


def rights_facts(
    contract: ContractFacts,
    coverage: CoverageFacts,
    guarantee: Mapping | None,
    product_responsible: bool,
    care_date: dt.date,
    year_accepted_cents: int = 0,
) -> RightsFacts:
    """The facts from what the gate's ``ClaimFacts`` carries (the same rule as the rights check)."""

    def within(start: dt.date, end: dt.date | None) -> bool:
        return start <= care_date and (end is None or care_date <= end)

    open_ = (
        contract.status == "active"
        and within(contract.start_date, contract.end_date)
        and within(coverage.start, coverage.end)
    )
    terms = GuaranteeTerms.from_mapping(guarantee) if guarantee is not None else None
    return RightsFacts(open_, terms, product_responsible, year_accepted_cents)


def pec_lines(quote: Mapping, decision: Mapping) -> tuple[PecLine, ...]:
    """The accepted lines of a stored PEC (``Pec.quote`` and ``Pec.decision``, as the PEC engine wrote them)."""
    quoted = quote.get("lines") or []
    lines = []
    for decided in decision.get("lines") or []:
        if decided.get("status") != "accepted":
            continue
        index = int(decided["line"]) - 1
        quantity = int(quoted[index]["quantity"]) if 0 <= index < len(quoted) else 1
        lines.append(
            PecLine(
                lpp_code=str(decided["lpp_code"]),
                lpp_class=str(decided["class"]),
                side=decided.get("side"),
                quantity=quantity,
                amc_cents=int(decided["amc_cents"]),
            )
        )
    return tuple(lines)


# ---------------------------------------------------------------------------------------------- output


@dataclass(frozen=True)
class LineDecision:
    number: int
    status: str  # accepted | reduced | rejected
    claimed_cents: int
    accepted_cents: int
    reasons: tuple[str, ...]
    explanation: str  # French

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "status": self.status,
            "claimed_cents": self.claimed_cents,
            "accepted_cents": self.accepted_cents,
            "reasons": list(self.reasons),
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class ClaimDecision:
    status: str  # accepted | partially_accepted | rejected | pending_review
    lines: tuple[LineDecision, ...]
    claimed_cents: int
    accepted_cents: int  # proposed, when pending review
    reasons: tuple[str, ...]  # the rejection and reduction codes met, in line order
    review_reasons: tuple[str, ...]
    rule_version: str
    data_version: str
    explanation: str  # French

    def as_dict(self) -> dict:
        """JSON-able, stored with the claim."""
        return {
            "status": self.status,
            "lines": [line.as_dict() for line in self.lines],
            "claimed_cents": self.claimed_cents,
            "accepted_cents": self.accepted_cents,
            "reasons": list(self.reasons),
            "review_reasons": list(self.review_reasons),
            "rule_version": self.rule_version,
            "data_version": self.data_version,
            "explanation": self.explanation,
        }


# ---------------------------------------------------------------------------------------------- work


@dataclass
class _Line:
    line: InvoiceLine
    rejected: Reason | None = None
    limits: list[tuple[int, Reason]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pec_backed: bool = False
    accepted: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def claimed(self) -> int:
        return self.line.amc_claimed_cents

    def reject(self, reason: Reason, note: str) -> None:
        self.rejected = reason
        self.notes = [note]

    def limit(self, cents: int, reason: Reason, note: str) -> None:
        self.limits.append((max(0, cents), reason))
        self.notes.append(note)

    def settle(self) -> None:
        """The lowest of the claimed amount and the limits; the limits that set it, when below the claim, are named."""
        if self.rejected is not None:
            self.accepted, self.reasons = 0, (str(self.rejected),)
            return
        self.accepted = min([self.claimed, *(cents for cents, _ in self.limits)])
        below = [reason for cents, reason in self.limits if cents == self.accepted < self.claimed]
        if self.accepted == 0 and below:  # rejected: one reason, the first limit that gave nothing
            below = [Reason.NO_AMC_SHARE if below[0] == Reason.REDUCED_TO_GUARANTEE else below[0]]
        self.reasons = tuple(str(reason) for reason in dict.fromkeys(below))

    @property
    def status(self) -> str:
        if self.rejected is not None or (self.accepted == 0 and self.claimed > 0):
            return REJECTED
        return REDUCED if self.accepted < self.claimed else ACCEPTED


def _date_fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _invoice_refusal(
    invoice: Invoice,
    rights: RightsFacts,
    convention: ConventionFacts,
    pec: PecFacts | None,
    domain: DomainRules,
) -> tuple[Reason, str] | None:
    """The first reason why no line of the invoice can be paid, with a French note; None if none."""
    if not rights.rights_open:
        # No date is disclosed: the beneficiary's rights period is not the professional's to learn.
        return Reason.RIGHTS_CLOSED, "Les droits du bénéficiaire ne sont pas ouverts à la date des soins."
    if not convention.in_force:
        return Reason.NO_CONVENTION, "Aucune convention de tiers payant en vigueur pour ce professionnel."
    if invoice.domain not in convention.domains:
        return (
            Reason.DOMAIN_NOT_IN_CONVENTION,
            "La convention de tiers payant du professionnel ne couvre pas ce domaine de soins.",
        )
    terms = rights.guarantee
    if terms is None or terms.tp_code.strip().upper() in NO_TIERS_PAYANT_CODES:
        return (
            Reason.NO_TIERS_PAYANT,
            "Le contrat ne prévoit pas de tiers payant pour ce domaine à la date des soins.",
        )
    if not domain.pec:
        return None
    # A PEC of another organisation reads as one that does not exist: PEC numbers are not to be probed.
    if (
        pec is None
        or not pec.same_organisation
        or pec.number != invoice.pec_number
        or (pec.domain is not None and pec.domain != invoice.domain)
    ):
        return (
            Reason.PEC_NOT_FOUND,
            "Aucune prise en charge de ce numéro pour ce professionnel et ce domaine.",
        )
    if not pec.same_beneficiary:
        return (
            Reason.PEC_OTHER_BENEFICIARY,
            "Cette prise en charge a été accordée pour un autre bénéficiaire.",
        )
    if pec.status not in PEC_GRANTED:
        return Reason.PEC_REFUSED, "Cette prise en charge a été refusée : elle ne permet pas de facturer."
    if pec.cancelled:
        return Reason.PEC_CANCELLED, "Cette prise en charge a été annulée."
    if pec.consumed:
        return Reason.PEC_CONSUMED, "Cette prise en charge a déjà été facturée."
    if pec.valid_until is None or pec.valid_until < invoice.care_date:
        until = f" jusqu'au {_date_fr(pec.valid_until)}" if pec.valid_until else ""
        return (
            Reason.PEC_EXPIRED,
            f"Cette prise en charge était valable{until} ; soins du {_date_fr(invoice.care_date)}.",
        )
    return None


def _duplicates(
    works: list[_Line], invoice: Invoice, prior: tuple[PriorLine, ...], review: set[Reason]
) -> None:
    same_day = {}
    for item in prior:
        if item.care_date == invoice.care_date:
            same_day.setdefault(item.code, set()).add(item.amc_claimed_cents)
    for w in works:
        amounts = same_day.get(w.line.code)
        if not amounts:
            continue
        if w.claimed in amounts:
            w.reject(
                Reason.DUPLICATE,
                f"Ce code a déjà été facturé et accepté pour ces soins du {_date_fr(invoice.care_date)}, "
                f"pour le même montant ({eur(w.claimed)}).",
            )
        else:
            review.add(Reason.POSSIBLE_DUPLICATE)


def _catalogue(works: list[_Line], invoice: Invoice, catalogue: Catalogue) -> None:
    """Optics and audiology lines: a code of the domain valid on the care date, its class, its price limit."""
    for w in works:
        if w.rejected is not None or w.line.code_system != "LPP":
            continue
        line = w.line
        entry = catalogue.lookup(line.code, invoice.care_date)
        if entry is None or entry.domain != invoice.domain:
            w.reject(
                Reason.UNKNOWN_CODE, "Ce code LPP n'est pas au catalogue de ce domaine à la date des soins."
            )
            continue
        if (line.lpp_class or "").strip().upper() != entry.lpp_class:
            w.reject(
                Reason.CLASS_MISMATCH,
                f"Classe indiquée différente de celle du code au catalogue (classe {entry.lpp_class}).",
            )
            continue
        plv = entry.price_limit_cents
        if plv is not None and line.unit_price_cents > plv:
            at_limit = plv * line.quantity - line.amo_paid_cents
            w.limit(
                at_limit,
                Reason.PRICE_ABOVE_LIMIT,
                f"Prix au-dessus du prix limite de vente de la classe {entry.lpp_class} ({eur(plv)}) : part "
                f"complémentaire au plus {eur(max(0, at_limit))} (prix limite moins la part obligatoire).",
            )


def _side(value: str | None) -> str | None:
    return value or None


def _against_pec(works: list[_Line], pec: PecFacts) -> None:
    """Each line matches one PEC line (code and side, then class and quantity) and is held to its commitment."""
    available = list(pec.lines)
    for w in works:
        if w.rejected is not None:
            continue
        line = w.line
        index = next(
            (
                i
                for i, p in enumerate(available)
                if p.lpp_code == line.code and _side(p.side) == _side(line.side)
            ),
            None,
        )
        if index is None:
            w.reject(Reason.NOT_IN_PEC, "Aucune ligne de la prise en charge pour ce code et ce côté.")
            continue
        matched = available.pop(index)
        if matched.lpp_class.strip().upper() != (line.lpp_class or "").strip().upper():
            w.reject(
                Reason.PEC_LINE_MISMATCH, "La classe diffère de celle de la ligne de la prise en charge."
            )
            continue
        if matched.quantity != line.quantity:
            w.reject(
                Reason.PEC_LINE_MISMATCH,
                f"La quantité diffère de celle de la prise en charge ({matched.quantity}).",
            )
            continue
        w.pec_backed = True
        w.limit(
            matched.amc_cents,
            Reason.REDUCED_TO_PEC,
            f"Prise en charge {pec.number} : {eur(matched.amc_cents)} engagés sur cette ligne.",
        )


def _ceiling(terms: GuaranteeTerms, key: str) -> int | None:
    value = (terms.ceilings or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _by_guarantee(works: list[_Line], invoice: Invoice, rights: RightsFacts) -> None:
    """Rate of the BR (AMO included) minus the AMO, a flat amount once per invoice, then the ceilings."""
    terms = rights.guarantee
    assert terms is not None  # checked by _invoice_refusal
    live = [w for w in works if w.rejected is None]
    rate = terms.rate_percent
    parts = []
    for w in live:
        if rate is None:
            parts.append(0)
            continue
        parts.append(max(0, percent_of(w.line.base_cents, rate) - w.line.amo_paid_cents))
    # The flat amount fills what the rate leaves of each claim, in proportion (largest remainder).
    rooms = [max(0, w.claimed - part) for w, part in zip(live, parts, strict=True)]
    flat = terms.amount_cents or 0
    shares = split_in_proportion(min(flat, sum(rooms)), rooms)
    for w, part, share in zip(live, parts, shares, strict=True):
        line = w.line
        if rate is not None:
            how = (
                f"{rate} % de la base de remboursement ({eur(line.base_cents)}) moins la part obligatoire "
                f"({eur(line.amo_paid_cents)}) : {eur(part)}"
            )
        else:
            how = "pas de taux"
        if flat:
            how += f", plus {eur(share)} du forfait de {eur(flat)} par facture"
        w.limit(part + share, Reason.REDUCED_TO_GUARANTEE, f"Garantie : {how}.")
        per_act = _ceiling(terms, "prosthesis_max") if invoice.domain == "DENT" else None
        if per_act is not None:
            w.limit(
                per_act * line.quantity,
                Reason.ACT_CEILING,
                f"Plafond de la garantie par acte : {eur(per_act)}.",
            )
    yearly = _ceiling(terms, "yearly_max")
    if yearly is not None:
        left = max(0, yearly - rights.year_accepted_cents)
        for w in live:
            wanted = min([w.claimed, *(cents for cents, _ in w.limits)])
            w.limit(
                left,
                Reason.YEARLY_CEILING,
                f"Plafond annuel de la garantie : {eur(yearly)}, dont {eur(left)} encore disponibles.",
            )
            left -= min(wanted, left)


def adjudicate(
    invoice: Invoice,
    rights: RightsFacts,
    convention: ConventionFacts,
    pec: PecFacts | None,
    prior: Iterable[PriorLine],
    *,
    catalogue: Catalogue,
    rules: ClaimRules,
    today: dt.date,
    checked: bool = False,
) -> ClaimDecision:
    """Adjudicate one invoice. Raises :class:`ClaimInputError` for bad input (see :func:`check_invoice`).

    ``checked``: the caller already ran :func:`check_invoice` on it with the same rules and day (a lot's
    invoices are checked before any card is read)."""
    if not checked:
        check_invoice(invoice, today=today, rules=rules)
    domain = rules.domains[invoice.domain]
    works = [_Line(line) for line in invoice.lines]
    review: set[Reason] = set()
    refusal = _invoice_refusal(invoice, rights, convention, pec, domain)
    if refusal is not None:
        for w in works:
            w.reject(*refusal)
    else:
        _duplicates(works, invoice, tuple(prior), review)
        if invoice.domain in rules.catalogue_domains:
            _catalogue(works, invoice, catalogue)
        if domain.pec:
            assert pec is not None  # checked by _invoice_refusal
            _against_pec(works, pec)
        else:
            _by_guarantee(works, invoice, rights)
            if rights.guarantee is not None and rights.guarantee.pec_required:
                review.add(Reason.GUARANTEE_REQUIRES_PEC)
    for w in works:
        w.settle()
        if w.status != REJECTED and w.claimed > 0 and w.line.base_cents > 0 and w.line.amo_paid_cents == 0:
            review.add(Reason.AMO_NOT_PAID)
    if (today - invoice.care_date).days > rules.late_invoice_days:
        review.add(Reason.LATE_INVOICE)

    lines = tuple(_line_decision(w) for w in works)
    accepted = sum(line.accepted_cents for line in lines)
    claimed = sum(line.claimed_cents for line in lines)
    review_reasons = [reason for reason in review if str(reason) in rules.review_anomalies]
    counted = sum(w.accepted for w in works if rules.review_amount_counts_pec or not w.pec_backed)
    if rules.review_amount_cents is not None and counted > rules.review_amount_cents:
        review_reasons.append(Reason.AMOUNT_ABOVE_THRESHOLD)
    order = list(Reason)
    review_codes = tuple(str(r) for r in sorted(review_reasons, key=order.index)) if accepted > 0 else ()
    if accepted == 0:  # every line that claims something is rejected: nothing to pay
        status = REJECTED
    elif review_codes:
        status = PENDING_REVIEW
    elif all(line.status == ACCEPTED for line in lines):
        status = ACCEPTED
    else:
        status = PARTIALLY_ACCEPTED
    reasons = tuple(dict.fromkeys(r for line in lines for r in line.reasons))
    return ClaimDecision(
        status=status,
        lines=lines,
        claimed_cents=claimed,
        accepted_cents=accepted,
        reasons=reasons,
        review_reasons=review_codes,
        rule_version=rules.label,
        data_version=catalogue.data_version,
        explanation=_summary(status, lines, claimed, accepted, review_codes),
    )


_STATUS_FR = {ACCEPTED: "acceptée", REDUCED: "réduite", REJECTED: "rejetée"}


def _line_decision(w: _Line) -> LineDecision:
    notes = list(w.notes)
    status = w.status
    if status == REJECTED and w.rejected is None:
        notes.append(f"Demandé {eur(w.claimed)} : rien n'est dû sur cette ligne.")
    elif status != REJECTED:
        notes.append(f"Demandé {eur(w.claimed)}, accepté {eur(w.accepted)}.")
    return LineDecision(
        number=w.line.number,
        status=status,
        claimed_cents=w.claimed,
        accepted_cents=w.accepted,
        reasons=w.reasons,
        explanation=" ".join(notes) or f"Ligne {_STATUS_FR[status]}.",
    )


def _which(lines: Iterable[LineDecision], status: str) -> str:
    numbers = [str(line.number) for line in lines if line.status == status]
    if not numbers:
        return ""
    plural = "s" if len(numbers) > 1 else ""
    return f"ligne{plural} {', '.join(numbers)} {_STATUS_FR[status]}{plural}"


def _summary(
    status: str, lines: tuple[LineDecision, ...], claimed: int, accepted: int, review: tuple[str, ...]
) -> str:
    amounts = f"{eur(accepted)} pour la complémentaire sur {eur(claimed)} demandés"
    if status == ACCEPTED:
        return f"Facture acceptée : {amounts}."
    if status == REJECTED:
        first = next((line for line in lines if line.reasons), None)
        return f"Facture rejetée : {label(first.reasons[0])}." if first else "Facture rejetée."
    detail = " ; ".join(part for part in (_which(lines, REDUCED), _which(lines, REJECTED)) if part)
    detail = f" ({detail})" if detail else ""
    if status == PENDING_REVIEW:
        why = " ; ".join(label(code) for code in review)
        return f"Facture en examen par l'opérateur ({why}) : {amounts}, proposés{detail}."
    return f"Facture acceptée en partie{detail} : {amounts}."
