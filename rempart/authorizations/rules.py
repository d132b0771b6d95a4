"""The prise en charge (PEC) decision for optics and audiology: a quote in, amounts and reasons out.

Pure: no database, no HTTP, no clock (``today`` is passed in). The gate gathers the beneficiary's facts
and PEC history and calls :func:`decide`; bad input raises :class:`PecInputError` (nothing to store);
otherwise a :class:`PecDecision` comes back, with the rule and data versions that make it reproducible.

Figures are data, not code: the :class:`RuleSet` is read from ``data/rules-v1.json`` (every figure with
its effective date and source) and the LPP codes from the catalogue (``catalogue.py``). The rules,
with their sources, are described in docs/pec-cases.md; in short:

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

import calendar
import datetime as dt
import enum
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from rempart.lib.dates import french_date
from rempart.lib.identifiers import LunarDate

from .catalogue import Catalogue, CatalogueEntry
from .optics import (
    Complexity,
    ComplexityThresholds,
    Correction,
    CorrectionError,
    correction_change,
    equipment_key,
    lens_complexity,
)
from .optics import validate as validate_correction

OPTI, AUDI = "OPTI", "AUDI"
DOMAINS = (OPTI, AUDI)
LENS, FRAME, DEVICE = "lens", "frame", "device"
RIGHT, LEFT = "right", "left"
SIDES = (RIGHT, LEFT)
ACCEPTED, PARTIALLY_ACCEPTED, REFUSED = "accepted", "partially_accepted", "refused"
MAX_LINES = 10
DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "data" / "rules-v1.json"
_PRESCRIBER_ID = re.compile(r"^(?:[0-9]{9}|[0-9]{11})$")


class Reason(enum.StrEnum):
    """Machine-readable reason codes, per line (stable: API clients switch on them)."""

    # the line is refused
    RIGHTS_CLOSED = "rights_closed"  # rights not open for the domain on the delivery date
    NO_TIERS_PAYANT = "no_tiers_payant"  # no tiers payant terms for the domain on the delivery date
    RENEWAL_TOO_EARLY = "renewal_too_early"  # a device was covered on this eye / ear within the period
    # how the accepted amount was set
    FULL_COVER = "full_cover_100_sante"  # class A / I, contrat responsable: remainder covered up to the PLV
    GUARANTEE = "guarantee"  # the product's guarantee (rate and / or forfait)
    FLOOR = "equipment_floor"  # raised to the floor for this equipment (contrat responsable grid or product)
    EQUIPMENT_CEILING = "equipment_ceiling"  # held to the ceiling for this equipment
    FRAME_CEILING = "frame_ceiling"  # frame held to its sub-ceiling
    EAR_CEILING = "ear_ceiling"  # held to the per-ear ceiling (AMO share included, or AMC only)
    NOT_RESPONSIBLE = "not_responsible"  # no contrat responsable floors and ceilings
    NO_AMC_SHARE = "no_amc_share"  # accepted, but the guarantee gives nothing on this line
    # an early renewal that is allowed
    RENEWAL_SIGHT_CHANGE = "renewal_sight_change"
    RENEWAL_MEDICAL = "renewal_medical_condition"


REFUSALS = frozenset({Reason.RIGHTS_CLOSED, Reason.NO_TIERS_PAYANT, Reason.RENEWAL_TOO_EARLY})


# ---------------------------------------------------------------------------------------------- arithmetic


def percent_of(cents: int, percent: int | Decimal) -> int:
    """``cents × percent / 100`` rounded half up to the cent (amounts are never negative here)."""
    return int((Decimal(cents) * Decimal(percent) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later; the last day of the month when that day does not exist (29 Feb → 28 Feb)."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split_in_proportion(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` cents in proportion to ``weights`` (largest remainder; ties to the earlier line).

    With ``total ≤ sum(weights)`` no share exceeds its weight.
    """
    whole = sum(weights)
    if whole == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass(frozen=True)
class AgeRange:
    """The beneficiary's age in whole years on a day: one value, or a range for a lunar birth date."""

    youngest: int
    oldest: int


def age_range(birth: LunarDate, on: dt.date) -> AgeRange:
    """Age on ``on``. A lunar date (month or day unknown, ``00``) gives every possible reading.

    Each rule then takes the reading most favourable to the beneficiary: the shortest renewal period,
    the longest prescription validity, any age band the range touches.
    """
    earliest = dt.date(birth.year, birth.month or 1, birth.day or 1)
    last_month = birth.month or 12
    latest = dt.date(birth.year, last_month, birth.day or calendar.monthrange(birth.year, last_month)[1])

    def years(born: dt.date) -> int:
        return max(0, on.year - born.year - ((on.month, on.day) < (born.month, born.day)))

    return AgeRange(youngest=years(latest), oldest=years(earliest))


