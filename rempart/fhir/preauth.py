"""``Claim/$submit`` with ``use = preauthorization``: a prise en charge for one quote, the standard way.

The quote is the Claim's items (LPP code, 100 % santé class as ``modifier``, eye or ear as ``bodySite``,
quantity, unit price, the planned delivery date as ``servicedDate``); the prescription is a
VisionPrescription (optics) or a DeviceRequest (audiology) in the same Bundle, its prescriber named by RPPS.
They become exactly what ``POST /api/v1/pec`` builds and go through the same service (``request_pec``:
checks before the lookup, the gate, the ledger row, the stored PEC). The ClaimResponse carries the PEC
number as ``preAuthRef``, per line the amounts and the reasons, nothing of the patient.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _

from rempart.authorizations import rules
from rempart.authorizations.optics import Correction, CorrectionError
from rempart.authorizations.service import PecConflict, request_pec
from rempart.fhir import codesystems, systems
from rempart.fhir.cards import presented
from rempart.fhir.claim_shared import (
    adjudication,
    cents,
    common,
    items_domain_and_date,
    money,
    no_match,
    reason_entry,
    skeleton,
    status_entry,
)
from rempart.fhir.intake import Entries, Entry, invalid, not_supported, only, require
from rempart.fhir.outcome import FhirError, Issue
from rempart.gate import Actor

SCOPE = "pec:write"
USE = "preauthorization"
CLAIM_ELEMENTS = {
    "resourceType", "id", "meta", "status", "type", "use", "patient", "created", "insurer", "provider", "priority",
    "prescription", "supportingInfo", "insurance", "item",
}  # fmt: skip
ITEM_ELEMENTS = {
    "sequence", "category", "productOrService", "modifier", "bodySite", "servicedDate", "quantity", "unitPrice",
}  # fmt: skip
VISION_ELEMENTS = {
    "resourceType", "id", "meta", "status", "created", "patient", "dateWritten", "prescriber", "lensSpecification",
}  # fmt: skip
DEVICE_ELEMENTS = {
    "resourceType", "id", "meta", "status", "intent", "codeCodeableConcept", "subject", "authoredOn", "requester",
}  # fmt: skip
LPP = "LPP"
# The service's field names and the FHIR elements they come from (per line: the Claim's item).
LINE_FIELDS = {"lpp_code": "productOrService", "class": "modifier", "side": "bodySite", "quantity": "quantity",
               "unit_price_cents": "unitPrice"}  # fmt: skip


def submit(request, entries: Entries) -> dict:
    """Decide one PEC; the ClaimResponse to send (``entries``: the Bundle, already scanned and validated)."""
    claim, _items = common(entries, USE)
    only(claim.raw, CLAIM_ELEMENTS, claim.path)
    only(claim.raw["insurance"][0], {"sequence", "focal", "coverage"}, f"{claim.path}.insurance[0]")
    domain, delivery, first = items_domain_and_date(claim, ITEM_ELEMENTS)
    card_fields, coverage = presented(
        entries, claim.model.patient, f"{claim.path}.patient", domain, f"{first}.category",
        claim.model.insurer, f"{claim.path}.insurer",
    )  # fmt: skip
    entries.resolve(claim.model.insurance[0].coverage, "Coverage", f"{claim.path}.insurance[0].coverage")
    if domain not in ("OPTI", "AUDI"):
        raise invalid(
            gettext_noop("une prise en charge se demande en optique (OPTI) ou en audiologie (AUDI)"),
            f"{first}.category",
        )
    card = card_fields.read()
    card = dataclasses.replace(card, care_date=delivery)  # rights are judged on the delivery date
    prescription, where = _prescription(claim, entries, domain)
    lines = tuple(_line(claim, index) for index in range(len(claim.model.item)))
    pec_request = rules.PecRequest(domain, delivery, prescription, lines)
    key = request.headers.get("Idempotency-Key", "")
    try:
        outcome = request_pec(Actor.api(request), card, pec_request, idempotency_key=key)
    except rules.PecInputError as exc:
        raise FhirError(400, [_issue(error, claim, first, where) for error in exc.errors]) from None
    except PecConflict as exc:
        raise FhirError(409, Issue("conflict", "conflict", str(exc))) from None
    resource = skeleton(claim, outcome.reference, USE)
    if outcome.pec is None:
        return no_match(resource)
    return _decided(resource, outcome.pec)


def _issue(error: rules.PecInputError, claim: Entry, first: str, where: dict[str, str]) -> Issue:
    """The service's (line, field) as the FHIR element it came from."""
    if error.line is not None:
        element = LINE_FIELDS.get(error.field, "")
        path = f"{claim.path}.item[{error.line - 1}]" + (f".{element}" if element else "")
    elif error.field in ("domain", "delivery_date"):
        path = f"{first}.{'category' if error.field == 'domain' else 'servicedDate'}"
    elif error.field == "lines":
        path = f"{claim.path}.item"
    else:
        path = where.get(error.field) or where.get(error.field.rsplit(".", 1)[0]) or where["prescription"]
    return Issue("invalid", "invalid", error.message, path)


