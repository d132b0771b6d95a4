"""The patient's two cards, read from a Bundle's Patient and Coverage: the same fields as the JSON API's.

The carte Vitale gives the Patient: the NIR as FR Core's ``NSS`` identifier (the patient's own NIR, or the
ouvrant droit's), the birth date (FHIR's partial dates are the "lunar" dates: ``1975`` for ``1975-00-00``,
``1975-05`` for ``1975-05-00``) and the birth rank as ``multipleBirthInteger``. The carte de tiers payant
gives the Coverage: the adherent number as ``subscriberId``, the insurer's numéro AMC as its payor. Nothing
else of the patient is taken: a name, an address, a narrative is refused, not ignored.

The values then go through ``read_card_data``, the JSON API's own checks, so a field is refused in the same
words whichever door it came through; the error names the FHIR element it came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from rempart.fhir import systems
from rempart.fhir.intake import Entries, Entry, invalid, not_supported, only, require
from rempart.rights.cards import CardData, CardDataError, read_card_data

PATIENT_ELEMENTS = {"resourceType", "id", "meta", "identifier", "birthDate", "multipleBirthInteger"}
COVERAGE_ELEMENTS = {"resourceType", "id", "meta", "status", "beneficiary", "subscriberId", "payor"}


@dataclass(frozen=True)
class Presented:
    """The card fields as read_card_data takes them, and the FHIR element each came from."""

    values: dict
    where: dict[str, str]

    def read(self, *, care_date: dt.date | None = None, care_path: str | None = None) -> CardData:
        """Checked as at the rights check (400 naming the element); ``care_date`` None: today."""
        try:
            return read_card_data(**self.values, care_date=care_date, today=timezone.localdate())
        except CardDataError as exc:
            where = care_path if exc.field == "care_date" else self.where.get(exc.field)
            raise invalid(exc.message, where) from None


def presented(entries: Entries, patient_ref, patient_path: str, domain: str, domain_path: str, insurer=None,
              insurer_path: str | None = None) -> tuple[Presented, Entry]:  # fmt: skip
    """The card data of the Bundle's Patient (named by ``patient_ref``) and of its one Coverage."""
    patient = entries.resolve(patient_ref, "Patient", patient_path)
    coverage = entries.get("Coverage")
    if coverage is None:
        raise invalid(
            gettext_noop("une ressource Coverage (carte de tiers payant) est attendue"),
            "Bundle.entry",
            code="required",
        )
    nir, nir_path = _nir(patient)
    birth_date = _birth_date(patient)
    rank = patient.raw.get("multipleBirthInteger")
    adherent, amc, amc_path = _coverage(coverage, entries)
    if insurer is not None:  # the request names the insurer too: it must be the card's
        if _amc_of(insurer, insurer_path) != amc:
            raise invalid(
                gettext_noop("l'assureur de la demande n'est pas celui de la couverture"),
                f"{insurer_path}.identifier",
            )
    values = {
        "amc_number": amc,
        "adherent_number": adherent,
        "nir": nir,
        "birth_date": birth_date,
        "birth_rank": rank,
        "domain": domain,
    }
    where = {
        "amc_number": amc_path,
        "adherent_number": f"{coverage.path}.subscriberId",
        "nir": nir_path,
        "birth_date": f"{patient.path}.birthDate",
        "birth_rank": f"{patient.path}.multipleBirthInteger",
        "domain": domain_path,
    }
    return Presented(values, where), coverage


def _nir(patient: Entry) -> tuple[str, str]:
    only(patient.raw, PATIENT_ELEMENTS, patient.path)
    require(patient.raw, ("identifier", "birthDate"), patient.path)
    identifiers = patient.raw["identifier"]
    if len(identifiers) != 1:
        raise not_supported(
            gettext_noop("un seul identifiant attendu : le NIR de la carte Vitale"),
            f"{patient.path}.identifier",
        )
    path = f"{patient.path}.identifier[0]"
    identifier = patient.model.identifier[0]
    only(identifiers[0], {"use", "type", "system", "value"}, path)
    if identifier.system != systems.NIR:
        raise not_supported(_nir_system_message, f"{path}.system")
    if identifier.type is not None and not any(
        c.system == systems.NIR_TYPE_SYSTEM and c.code == systems.NIR_TYPE_CODE
        for c in identifier.type.coding or ()
    ):
        raise not_supported(gettext_noop("type d'identifiant attendu : v2-0203#NH"), f"{path}.type")
    require(identifiers[0], ("value",), path)
    return identifier.value, f"{path}.value"


def _nir_system_message() -> str:
    return _("système d'identifiant attendu : %(system)s (NIR)") % {"system": systems.NIR}


def _birth_date(patient: Entry) -> str:
    """FHIR's partial date as the card's lunar date: ``1975`` → ``1975-00-00``, ``1975-05`` → ``1975-05-00``."""
    value = str(patient.raw["birthDate"])
    parts = value.split("-")
    return "-".join(parts + ["00"] * (3 - len(parts)))


def _coverage(coverage: Entry, entries: Entries) -> tuple[str, str, str]:
    only(coverage.raw, COVERAGE_ELEMENTS, coverage.path)
    require(coverage.raw, ("status", "beneficiary", "subscriberId", "payor"), coverage.path)
    if coverage.raw["status"] != "active":
        raise not_supported(gettext_noop("statut de couverture attendu : active"), f"{coverage.path}.status")
    entries.resolve(coverage.model.beneficiary, "Patient", f"{coverage.path}.beneficiary")
    if len(coverage.raw["payor"]) != 1:
        raise not_supported(
            gettext_noop("un seul payeur attendu : l'assureur (numéro AMC)"), f"{coverage.path}.payor"
        )
    payor_path = f"{coverage.path}.payor[0]"
    amc = _amc_of(coverage.model.payor[0], payor_path)
    return coverage.raw["subscriberId"], amc, f"{payor_path}.identifier.value"


def _amc_of(reference, path: str) -> str:
    """The numéro AMC of a logical reference ``{"identifier": {"system": …/sid/amc-number, "value": …}}``."""
    identifier = getattr(reference, "identifier", None)
    system = systems.identifier_system(systems.AMC_NUMBER)
    if identifier is None or identifier.system != system or not identifier.value:
        raise invalid(lambda: _amc_message(system), f"{path}.identifier")
    if getattr(reference, "reference", None):
        raise not_supported(
            gettext_noop("l'assureur se désigne par son identifiant, pas par une référence"),
            f"{path}.reference",
        )
    return identifier.value


def _amc_message(system: str) -> str:
    return _("identifiant de l'assureur attendu : système %(system)s, numéro AMC") % {"system": system}


def domain_of(category, path: str) -> str:
    """The care domain of an item's category (Rempart's care-domain code system)."""
    system = systems.code_system(systems.CARE_DOMAINS)
    codes = [c.code for c in (getattr(category, "coding", None) or ()) if c.system == system and c.code]
    if len(codes) != 1:
        raise invalid(lambda: _domain_message(system), f"{path}.coding")
    return codes[0]


def _domain_message(system: str) -> str:
    return _("domaine de soins attendu : un code du système %(system)s") % {"system": system}