# ---------------------------------------------------------------------------------------------- rule set


@dataclass(frozen=True)
class AgeBand:
    age_min: int
    age_max: int | None  # None: no upper bound
    months: int

    def touches(self, ages: AgeRange) -> bool:
        return ages.oldest >= self.age_min and (self.age_max is None or ages.youngest <= self.age_max)


def band_months(bands: Iterable[AgeBand], ages: AgeRange, choose: Callable[[list[int]], int]) -> int:
    """The months of the bands the age range touches, reduced with ``choose`` (min or max)."""
    return choose([band.months for band in bands if band.touches(ages)])


@dataclass(frozen=True)
class Figure:
    """Where a figure comes from."""

    name: str
    effective_from: dt.date
    source: str


@dataclass(frozen=True)
class RuleSet:
    """Every figure the engine uses, from ``data/rules-v1.json`` (see :func:`load_rules`)."""

    version: str
    sha256: str
    amo_rate_percent: int
    optics_renewal: tuple[AgeBand, ...]
    optics_sight_change_renewal: tuple[AgeBand, ...]
    sight_change_one_eye: Decimal
    sight_change_both_eyes: Decimal
    medical_condition_renewal_months: int
    audiology_renewal_months: int
    prescription_max_age: Mapping[str, tuple[AgeBand, ...]]
    responsible_optics: Mapping[str, int]
    responsible_audiology: Mapping[str, int]
    lens_complexity: ComplexityThresholds
    validity_grace_days: int
    delivery_max_days_ahead: int
    figures: Mapping[str, Figure]

    @property
    def label(self) -> str:
        """What a decision stores as ``rule_version``: the file's version and the start of its hash."""
        return f"{self.version}+{self.sha256[:12]}"


class RulesError(ValueError):
    """The rules file is unusable; the message names the figure."""


_FIGURES = (
    "amo_rate_percent",
    "optics_renewal",
    "optics_sight_change_renewal",
    "optics_sight_change_thresholds",
    "optics_medical_condition_renewal_months",
    "audiology_renewal_months",
    "prescription_max_age",
    "responsible_optics",
    "responsible_audiology",
    "lens_complexity",
    "validity_grace_days",
    "delivery_max_days_ahead",
)


def _bands(name: str, value: object) -> tuple[AgeBand, ...]:
    try:
        bands = tuple(AgeBand(int(b["age_min"]), b["age_max"], int(b["months"])) for b in value)  # type: ignore[union-attr]
    except (TypeError, KeyError, ValueError):
        raise RulesError(f"{name}: a list of {{age_min, age_max, months}} expected") from None
    if not bands:
        raise RulesError(f"{name}: at least one age band expected")
    expected: int | None = 0
    for band in bands:  # contiguous from 0, only the last one open
        if expected is None or band.age_min != expected or band.months < 0:
            raise RulesError(
                f"{name}: age bands must follow each other from 0, without gaps, the last one open"
            )
        expected = None if band.age_max is None else int(band.age_max) + 1
    if expected is not None:
        raise RulesError(f"{name}: the last age band must have no upper bound (age_max null)")
    return bands


