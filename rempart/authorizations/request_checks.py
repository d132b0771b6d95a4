"""Every check of a PEC request, before anything is decided: all problems reported at once.

The service runs them *before* identifying the patient (``facts=None``), so that a bad quote gets the
same answer whether the card matched or not; :func:`rempart.authorizations.rules.decide` runs them again
with the beneficiary's facts (age bands). Each problem has its line, field and French message
(:class:`~rempart.authorizations.inputs.PecInputError`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .arithmetic import AgeRange, add_months, age_range
from .catalogue import Catalogue, CatalogueEntry
from .inputs import AUDI, DEVICE, DOMAINS, FRAME, LENS, SIDES, BeneficiaryFacts, PecInputError, PecRequest
from .optics import Complexity, CorrectionError, lens_complexity
from .optics import validate as validate_correction
from .ruleset import RuleSet, band_months
from .wording import DOMAIN_FR, EAR, EYE, date_fr, duration_fr, eur

MAX_LINES = 10
_PRESCRIBER_ID = re.compile(r"^(?:[0-9]{9}|[0-9]{11})$")


def _band_fr(entry: CatalogueEntry) -> str:
    if entry.age_max is None:
        return f"les bénéficiaires de {entry.age_min} ans et plus"
    if entry.age_min == 0:
        return f"les bénéficiaires de moins de {entry.age_max + 1} ans"
    return f"les bénéficiaires de {entry.age_min} à {entry.age_max} ans"


def _periods_fr(versions: Iterable[CatalogueEntry]) -> str:
    return ", ".join(
        f"du {date_fr(v.effective_from)} au {date_fr(v.effective_to)}"
        if v.effective_to
        else f"à partir du {date_fr(v.effective_from)}"
        for v in versions
    )


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
                f"Prescription trop ancienne : plus de {duration_fr(months)} à la date de livraison.",
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
            error(None, f"prescription.{side}.{exc.field}", f"{EYE[side].capitalize()} : {exc.message}.")
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
                f"Ce code LPP relève de {DOMAIN_FR[entry.domain]}, pas de {DOMAIN_FR[domain]}.",
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
                    message = f"Plus de 2 verres : un seul verre pour {EYE[line.side]}."
                elif entry.item == DEVICE:
                    message = f"Plus d'une aide auditive pour {EAR[line.side]}."
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
                error(number, "side", f"Pas de correction prescrite pour {EYE[line.side]}.")
            elif line.side in complexities and complexities[line.side].value != entry.complexity:
                error(
                    number,
                    "lpp_code",
                    f"Ce code LPP est pour un verre {Complexity(entry.complexity).label_fr} ; la correction de "
                    f"{EYE[line.side]} demande un verre {complexities[line.side].label_fr}.",
                )
    if errors:
        raise fail()
    return _Checked(entries=tuple(entries), ages=ages, complexities=complexities)
