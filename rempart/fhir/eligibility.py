"""``CoverageEligibilityRequest/$submit``: the rights check, the standard way, with the same answer.

The Bundle's request, Patient and Coverage become the JSON API's card data, which go through the same
``read_card_data`` and the same gate (``check_rights``: surveillance, lookup, ledger row, one transaction).
The CoverageEligibilityResponse carries what the JSON answer carries and nothing more: in force or not for
the domain and date, the domain's tiers payant terms as benefits, the validity, the check reference. The
patient and the insurer are masked (FHIR requires the elements; Rempart names neither). A miss, whatever
did not match, is one answer: ``outcome`` ``error`` with the single error ``no_match``.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_noop

from rempart.fhir import systems
from rempart.fhir.cards import domain_of, presented
from rempart.fhir.intake import bundle, invalid, not_supported, only, read_json, require, scan
from rempart.fhir.outcome import instant
from rempart.gate import Actor, RightsAnswer, check_rights

SCOPE = "rights:check"
REQUEST_ELEMENTS = {
    "resourceType", "id", "meta", "identifier", "status", "purpose", "patient", "servicedDate", "created",
    "insurer", "insurance", "item",
}  # fmt: skip
PURPOSES = {"validation", "benefits"}  # "discovery" would be a search for coverages: not offered


def submit(request: HttpRequest) -> dict:
    """Check rights for one patient, one domain, one date; the CoverageEligibilityResponse to send."""
    data = read_json(request, settings.REMPART_API_MAX_BODY_BYTES)
    scan(data)
    entries = bundle(data, "CoverageEligibilityRequest", ("Patient", "Coverage"))
    asked = entries.get("CoverageEligibilityRequest")
    raw, model, path = asked.raw, asked.model, asked.path
    only(raw, REQUEST_ELEMENTS, path)
    require(raw, ("status", "purpose", "patient", "created", "insurer", "insurance", "item"), path)
    if model.status != "active":
        raise not_supported(gettext_noop("statut de demande attendu : active"), f"{path}.status")
    purposes = list(model.purpose)
    if "validation" not in purposes or not set(purposes) <= PURPOSES:
        raise not_supported(gettext_noop("but attendu : validation (et benefits)"), f"{path}.purpose")
    if len(model.insurance) != 1:
        raise not_supported(gettext_noop("une seule couverture par demande"), f"{path}.insurance")
    only(raw["insurance"][0], {"focal", "coverage"}, f"{path}.insurance[0]")
    coverage_ref = model.insurance[0].coverage
    if len(model.item) != 1:
        raise not_supported(gettext_noop("un seul domaine de soins par demande"), f"{path}.item")
    only(raw["item"][0], {"category"}, f"{path}.item[0]")
    require(raw["item"][0], ("category",), f"{path}.item[0]")
    domain_path = f"{path}.item[0].category"
    domain = domain_of(model.item[0].category, domain_path)
    card_fields, coverage = presented(
        entries, model.patient, f"{path}.patient", domain, domain_path, model.insurer, f"{path}.insurer"
    )
    if entries.resolve(coverage_ref, "Coverage", f"{path}.insurance[0].coverage") is not coverage:
        raise invalid(
            gettext_noop("la couverture de la demande n'est pas celle du Bundle"),
            f"{path}.insurance[0].coverage",
        )
    card = card_fields.read(care_date=model.servicedDate, care_path=f"{path}.servicedDate")
    answer = check_rights(Actor.api(request), card)
    return response(answer, purposes, asked.full_url, coverage.full_url)


def response(answer: RightsAnswer, purposes: list[str], request_url: str, coverage_url: str) -> dict:
    """The CoverageEligibilityResponse: only what the JSON API's answer says."""
    resource = {
        "resourceType": "CoverageEligibilityResponse",
        "identifier": [
            {"system": systems.identifier_system(systems.CHECK_REFERENCE), "value": answer.reference}
        ],
        "status": "active",
        "purpose": sorted(purposes, key=["validation", "benefits"].index),
        "patient": systems.masked(),
        "servicedDate": answer.care_date.isoformat(),
        "created": instant(answer.checked_at),
        "request": {"reference": request_url},
        "outcome": "complete",
        "disposition": answer.outcome,
        "insurer": systems.masked(),
    }
    if answer.outcome == "no_match":
        resource["outcome"] = "error"
        resource["error"] = [{"code": {"coding": [systems.coding(systems.OUTCOMES, "no_match")]}}]
        return resource
    insurance = {"coverage": {"reference": coverage_url}, "inforce": answer.outcome == "covered"}
    if answer.outcome == "covered":
        if answer.valid_until is not None:
            insurance["benefitPeriod"] = {"end": answer.valid_until.isoformat()}
        insurance["item"] = [_terms(answer)]
    resource["insurance"] = [insurance]
    return resource


def _terms(answer: RightsAnswer) -> dict:
    """The domain's tiers payant terms: the card's code, the rate or the flat amount, whether a PEC is needed."""
    terms = answer.terms
    benefits = [
        {
            "type": {"coding": [systems.coding(systems.BENEFIT_TYPES, "tp-code")]},
            "allowedString": terms.tp_code,
        }
    ]
    if terms.rate_percent is not None:
        benefits.append(
            {"type": {"coding": [systems.coding(systems.BENEFIT_TYPES, "rate-percent")]},
             "allowedUnsignedInt": terms.rate_percent}
        )  # fmt: skip
    if terms.amount_euros is not None:
        benefits.append(
            {"type": {"coding": [systems.coding(systems.BENEFIT_TYPES, "flat-amount")]},
             "allowedMoney": {"value": terms.amount_euros, "currency": "EUR"}}
        )  # fmt: skip
    return {
        "category": {"coding": [systems.coding(systems.CARE_DOMAINS, answer.domain)]},
        "benefit": benefits,
        "authorizationRequired": terms.pec_required,
    }