def parse_rules(data: bytes) -> RuleSet:
    """Check and read a rules file's bytes."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RulesError(f"not a JSON rules file ({exc})") from None
    if doc.get("format") != "rempart-pec-rules" or doc.get("format_version") != 1:
        raise RulesError("not a rempart-pec-rules file of format version 1")
    figures = doc.get("figures") or {}
    provenance = {}
    for name in _FIGURES:
        item = figures.get(name)
        if not isinstance(item, dict) or "value" not in item or not item.get("source"):
            raise RulesError(f"{name}: missing, or without a value and a source")
        try:
            provenance[name] = Figure(name, dt.date.fromisoformat(item["effective_from"]), item["source"])
        except (KeyError, TypeError, ValueError):
            raise RulesError(f"{name}: effective_from YYYY-MM-DD expected") from None
    value = {name: figures[name]["value"] for name in _FIGURES}
    try:
        thresholds = value["optics_sight_change_thresholds"]
        complexity = ComplexityThresholds(**{k: Decimal(v) for k, v in value["lens_complexity"].items()})
        rules = RuleSet(
            version=str(doc["version"]),
            sha256=hashlib.sha256(data).hexdigest(),
            amo_rate_percent=int(value["amo_rate_percent"]),
            optics_renewal=_bands("optics_renewal", value["optics_renewal"]),
            optics_sight_change_renewal=_bands(
                "optics_sight_change_renewal", value["optics_sight_change_renewal"]
            ),
            sight_change_one_eye=Decimal(thresholds["one_eye_dioptres"]),
            sight_change_both_eyes=Decimal(thresholds["both_eyes_dioptres"]),
            medical_condition_renewal_months=int(value["optics_medical_condition_renewal_months"]),
            audiology_renewal_months=int(value["audiology_renewal_months"]),
            prescription_max_age={
                domain: _bands(f"prescription_max_age.{domain}", value["prescription_max_age"][domain])
                for domain in DOMAINS
            },
            responsible_optics={k: int(v) for k, v in value["responsible_optics"].items()},
            responsible_audiology={k: int(v) for k, v in value["responsible_audiology"].items()},
            lens_complexity=complexity,
            validity_grace_days=int(value["validity_grace_days"]),
            delivery_max_days_ahead=int(value["delivery_max_days_ahead"]),
            figures=provenance,
        )
    except RulesError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise RulesError(f"bad value in the rules file ({exc!r})") from None
    missing = {"frame_max"} - set(rules.responsible_optics)
    if missing or "per_ear_max_with_amo" not in rules.responsible_audiology:
        raise RulesError("responsible_optics needs frame_max, responsible_audiology per_ear_max_with_amo")
    return rules


def load_rules(path: str | Path) -> RuleSet:
    return parse_rules(Path(path).read_bytes())


@functools.cache
def default_rules() -> RuleSet:
    """The rule set shipped with Rempart (``data/rules-v1.json``), loaded once per process."""
    return load_rules(DEFAULT_RULES_PATH)


# ---------------------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Prescription:
    date: dt.date
    prescriber_id: str  # RPPS (11 digits) or numéro AM / ADELI (9 digits)
    right: Correction | None = None  # optics only
    left: Correction | None = None
    # The prescriber attests one of the listed medical conditions (glaucoma, AMD, cataract, amblyopia,
    # diabetes…): lenses may be renewed without a minimum period (domain reference §4.2).
    medical_condition: bool = False

    def correction(self, side: str) -> Correction | None:
        return self.right if side == RIGHT else self.left


@dataclass(frozen=True)
class QuoteLine:
    lpp_code: str
    lpp_class: str  # A | B (optics), I | II (audiology)
    side: str | None  # right | left: the eye for a lens, the ear for a device; None for a frame
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class PecRequest:
    domain: str  # OPTI | AUDI
    delivery_date: dt.date
    prescription: Prescription
    lines: tuple[QuoteLine, ...]

    def as_dict(self) -> dict:
        p = self.prescription
        return {
            "domain": self.domain,
            "delivery_date": self.delivery_date.isoformat(),
            "prescription": {
                "date": p.date.isoformat(),
                "prescriber_id": p.prescriber_id,
                "right": p.right.as_dict() if p.right else None,
                "left": p.left.as_dict() if p.left else None,
                "medical_condition": p.medical_condition,
            },
            "lines": [
                {
                    "lpp_code": line.lpp_code,
                    "class": line.lpp_class,
                    "side": line.side,
                    "quantity": line.quantity,
                    "unit_price_cents": line.unit_price_cents,
                }
                for line in self.lines
            ],
        }


@dataclass(frozen=True)
class GuaranteeTerms:
    """The product's terms for the domain on the delivery date (registry ``Guarantee``)."""

    rate_percent: int | None
    amount_cents: int | None
    ceilings: Mapping[str, int | None] = field(default_factory=dict)  # cents, keys of products-v1 §3


@dataclass(frozen=True)
class BeneficiaryFacts:
    birth_date: LunarDate
    rights_start: dt.date  # rights open for the domain from (latest of contract and coverage start)
    rights_end: dt.date | None  # … until (earliest of contract and coverage end), None: open
    product_responsible: bool
    # None when the product has no terms for the domain on the delivery date, or no tiers payant there.
    guarantee: GuaranteeTerms | None