def _prescription(claim: Entry, entries: Entries, domain: str) -> tuple[rules.Prescription, dict[str, str]]:
    """The VisionPrescription (optics) or DeviceRequest (audiology) the Claim names, as the rules take it."""
    require(claim.raw, ("prescription",), claim.path)
    kind = "VisionPrescription" if domain == "OPTI" else "DeviceRequest"
    entry = entries.resolve(claim.model.prescription, kind, f"{claim.path}.prescription")
    other = entries.get("DeviceRequest" if kind == "VisionPrescription" else "VisionPrescription")
    if other is not None:
        raise not_supported(gettext_noop("ressource inattendue dans ce Bundle"), f"{other.path}.resourceType")
    raw, model, path = entry.raw, entry.model, entry.path
    if kind == "VisionPrescription":
        only(raw, VISION_ELEMENTS, path)
        written, prescriber, date_name, prescriber_name = (
            model.dateWritten,
            model.prescriber,
            "dateWritten",
            "prescriber",
        )
    else:
        only(raw, DEVICE_ELEMENTS, path)
        written, prescriber, date_name, prescriber_name = (
            model.authoredOn,
            model.requester,
            "authoredOn",
            "requester",
        )
    require(raw, (date_name, prescriber_name), path)
    where = {
        "prescription": path,
        "prescription.date": f"{path}.{date_name}",
        "prescription.prescriber_id": f"{path}.{prescriber_name}.identifier.value",
    }
    identifier = getattr(prescriber, "identifier", None)
    if identifier is None or identifier.system != systems.RPPS or not identifier.value:
        raise invalid(
            gettext_noop("prescripteur attendu par son identifiant RPPS (https://rpps.esante.gouv.fr)"),
            f"{path}.{prescriber_name}",
        )
    corrections: dict[str, Correction | None] = {"right": None, "left": None}
    for index, (spec_raw, spec) in enumerate(zip(raw.get("lensSpecification") or [], getattr(model, "lensSpecification", None) or [],
                                                 strict=True)):  # fmt: skip
        spec_path = f"{path}.lensSpecification[{index}]"
        only(spec_raw, {"product", "eye", "sphere", "cylinder", "axis", "add"}, spec_path)
        if corrections.get(spec.eye) is not None:
            raise invalid(gettext_noop("une correction par œil"), f"{spec_path}.eye")
        where[f"prescription.{spec.eye}"] = spec_path
        for name, element in (("sphere", "sphere"), ("cylinder", "cylinder"), ("addition", "add")):
            where[f"prescription.{spec.eye}.{name}"] = f"{spec_path}.{element}"
        if spec.sphere is None:
            raise invalid(
                gettext_noop("sphère attendue (0 pour plan)"), f"{spec_path}.sphere", code="required"
            )
        try:
            corrections[spec.eye] = Correction.of(_text(spec.sphere), _text(spec.cylinder), _text(spec.add))
        except CorrectionError as exc:
            element = {"sphere": "sphere", "cylinder": "cylinder", "addition": "add"}.get(
                exc.field, exc.field
            )
            raise invalid(exc.message, f"{spec_path}.{element}") from None
    written_date = written.date() if hasattr(written, "date") and callable(written.date) else written
    prescription = rules.Prescription(
        date=written_date,
        prescriber_id=identifier.value,
        right=corrections["right"],
        left=corrections["left"],
        medical_condition=_medical_condition(claim),
    )
    return prescription, where


def _text(value: Decimal | None) -> str:
    return "0" if value is None else str(value)


