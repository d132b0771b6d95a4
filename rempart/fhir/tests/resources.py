"""FHIR Bundles built from the JSON API's own bodies: the same request through both doors, for comparisons.

The examples in docs/fhir.md were built with these, from the demo's card, and sent to a demo database.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

from rempart.fhir import systems

REQUEST = "urn:uuid:6d7c0a8e-0f5e-4c65-9a1e-2f7f4b1d0a01"
PATIENT = "urn:uuid:6d7c0a8e-0f5e-4c65-9a1e-2f7f4b1d0a02"
COVERAGE = "urn:uuid:6d7c0a8e-0f5e-4c65-9a1e-2f7f4b1d0a03"
PRESCRIPTION = "urn:uuid:6d7c0a8e-0f5e-4c65-9a1e-2f7f4b1d0a04"
CREATED = "2026-12-02T09:30:00+01:00"


def fhir_birth_date(lunar: str) -> str:
    """``1975-00-00`` → ``1975``, ``1975-05-00`` → ``1975-05``: FHIR's partial dates are the lunar dates."""
    year, month, day = lunar.split("-")
    if month == "00":
        return year
    if day == "00":
        return f"{year}-{month}"
    return lunar


def _patient(body: dict) -> dict:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": systems.NIR_TYPE_SYSTEM, "code": systems.NIR_TYPE_CODE}]},
                "system": systems.NIR,
                "value": body["nir"],
            }
        ],
        "birthDate": fhir_birth_date(body["birth_date"]),
    }
    if body.get("birth_rank") is not None:
        patient["multipleBirthInteger"] = body["birth_rank"]
    return patient


def amc(number: str) -> dict:
    return {"identifier": {"system": systems.identifier_system(systems.AMC_NUMBER), "value": number}}


def _coverage(body: dict) -> dict:
    return {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": PATIENT},
        "subscriberId": body["adherent_number"],
        "payor": [amc(body["amc_number"])],
    }


def _domain(code: str) -> dict:
    return {"coding": [systems.coding(systems.CARE_DOMAINS, code)]}


def _bundle(first: dict, *others: tuple[str, dict]) -> dict:
    entries = [{"fullUrl": REQUEST, "resource": first}]
    entries += [{"fullUrl": url, "resource": resource} for url, resource in others]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def eligibility(card: dict) -> dict:
    """A rights check's JSON body (``POST /api/v1/rights/check``) as a CoverageEligibilityRequest Bundle."""
    request = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": ["validation", "benefits"],
        "patient": {"reference": PATIENT},
        "created": CREATED,
        "insurer": amc(card["amc_number"]),
        "insurance": [{"focal": True, "coverage": {"reference": COVERAGE}}],
        "item": [{"category": _domain(card["domain"])}],
    }
    if card.get("care_date"):
        request["servicedDate"] = card["care_date"]
    return _bundle(request, (PATIENT, _patient(card)), (COVERAGE, _coverage(card)))


def _claim(body: dict, use: str) -> dict:
    return {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "vision"}]
        },
        "use": use,
        "patient": {"reference": PATIENT},
        "created": CREATED,
        "insurer": amc(body["amc_number"]),
        "provider": {"display": "Optique (not read: the token names the organisation)"},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": COVERAGE}}],
    }


def _product(code_system: str, code: str) -> dict:
    return {"coding": [{"system": systems.product_system(code_system), "code": code}]}


def _eur(value) -> dict:
    return {"value": float(Decimal(str(value))), "currency": "EUR"}