@dataclass(frozen=True)
class HistoryItem:
    """One line of a previous PEC at Rempart (accepted line of a PEC not cancelled)."""

    domain: str
    delivery_date: dt.date
    item: str  # lens | frame | device
    side: str | None
    correction: Correction | None = None  # lenses: the correction it was made for, when known


class PecInputError(ValueError):
    """Bad input, nothing to decide or store. ``line`` is 1-based (None: the request as a whole).

    ``errors`` holds every problem found (this one first), each with its line, field and French message.
    """

    def __init__(self, line: int | None, field: str, message: str) -> None:
        super().__init__(f"{'ligne ' + str(line) if line else 'demande'}, {field} : {message}")
        self.line = line
        self.field = field
        self.message = message
        self.errors: tuple[PecInputError, ...] = (self,)

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


# ---------------------------------------------------------------------------------------------- output


@dataclass(frozen=True)
class LineDecision:
    line: int  # 1-based, as in the request
    lpp_code: str
    label: str
    item: str
    lpp_class: str
    side: str | None
    status: str  # accepted | refused
    price_cents: int
    base_cents: int
    amo_cents: int
    amc_cents: int  # committed by the insurer
    patient_cents: int
    reasons: tuple[str, ...]
    explanation: str  # French
    previous_delivery: dt.date | None = None  # renewal refusals: the date of the previous covered device

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "lpp_code": self.lpp_code,
            "label": self.label,
            "item": self.item,
            "class": self.lpp_class,
            "side": self.side,
            "status": self.status,
            "price_cents": self.price_cents,
            "base_cents": self.base_cents,
            "amo_cents": self.amo_cents,
            "amc_cents": self.amc_cents,
            "patient_cents": self.patient_cents,
            "reasons": list(self.reasons),
            "explanation": self.explanation,
            "previous_delivery": self.previous_delivery.isoformat() if self.previous_delivery else None,
        }


@dataclass(frozen=True)
class Totals:
    price_cents: int
    base_cents: int
    amo_cents: int
    amc_cents: int
    patient_cents: int

    def as_dict(self) -> dict:
        return {
            "price_cents": self.price_cents,
            "base_cents": self.base_cents,
            "amo_cents": self.amo_cents,
            "amc_cents": self.amc_cents,
            "patient_cents": self.patient_cents,
        }


@dataclass(frozen=True)
class PecDecision:
    status: str  # accepted | partially_accepted | refused
    domain: str
    delivery_date: dt.date
    valid_until: dt.date | None  # delivery date + grace period; None when refused
    equipment: str | None  # optics: the grid key of the glasses, e.g. "simple_complex"
    lines: tuple[LineDecision, ...]
    totals: Totals
    reasons: tuple[str, ...]  # the refusal reasons met, in line order
    explanation: str  # French
    rule_version: str
    data_version: str

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "domain": self.domain,
            "delivery_date": self.delivery_date.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "equipment": self.equipment,
            "lines": [line.as_dict() for line in self.lines],
            "totals": self.totals.as_dict(),
            "reasons": list(self.reasons),
            "explanation": self.explanation,
            "rule_version": self.rule_version,
            "data_version": self.data_version,
        }


def history_items(request: PecRequest, decision: PecDecision) -> tuple[HistoryItem, ...]:
    """What later decisions must know of this one: its accepted lines (store them, or rebuild from the PEC)."""
    return tuple(
        HistoryItem(
            domain=decision.domain,
            delivery_date=decision.delivery_date,
            item=line.item,
            side=line.side,
            correction=request.prescription.correction(line.side)
            if line.item == LENS and line.side
            else None,
        )
        for line in decision.lines
        if line.status == ACCEPTED
    )


# ---------------------------------------------------------------------------------------------- French text


def eur(cents: int) -> str:
    """``1 234,56 €`` (non-breaking spaces)."""
    euros, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{euros:,}".replace(",", "\u00a0") + f",{rest:02d}\u00a0€"


def _date_fr(day: dt.date) -> str:
    return french_date(day)  # "1er décembre 2026": never a 01/12 that reads both ways


def _duration_fr(months: int) -> str:
    if months % 12 == 0:
        years = months // 12
        return f"{years} an{'s' if years > 1 else ''}"
    return f"{months} mois"