def _medical_condition(claim: Entry) -> bool:
    """A ``supportingInfo`` of category medical-condition with ``valueBoolean`` true (the only one taken)."""
    attested = False
    system = systems.code_system(systems.INFORMATION)
    for index, (raw, info) in enumerate(zip(claim.raw.get("supportingInfo") or [], claim.model.supportingInfo or [],
                                            strict=True)):  # fmt: skip
        path = f"{claim.path}.supportingInfo[{index}]"
        only(raw, {"sequence", "category", "valueBoolean"}, path)
        codes = {(c.system, c.code) for c in info.category.coding or ()}
        if (system, "medical-condition") not in codes or info.valueBoolean is None:
            raise not_supported(gettext_noop("information attendue : medical-condition (valueBoolean)"), path)
        attested = attested or info.valueBoolean
    return attested


def _line(claim: Entry, index: int) -> rules.QuoteLine:
    raw, item = claim.raw["item"][index], claim.model.item[index]
    path = f"{claim.path}.item[{index}]"
    require(raw, ("modifier", "quantity", "unitPrice"), path)
    code = _single(item.productOrService, systems.product_system(LPP), f"{path}.productOrService")
    lpp_class = _single_of(item.modifier, systems.code_system(systems.LPP_CLASSES), f"{path}.modifier")
    side = None
    if item.bodySite is not None:
        side = _single(item.bodySite, systems.code_system(systems.SIDES), f"{path}.bodySite")
    quantity = item.quantity.value
    if quantity is None or quantity != quantity.to_integral_value():
        raise invalid(gettext_noop("quantité entière attendue"), f"{path}.quantity.value")
    return rules.QuoteLine(code, lpp_class, side, int(quantity), cents(item.unitPrice, f"{path}.unitPrice"))


def _single(concept, system: str, path: str) -> str:
    codes = [c.code for c in (concept.coding or ()) if c.system == system and c.code]
    if len(codes) != 1:
        raise invalid(lambda: _system_message(system), f"{path}.coding")
    return codes[0]


def _single_of(concepts, system: str, path: str) -> str:
    if len(concepts or ()) != 1:
        raise invalid(lambda: _system_message(system), path)
    return _single(concepts[0], system, f"{path}[0]")


def _system_message(system: str) -> str:
    return _("un code du système %(system)s attendu") % {"system": system}


def _decided(resource: dict, pec) -> dict:
    decision = pec.decision
    language = (get_language() or "fr")[:2]
    resource["disposition"] = decision["explanation"]
    resource["preAuthRef"] = pec.number
    if pec.valid_until:
        resource["preAuthPeriod"] = {"end": pec.valid_until.isoformat()}
    resource["adjudication"] = [status_entry(pec.status)]
    items, notes = [], []
    for line in decision["lines"]:
        number = int(line["line"])
        entries = [
            adjudication("submitted", line["price_cents"]),
            adjudication("eligible", line["base_cents"]),
            adjudication("amo", line["amo_cents"]),
            adjudication("benefit", line["amc_cents"]),
            adjudication("patient", line["patient_cents"]),
            status_entry(line["status"]),
        ]
        entries += [_reason(code, language) for code in line["reasons"]]
        item = {"itemSequence": number, "noteNumber": [number], "adjudication": entries}
        if line.get("previous_delivery"):
            item["extension"] = [
                {"url": systems.extension("previous-delivery"), "valueDate": line["previous_delivery"]}
            ]
        items.append(item)
        notes.append(
            {"number": number, "type": "display", "text": line["explanation"], "language": coded_language()}
        )
    resource["item"] = items
    resource["processNote"] = notes
    totals = decision["totals"]
    resource["total"] = [
        {"category": adjudication("submitted")["category"], "amount": money(totals["price_cents"])},
        {"category": adjudication("eligible")["category"], "amount": money(totals["base_cents"])},
        {"category": adjudication("amo")["category"], "amount": money(totals["amo_cents"])},
        {"category": adjudication("benefit")["category"], "amount": money(totals["amc_cents"])},
        {"category": adjudication("patient")["category"], "amount": money(totals["patient_cents"])},
    ]
    return resource


def _reason(code: str, language: str) -> dict:
    entry = reason_entry(systems.PEC_REASONS, code)
    entry["reason"]["text"] = codesystems.display(systems.PEC_REASONS, code, language)
    return entry


def coded_language() -> dict:
    """The rules' explanations are French whatever the request's language (as in the JSON API)."""
    return {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}