def preauthorization(body: dict) -> dict:
    """A PEC's JSON body (``POST /api/v1/pec``) as a Claim (use preauthorization) Bundle."""
    claim = _claim(body, "preauthorization")
    prescription = body["prescription"]
    claim["prescription"] = {"reference": PRESCRIPTION}
    if prescription.get("medical_condition"):
        claim["supportingInfo"] = [
            {"sequence": 1, "category": {"coding": [systems.coding(systems.INFORMATION, "medical-condition")]},
             "valueBoolean": True}
        ]  # fmt: skip
    items = []
    for number, line in enumerate(body["lines"], start=1):
        item = {
            "sequence": number,
            "category": _domain(body["domain"]),
            "productOrService": _product("LPP", line["lpp_code"]),
            "modifier": [{"coding": [systems.coding(systems.LPP_CLASSES, line["class"])]}],
            "servicedDate": body["delivery_date"],
            "quantity": {"value": line.get("quantity", 1)},
            "unitPrice": _eur(line["unit_price_eur"]),
        }
        if line.get("side"):
            item["bodySite"] = {"coding": [systems.coding(systems.SIDES, line["side"])]}
        items.append(item)
    claim["item"] = items
    prescriber = {"identifier": {"system": systems.RPPS, "value": prescription["prescriber_id"]}}
    if body["domain"] == "OPTI":
        lenses = []
        for eye in ("right", "left"):
            correction = prescription.get(eye)
            if correction:
                lens = {"product": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-visionprescriptionproduct",
                                                "code": "lens"}]},
                        "eye": eye, "sphere": float(correction["sphere"])}  # fmt: skip
                if correction.get("cylinder") not in (None, "0"):
                    lens["cylinder"] = float(correction["cylinder"])
                    lens["axis"] = 90
                if correction.get("addition") not in (None, "0"):
                    lens["add"] = float(correction["addition"])
                lenses.append(lens)
        second = {
            "resourceType": "VisionPrescription",
            "status": "active",
            "created": CREATED,
            "patient": {"reference": PATIENT},
            "dateWritten": prescription["date"],
            "prescriber": prescriber,
            "lensSpecification": lenses,
        }
    else:
        second = {
            "resourceType": "DeviceRequest",
            "status": "active",
            "intent": "original-order",
            "codeCodeableConcept": {"text": "aide auditive"},
            "subject": {"reference": PATIENT},
            "authoredOn": prescription["date"],
            "requester": prescriber,
        }
    return _bundle(claim, (PATIENT, _patient(body)), (COVERAGE, _coverage(body)), (PRESCRIPTION, second))


def _money_extension(name: str, cents: int) -> dict:
    return {"url": systems.extension(name), "valueMoney": {"value": cents / 100, "currency": "EUR"}}


def invoice(body: dict) -> dict:
    """An invoice's JSON body (``POST /api/v1/claims``) as a Claim (use claim) Bundle."""
    claim = _claim(body, "claim")
    claim["identifier"] = [
        {"system": systems.identifier_system(systems.INVOICE_NUMBER), "value": body["invoice_number"]}
    ]
    claim["created"] = body["invoice_date"]
    if body.get("prescriber_rpps"):
        claim["careTeam"] = [
            {"sequence": 1, "provider": {"identifier": {"system": systems.RPPS, "value": body["prescriber_rpps"]}},
             "role": {"coding": [systems.coding(systems.CARE_TEAM_ROLES, "prescriber")]}}
        ]  # fmt: skip
    if body.get("pec_number"):
        claim["insurance"][0]["preAuthRef"] = [body["pec_number"]]
    items = []
    for number, line in enumerate(body["lines"], start=1):
        item = {
            "sequence": number,
            "category": _domain(body["domain"]),
            "productOrService": _product(line["code_system"], line["code"]),
            "servicedDate": body["care_date"],
            "quantity": {"value": line["quantity"]},
            "unitPrice": {"value": line["unit_price_cents"] / 100, "currency": "EUR"},
            "extension": [
                _money_extension(systems.EXT_BASE, line["base_cents"]),
                _money_extension(systems.EXT_AMO_PAID, line["amo_paid_cents"]),
                _money_extension(systems.EXT_AMC_CLAIMED, line["amc_claimed_cents"]),
            ],
        }
        if line.get("lpp_class"):
            item["modifier"] = [{"coding": [systems.coding(systems.LPP_CLASSES, line["lpp_class"])]}]
        if line.get("side"):
            item["bodySite"] = {"coding": [systems.coding(systems.SIDES, line["side"])]}
        items.append(item)
    claim["item"] = items
    claim["total"] = {"value": body["total_price_cents"] / 100, "currency": "EUR"}
    claim["extension"] = [
        _money_extension(systems.EXT_TOTAL_AMO, body["total_amo_cents"]),
        _money_extension(systems.EXT_TOTAL_AMC, body["total_amc_cents"]),
    ]
    return _bundle(claim, (PATIENT, _patient(body)), (COVERAGE, _coverage(body)))


def changed(bundle: dict, change) -> dict:
    """A deep copy of ``bundle`` after ``change(copy)`` (tests mutate requests one way at a time)."""
    other = copy.deepcopy(bundle)
    change(other)
    return other


def dumps(resource: dict) -> str:
    return json.dumps(resource, ensure_ascii=False, indent=2)