_EYE = {RIGHT: "l'œil droit", LEFT: "l'œil gauche"}
_EAR = {RIGHT: "l'oreille droite", LEFT: "l'oreille gauche"}
_DOMAIN_FR = {OPTI: "l'optique", AUDI: "l'audioprothèse"}
_KEY_FR = {
    "simple_simple": "deux verres simples",
    "simple_complex": "un verre simple et un verre complexe",
    "simple_very_complex": "un verre simple et un verre très complexe",
    "complex_complex": "deux verres complexes",
    "complex_very_complex": "un verre complexe et un verre très complexe",
    "very_complex_very_complex": "deux verres très complexes",
}


def _band_fr(entry: CatalogueEntry) -> str:
    if entry.age_max is None:
        return f"les bénéficiaires de {entry.age_min} ans et plus"
    if entry.age_min == 0:
        return f"les bénéficiaires de moins de {entry.age_max + 1} ans"
    return f"les bénéficiaires de {entry.age_min} à {entry.age_max} ans"


def _periods_fr(versions: Iterable[CatalogueEntry]) -> str:
    return ", ".join(
        f"du {_date_fr(v.effective_from)} au {_date_fr(v.effective_to)}"
        if v.effective_to
        else f"à partir du {_date_fr(v.effective_from)}"
        for v in versions
    )


