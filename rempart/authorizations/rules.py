"""The prise en charge (PEC) decision for optics and audiology: a quote in, amounts and reasons out.

Pure: no database, no HTTP, no clock (``today`` is passed in). The gate gathers the beneficiary's facts
and PEC history and calls :func:`decide`; bad input raises :class:`PecInputError` (nothing to store);
otherwise a :class:`PecDecision` comes back, with the rule and data versions that make it reproducible.

Figures are data, not code: the :class:`RuleSet` is read from ``data/rules-v1.json`` (``ruleset.py``:
every figure with its effective date and source) and the LPP codes from the catalogue (``catalogue.py``).
The request and facts are the values of ``inputs.py``, checked by ``request_checks.py``; this module
decides, and is the engine's entry point (the names in ``__all__``). The rules, with their sources, are
described in docs/pec-cases.md; in short:

- **Amounts** are integer cents. Percentages are rounded half up to the cent, explicitly
  (:func:`percent_of`). The AMO share is ``60 %`` of the line's base de remboursement (BR), never more
  than the price.
- **Class A / I (100 % santé), contrat responsable**: the insurer (AMC) pays the whole remainder after
  the AMO share; the price may not exceed the price limit (PLV), so the patient pays nothing.
- **Class B / II** (and every class when the product is not responsible): the product's guarantee.
  ``rate_percent`` is read as a % of the BR *AMO included* (the market's "100 % BR" = ticket
  modérateur), so the AMC part of a line is ``rate × BR − AMO`` (not below 0); ``amount_cents`` is a
  forfait added once per glasses equipment, or per ear. For glasses the sum is then held within the
  contrat responsable floor and ceiling of the equipment's complexity pair (and the product's own,
  when stricter), the frame within its sub-ceiling, and split over the lines in proportion to what
  each still costs after the AMO share. For hearing aids, each ear is held under the per-ear ceiling
  that includes the AMO share. A product that is not responsible has no contrat responsable floor or
  ceiling: only its own ``ceilings``, if any.
- **Refusals** (per line): rights not open on the delivery date, no tiers payant terms for the
  domain, renewal too early (with the date of the previous covered device on that eye or ear).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .arithmetic import AgeRange, add_months, percent_of, split_in_proportion
from .catalogue import Catalogue, CatalogueEntry
from .inputs import (
    AUDI,
    DEVICE,
    FRAME,
    LEFT,
    LENS,
    OPTI,
    RIGHT,
    SIDES,
    BeneficiaryFacts,
    GuaranteeTerms,
    HistoryItem,
    PecInputError,
    PecRequest,
    Prescription,
    QuoteLine,
)
from .optics import Complexity, correction_change, equipment_key
from .outputs import (
    ACCEPTED,
    PARTIALLY_ACCEPTED,
    REFUSED,
    LineDecision,
    PecDecision,
    Reason,
    Totals,
    history_items,
)
from .request_checks import check_request
from .ruleset import RuleSet, band_months, default_rules
from .wording import DOMAIN_FR, EAR, EYE, date_fr, duration_fr, eur

__all__ = [  # the engine's entry point: what the service, the API, the portal and FHIR use as rules.<name>
    "BeneficiaryFacts",
    "GuaranteeTerms",
    "HistoryItem",
    "PecDecision",
    "PecInputError",
    "PecRequest",
    "Prescription",
    "QuoteLine",
    "Reason",
    "check_request",
    "decide",
    "default_rules",
    "history_items",
]


# ---------------------------------------------------------------------------------------------- decision

_KEY_FR = {
    "simple_simple": "deux verres simples",
    "simple_complex": "un verre simple et un verre complexe",
    "simple_very_complex": "un verre simple et un verre très complexe",
    "complex_complex": "deux verres complexes",
    "complex_very_complex": "un verre complexe et un verre très complexe",
    "very_complex_very_complex": "deux verres très complexes",
}


@dataclass
class _Line:
    number: int
    line: QuoteLine
    entry: CatalogueEntry
    price: int
    base: int
    amo: int = 0
    amc: int = 0
    refused: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    previous: dt.date | None = None

    def refuse(self, reason: Reason, note: str, previous: dt.date | None = None) -> None:
        self.refused, self.amo, self.amc, self.previous = True, 0, 0, previous
        self.reasons = [reason]
        self.notes = [note]


def _conflict(items: list[HistoryItem], delivery: dt.date, months: int) -> HistoryItem | None:
    """The latest previous device within ``months`` of the delivery (either side of it), if any."""
    hits = [
        item
        for item in items
        if item.delivery_date <= delivery < add_months(item.delivery_date, months)
        or delivery < item.delivery_date < add_months(delivery, months)
    ]
    return max(hits, key=lambda item: item.delivery_date) if hits else None


def _sight_changed(request: PecRequest, history: list[HistoryItem], rules: RuleSet) -> bool:
    """A change of at least 0.5 D on one eye, or 0.25 D on each eye, since the last covered lenses."""
    changes = {}
    for side in SIDES:
        new = request.prescription.correction(side)
        previous = [
            h
            for h in history
            if h.item == LENS and h.side == side and h.correction and h.delivery_date <= request.delivery_date
        ]
        if new is not None and previous:
            last = max(previous, key=lambda h: h.delivery_date)
            changes[side] = correction_change(last.correction, new)
    if any(change >= rules.sight_change_one_eye for change in changes.values()):
        return True
    return len(changes) == 2 and all(change >= rules.sight_change_both_eyes for change in changes.values())


def _renewal(
    work: _Line,
    request: PecRequest,
    history: list[HistoryItem],
    ages: AgeRange,
    rules: RuleSet,
    sight_changed: bool,
    today: dt.date | None = None,
) -> None:
    """Refuse the line when a device was covered on this eye / ear (or a frame) within the period.

    The note says when the previous device was (or is to be) delivered, in the tense that fits ``today``: a PEC
    granted for a delivery still to come is "est déjà pris en charge … délivrance prévue le"."""
    item, side = work.entry.item, work.line.side
    same = [h for h in history if h.item == item and (h.side == side or item == FRAME)]
    if not same:
        return
    delivery = request.delivery_date
    if request.domain == AUDI:
        months = rules.audiology_renewal_months
    else:
        months = band_months(rules.optics_renewal, ages, min)
    previous = _conflict(same, delivery, months)
    if previous is None:
        return
    if item == LENS and request.prescription.medical_condition:
        if _conflict(same, delivery, rules.medical_condition_renewal_months) is None:
            work.reasons.append(Reason.RENEWAL_MEDICAL)
            work.notes.append("Renouvellement anticipé des verres : pathologie attestée par le prescripteur.")
            return
    if item == LENS and sight_changed:
        months = band_months(rules.optics_sight_change_renewal, ages, min)
        closer = _conflict(same, delivery, months)
        if closer is None:
            work.reasons.append(Reason.RENEWAL_SIGHT_CHANGE)
            work.notes.append(
                "Renouvellement anticipé des verres : évolution de la vue depuis l'équipement précédent."
            )
            return
        previous = closer  # still too early, even with the shorter period of a change of sight
    when = previous.delivery_date
    if today is not None and when > today:
        done, at = "est déjà", f"(délivrance prévue le {date_fr(when)})"
    else:
        done, at = "a déjà été", f"(délivrance du {date_fr(when)})"
    if item == DEVICE:
        what = f"Une aide auditive {done} prise en charge pour {EAR[side]} {at}"
    elif item == LENS:
        what = f"Un verre {done} pris en charge pour {EYE[side]} {at}"
    else:
        what = f"Une monture {done} prise en charge {at}"
    next_date = add_months(when, months)
    note = f"{what}, dans la période de renouvellement ({duration_fr(months)})"
    note += (
        f" : nouvelle prise en charge possible à partir du {date_fr(next_date)}." if when <= delivery else "."
    )
    work.refuse(Reason.RENEWAL_TOO_EARLY, note, previous=when)


def _own(ceilings: Mapping[str, int | None], key: str) -> int | None:
    value = ceilings.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _guarantee_part(work: _Line, terms: GuaranteeTerms) -> int:
    """The AMC part the rate gives on one line: rate × BR (AMO included) − AMO, not below 0."""
    if terms.rate_percent is None:
        return 0
    return max(0, percent_of(work.base, terms.rate_percent) - work.amo)


def _optics_guarantee(
    lines: list[_Line], terms: GuaranteeTerms, responsible: bool, key: str, rules: RuleSet
) -> None:
    """Glasses under the guarantee: floors and ceilings of the equipment, frame sub-ceiling, split."""
    own = terms.ceilings or {}
    grid = rules.responsible_optics
    lenses = [w for w in lines if w.entry.item == LENS]
    frame = next((w for w in lines if w.entry.item == FRAME), None)
    wanted = sum(_guarantee_part(w, terms) for w in lines) + (terms.amount_cents or 0)

    ceiling = _own(own, f"{key}_max")
    frame_max = _own(own, "frame_max")
    floor = (_own(own, f"{key}_min") or 0) if lenses else 0
    if responsible:
        ceiling = min(grid[f"{key}_max"], ceiling) if ceiling is not None else grid[f"{key}_max"]
        frame_max = min(grid["frame_max"], frame_max) if frame_max is not None else grid["frame_max"]
        floor = max(floor, grid[f"{key}_min"]) if lenses else 0
    if ceiling is not None:
        floor = min(floor, ceiling)

    caps = []
    for w in lines:
        cap = w.price - w.amo
        if w is frame and frame_max is not None:
            cap = min(cap, frame_max)
        caps.append(cap)
    target = max(wanted, floor)
    floor_applied = floor > wanted
    ceiling_applied = ceiling is not None and target > ceiling
    if ceiling is not None:
        target = min(target, ceiling)
    target = min(target, sum(caps))
    shares = split_in_proportion(target, caps)

    key_fr = _KEY_FR[key]
    for w, share in zip(lines, shares, strict=True):
        w.amc = share
        w.reasons.append(Reason.GUARANTEE)
        note = (
            f"Garantie du contrat appliquée à l'équipement ({key_fr}) : {eur(target)} pour la complémentaire, "
            "répartis entre les lignes au prorata du reste à payer après la part obligatoire."
        )
        if floor_applied:
            w.reasons.append(Reason.FLOOR)
            whose = "du contrat responsable" if responsible else "du contrat"
            note += f" Plancher {whose} pour cet équipement : {eur(floor)}."
        if ceiling_applied:
            w.reasons.append(Reason.EQUIPMENT_CEILING)
            note += f" Plafond pour cet équipement, part obligatoire exclue : {eur(ceiling)}."
        if w is frame and frame_max is not None and share == frame_max < w.price - w.amo:
            w.reasons.append(Reason.FRAME_CEILING)
            note += f" Plafond de la monture : {eur(frame_max)}."
        if not responsible:
            w.reasons.append(Reason.NOT_RESPONSIBLE)
            note += " Contrat non responsable : pas de plancher ni de plafond du contrat responsable."
        w.notes.append(note)


def _audiology_guarantee(work: _Line, terms: GuaranteeTerms, responsible: bool, rules: RuleSet) -> None:
    """One ear under the guarantee: per-ear ceilings (AMC only, and AMO + AMC)."""
    own = terms.ceilings or {}
    wanted = _guarantee_part(work, terms) + (terms.amount_cents or 0)
    with_amo = _own(own, "per_ear_max_with_amo")
    if responsible:
        grid = rules.responsible_audiology["per_ear_max_with_amo"]
        with_amo = min(grid, with_amo) if with_amo is not None else grid
    limits = [work.price - work.amo]
    ear_limits = [c for c in (_own(own, "per_ear_max"),) if c is not None]
    if with_amo is not None:
        ear_limits.append(max(0, with_amo - work.amo))
    amc = min([wanted, *limits, *ear_limits])
    work.amc = amc
    work.reasons.append(Reason.GUARANTEE)
    note = f"Garantie du contrat appliquée à cette aide auditive : {eur(amc)} pour la complémentaire."
    if ear_limits and wanted > min(ear_limits) and min(ear_limits) < work.price - work.amo:
        work.reasons.append(Reason.EAR_CEILING)
        if with_amo is not None and min(ear_limits) == max(0, with_amo - work.amo):
            note += f" Plafond par oreille, part obligatoire comprise : {eur(with_amo)}."
        else:
            note += f" Plafond par oreille de la complémentaire : {eur(min(ear_limits))}."
    if not responsible:
        work.reasons.append(Reason.NOT_RESPONSIBLE)
        note += " Contrat non responsable : pas de plafond du contrat responsable."
    work.notes.append(note)


def decide(
    request: PecRequest,
    facts: BeneficiaryFacts,
    history: Iterable[HistoryItem],
    catalogue: Catalogue,
    rules: RuleSet,
    *,
    today: dt.date | None = None,
) -> PecDecision:
    """Decide a PEC. ``today`` is the server's local date (``timezone.localdate()``); default: the OS date.

    Raises :class:`PecInputError` for bad input (see :func:`check_request`).
    """
    today = today or dt.date.today()
    checked = check_request(request, facts, catalogue, rules, today)
    delivery = request.delivery_date
    works = [
        _Line(
            number,
            line,
            entry,
            price=line.unit_price_cents * line.quantity,
            base=entry.base_cents * line.quantity,
        )
        for number, (line, entry) in enumerate(zip(request.lines, checked.entries, strict=True), start=1)
    ]
    equipment = None
    if request.domain == OPTI:
        simple = Complexity.SIMPLE  # an eye without a correction counts as a simple (plano) lens
        equipment = equipment_key(
            checked.complexities.get(RIGHT, simple), checked.complexities.get(LEFT, simple)
        )

    rights_open = facts.rights_start <= delivery and (
        facts.rights_end is None or delivery <= facts.rights_end
    )
    terms = facts.guarantee
    if not rights_open:
        for w in works:
            w.refuse(
                Reason.RIGHTS_CLOSED,
                f"Les droits du bénéficiaire ne sont pas ouverts pour {DOMAIN_FR[request.domain]} "
                "à la date de livraison.",
            )
    elif terms is None:
        for w in works:
            w.refuse(
                Reason.NO_TIERS_PAYANT,
                f"Le contrat ne prévoit pas de tiers payant pour {DOMAIN_FR[request.domain]} à la date de livraison.",
            )
    else:
        past = [h for h in history if h.domain == request.domain]
        sight_changed = request.domain == OPTI and _sight_changed(request, past, rules)
        for w in works:
            _renewal(w, request, past, checked.ages, rules, sight_changed, today)

    accepted = [w for w in works if not w.refused]
    for w in accepted:
        w.amo = min(percent_of(w.base, rules.amo_rate_percent), w.price)
    if terms is not None and accepted:
        responsible = facts.product_responsible
        full = [w for w in accepted if responsible and w.entry.full_cover]
        guaranteed = [w for w in accepted if w not in full]
        for w in full:
            w.amc = w.price - w.amo
            w.reasons.append(Reason.FULL_COVER)
            w.notes.append(
                f"100 % santé (classe {w.entry.lpp_class}) : la complémentaire prend en charge le reste après la "
                f"part obligatoire, dans la limite du prix limite de vente ({eur(w.entry.price_limit_cents or 0)})."
            )
        if guaranteed and request.domain == OPTI:
            _optics_guarantee(guaranteed, terms, responsible, equipment or "simple_simple", rules)
        if guaranteed and request.domain == AUDI:
            for w in guaranteed:
                _audiology_guarantee(w, terms, responsible, rules)
        for w in accepted:
            if w.amc == 0:
                w.reasons.append(Reason.NO_AMC_SHARE)

    lines = tuple(_line_decision(w) for w in works)
    totals = Totals(
        price_cents=sum(line.price_cents for line in lines),
        base_cents=sum(line.base_cents for line in lines),
        amo_cents=sum(line.amo_cents for line in lines),
        amc_cents=sum(line.amc_cents for line in lines),
        patient_cents=sum(line.patient_cents for line in lines),
    )
    refused = [line for line in lines if line.status == REFUSED]
    status = REFUSED if len(refused) == len(lines) else PARTIALLY_ACCEPTED if refused else ACCEPTED
    reasons = tuple(dict.fromkeys(r for line in refused for r in line.reasons))
    return PecDecision(
        status=status,
        domain=request.domain,
        delivery_date=delivery,
        valid_until=None if status == REFUSED else delivery + dt.timedelta(days=rules.validity_grace_days),
        equipment=equipment,
        lines=lines,
        totals=totals,
        reasons=reasons,
        explanation=_summary(status, totals, refused),
        rule_version=rules.label,
        data_version=catalogue.data_version,
    )


def _line_decision(w: _Line) -> LineDecision:
    patient = w.price - w.amo - w.amc
    notes = list(w.notes)
    if not w.refused:
        notes.append(
            f"Part obligatoire {eur(w.amo)}, complémentaire {eur(w.amc)}, reste à charge {eur(patient)}."
        )
    return LineDecision(
        line=w.number,
        lpp_code=w.entry.code,
        label=w.entry.label,
        item=w.entry.item,
        lpp_class=w.entry.lpp_class,
        side=w.line.side,
        status=REFUSED if w.refused else ACCEPTED,
        price_cents=w.price,
        base_cents=w.base,
        amo_cents=w.amo,
        amc_cents=w.amc,
        patient_cents=patient,
        reasons=tuple(str(r) for r in w.reasons),
        explanation=" ".join(notes),
        previous_delivery=w.previous,
    )


def _summary(status: str, totals: Totals, refused: list[LineDecision]) -> str:
    amounts = (
        f"la complémentaire s'engage sur {eur(totals.amc_cents)} pour un devis de {eur(totals.price_cents)} "
        f"(part obligatoire estimée {eur(totals.amo_cents)}, reste à charge {eur(totals.patient_cents)})."
    )
    if status == ACCEPTED:
        return f"Prise en charge accordée : {amounts}"
    if status == PARTIALLY_ACCEPTED:
        numbers = ", ".join(str(line.line) for line in refused)
        return f"Prise en charge accordée en partie (ligne{'s' if len(refused) > 1 else ''} {numbers} refusée{'s' if len(refused) > 1 else ''}) : {amounts}"
    return f"Prise en charge refusée : {refused[0].explanation}" if refused else "Prise en charge refusée."