# ---------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class _Checked:
    entries: tuple[CatalogueEntry, ...]
    ages: AgeRange | None  # None when checked without the beneficiary's facts
    complexities: Mapping[str, Complexity]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_request(
    request: PecRequest,
    facts: BeneficiaryFacts | None,
    catalogue: Catalogue,
    rules: RuleSet,
    today: dt.date,
) -> _Checked:
    """Every input check; raises :class:`PecInputError` (with all problems) or returns what decide needs.

    With ``facts=None`` only the checks that do not depend on the beneficiary run (every one but the
    age-dependent ones): the service runs them *before* identifying the patient, so that a bad quote gets
    the same answer whether the card matched or not.
    """
    errors: list[PecInputError] = []

    def error(line: int | None, name: str, message: str) -> None:
        errors.append(PecInputError(line, name, message))

    def fail() -> PecInputError:
        first = errors[0]
        first.errors = tuple(errors)
        return first

    domain = request.domain
    if domain not in DOMAINS:
        error(None, "domain", "Domaine attendu : OPTI (optique) ou AUDI (audioprothèse).")
        raise fail()
    delivery = request.delivery_date
    if delivery < today:
        error(None, "delivery_date", "La date de livraison est passée : indiquez la date prévue.")
    elif delivery > today + dt.timedelta(days=rules.delivery_max_days_ahead):
        error(
            None,
            "delivery_date",
            f"Date de livraison trop lointaine : au plus {rules.delivery_max_days_ahead} jours après aujourd'hui.",
        )
    ages = age_range(facts.birth_date, delivery) if facts is not None else None

    prescription = request.prescription
    if prescription.date > today:
        error(None, "prescription.date", "La date de prescription est dans le futur.")
    elif prescription.date > delivery:
        error(None, "prescription.date", "La prescription est postérieure à la date de livraison.")
    elif facts is not None:
        months = band_months(
            rules.prescription_max_age[domain], age_range(facts.birth_date, prescription.date), max
        )
        if add_months(prescription.date, months) < delivery:
            error(
                None,
                "prescription.date",
                f"Prescription trop ancienne : plus de {_duration_fr(months)} à la date de livraison.",
            )
    if not _PRESCRIBER_ID.match(prescription.prescriber_id or ""):
        error(
            None,
            "prescription.prescriber_id",
            "Identifiant du prescripteur attendu : RPPS (11 chiffres) ou numéro AM / ADELI (9 chiffres).",
        )
    complexities: dict[str, Complexity] = {}
    for side in SIDES:
        correction = prescription.correction(side)
        if correction is None:
            continue
        if domain == AUDI:
            error(None, f"prescription.{side}", "Pas de correction optique pour une aide auditive.")
            continue
        try:
            validate_correction(correction)
        except CorrectionError as exc:
            error(None, f"prescription.{side}.{exc.field}", f"{_EYE[side].capitalize()} : {exc.message}.")
            continue
        complexities[side] = lens_complexity(correction, rules.lens_complexity)

    if not request.lines:
        error(None, "lines", "Au moins une ligne de devis est attendue.")
    elif len(request.lines) > MAX_LINES:
        error(None, "lines", f"Au plus {MAX_LINES} lignes par demande.")
    entries: list[CatalogueEntry] = []
    counts: dict[tuple[str, str | None], int] = {}
    for number, line in enumerate(request.lines[:MAX_LINES], start=1):
        entry = catalogue.lookup(line.lpp_code, delivery)
        if entry is None:
            versions = catalogue.versions(line.lpp_code)
            if versions:
                error(
                    number,
                    "lpp_code",
                    f"Code LPP non valable à la date de livraison ({_periods_fr(versions)}).",
                )
            else:
                error(number, "lpp_code", "Code LPP inconnu du catalogue.")
            continue
        entries.append(entry)
        if entry.domain != domain:
            error(
                number,
                "lpp_code",
                f"Ce code LPP relève de {_DOMAIN_FR[entry.domain]}, pas de {_DOMAIN_FR[domain]}.",
            )
            continue
        if str(line.lpp_class or "").strip().upper() != entry.lpp_class:  # "ii" is "II"
            error(
                number,
                "class",
                f"Classe {line.lpp_class or '(vide)'} indiquée, mais ce code LPP est de classe {entry.lpp_class}.",
            )
        side_ok = True
        if entry.item == FRAME:
            if line.side:
                error(number, "side", "Pas d'œil pour une monture : laissez ce champ vide.")
                side_ok = False
        elif line.side not in SIDES:
            what = (
                "l'œil (right ou left) pour un verre" if entry.item == LENS else "l'oreille (right ou left)"
            )
            error(number, "side", f"Indiquez {what}.")
            side_ok = False
        if not _is_count(line.quantity) or line.quantity < 1:
            error(number, "quantity", "Quantité entière d'au moins 1 attendue.")
        elif side_ok:
            key = (entry.item, line.side)
            counts[key] = counts.get(key, 0) + line.quantity
            if counts[key] > 1:
                if entry.item == LENS:
                    message = f"Plus de 2 verres : un seul verre pour {_EYE[line.side]}."
                elif entry.item == DEVICE:
                    message = f"Plus d'une aide auditive pour {_EAR[line.side]}."
                else:
                    message = "Une seule monture par demande."
                error(number, "quantity", message)
        if not _is_count(line.unit_price_cents) or line.unit_price_cents < 1:
            error(number, "unit_price_cents", "Prix unitaire en centimes attendu, supérieur à 0.")
        elif entry.price_limit_cents is not None and line.unit_price_cents > entry.price_limit_cents:
            error(
                number,
                "unit_price_cents",
                f"Prix supérieur au prix limite de vente de la classe {entry.lpp_class} "
                f"({eur(entry.price_limit_cents)}).",
            )
        if ages is not None and not entry.fits_age(ages.youngest, ages.oldest):
            error(
                number,
                "lpp_code",
                f"Ce code LPP est réservé aux {_band_fr(entry).removeprefix('les ')} à la date de livraison.",
            )
        if entry.item == LENS and line.side in SIDES:
            if prescription.correction(line.side) is None:
                error(number, "side", f"Pas de correction prescrite pour {_EYE[line.side]}.")
            elif line.side in complexities and complexities[line.side].value != entry.complexity:
                error(
                    number,
                    "lpp_code",
                    f"Ce code LPP est pour un verre {Complexity(entry.complexity).label_fr} ; la correction de "
                    f"{_EYE[line.side]} demande un verre {complexities[line.side].label_fr}.",
                )
    if errors:
        raise fail()
    return _Checked(entries=tuple(entries), ages=ages, complexities=complexities)


# ---------------------------------------------------------------------------------------------- decision


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
        done, at = "est déjà", f"(délivrance prévue le {_date_fr(when)})"
    else:
        done, at = "a déjà été", f"(délivrance du {_date_fr(when)})"
    if item == DEVICE:
        what = f"Une aide auditive {done} prise en charge pour {_EAR[side]} {at}"
    elif item == LENS:
        what = f"Un verre {done} pris en charge pour {_EYE[side]} {at}"
    else:
        what = f"Une monture {done} prise en charge {at}"
    next_date = add_months(when, months)
    note = f"{what}, dans la période de renouvellement ({_duration_fr(months)})"
    note += (
        f" : nouvelle prise en charge possible à partir du {_date_fr(next_date)}."
        if when <= delivery
        else "."
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
                f"Les droits du bénéficiaire ne sont pas ouverts pour {_DOMAIN_FR[request.domain]} "
                "à la date de livraison.",
            )
    elif terms is None:
        for w in works:
            w.refuse(
                Reason.NO_TIERS_PAYANT,
                f"Le contrat ne prévoit pas de tiers payant pour {_DOMAIN_FR[request.domain]} à la date de livraison.",
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
