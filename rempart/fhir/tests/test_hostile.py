"""Malformed and hostile requests: each an OperationOutcome 4xx naming the element, never a 500, nothing read."""

import json

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from rempart.authorizations.tests.test_api import _adult
from rempart.authorizations.tests.test_api import _body as pec_body
from rempart.fhir import systems
from rempart.fhir.tests import resources
from rempart.ledger.models import Disclosure

from .conftest import CER, CLAIM
from .test_eligibility import card

PATIENT = "Bundle.entry[1].resource"
REQUEST = "Bundle.entry[0].resource"


def _set(path: str, value):
    """Change one element of the Bundle: ``entry.1.resource.name`` = value (None: delete it)."""

    def change(bundle):
        *parents, last = path.split(".")
        target = bundle
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is None:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _many_entries(bundle):
    bundle["entry"] += [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
                         "resource": {"resourceType": "Patient"}} for n in range(60)]  # fmt: skip


DATA_ABSENT = [{"url": systems.DATA_ABSENT_REASON, "valueCode": "masked"}]

# (name, change to a good rights-check Bundle, status, expression, FHIR issue type)
CASES = [
    (
        "wrong resourceType at the root",
        _set("resourceType", "Patient"),
        400,
        "Bundle.resourceType",
        "invalid",
    ),
    (
        "a Parameters resource",
        lambda b: b.update(resourceType="Parameters"),
        400,
        "Bundle.resourceType",
        "invalid",
    ),
    (
        "an unknown resourceType in an entry",
        _set("entry.1.resource.resourceType", "Foo"),
        400,
        f"{PATIENT}.resourceType",
        "not-supported",
    ),
    ("the request is not first", lambda b: b["entry"].reverse(), 400, f"{REQUEST}.resourceType", "invalid"),
    (
        "a contained resource",
        _set("entry.1.resource.contained", [{"resourceType": "Patient"}]),
        400,
        f"{PATIENT}.contained",
        "not-supported",
    ),
    (
        "a modifier extension",
        _set("entry.0.resource.modifierExtension", DATA_ABSENT),
        400,
        f"{REQUEST}.modifierExtension",
        "not-supported",
    ),
    (
        "an extension on the patient",
        _set("entry.1.resource.extension", DATA_ABSENT),
        400,
        f"{PATIENT}.extension[0]",
        "not-supported",
    ),
    (
        "a primitive extension",
        _set("entry.1.resource._birthDate", {"extension": DATA_ABSENT}),
        400,
        f"{PATIENT}._birthDate",
        "not-supported",
    ),
    (
        "a nested extension",
        _set("entry.0.resource.insurance.0.extension", DATA_ABSENT),
        400,
        f"{REQUEST}.insurance[0].extension[0]",
        "not-supported",
    ),
    ("a huge bundle", _many_entries, 400, None, "too-long"),
    ("a Bundle of another type", _set("type", "transaction"), 400, "Bundle.type", "not-supported"),
    (
        "a patient's name",
        _set("entry.1.resource.name", [{"family": "Testeur"}]),
        400,
        f"{PATIENT}.name",
        "not-supported",
    ),
    (
        "a narrative",
        _set("entry.1.resource.text", {"status": "generated", "div": "<div>Paul</div>"}),
        400,
        f"{PATIENT}.text",
        "not-supported",
    ),
    (
        "a second identifier",
        lambda b: b["entry"][1]["resource"]["identifier"].append(
            {"system": "urn:oid:1.2.250.1.213.1.4.2", "value": "x"}
        ),
        400,
        f"{PATIENT}.identifier",
        "not-supported",
    ),
    (
        "another identifier system",
        _set("entry.1.resource.identifier.0.system", "urn:oid:1.2.3"),
        400,
        f"{PATIENT}.identifier[0].system",
        "not-supported",
    ),
    (
        "an impossible birth date",
        _set("entry.1.resource.birthDate", "1985-13-01"),
        400,
        f"{PATIENT}.birthDate",
        "structure",
    ),
    ("an element FHIR does not know", _set("entry.1.resource.nir", "x"), 400, f"{PATIENT}.nir", "structure"),
    ("no birth date", _set("entry.1.resource.birthDate", None), 400, f"{PATIENT}.birthDate", "required"),
    (
        "a discovery (a search for coverages)",
        _set("entry.0.resource.purpose", ["discovery"]),
        400,
        f"{REQUEST}.purpose",
        "not-supported",
    ),
    (
        "a period of care",
        _set("entry.0.resource.servicedPeriod", {"start": "2026-01-01"}),
        400,
        f"{REQUEST}.servicedPeriod",
        "not-supported",
    ),
    (
        "a reference outside the Bundle",
        _set("entry.0.resource.patient", {"reference": "Patient/123"}),
        400,
        f"{REQUEST}.patient.reference",
        "not-supported",
    ),
    (
        "a fullUrl that is no uuid",
        _set("entry.1.fullUrl", "http://evil.example/Patient/1"),
        400,
        "Bundle.entry[1].fullUrl",
        "invalid",
    ),
    (
        "two items (domains)",
        lambda b: b["entry"][0]["resource"]["item"].append(b["entry"][0]["resource"]["item"][0]),
        400,
        f"{REQUEST}.item",
        "not-supported",
    ),
    (
        "another insurer in the request",
        _set("entry.0.resource.insurer", resources.amc("987654321")),
        400,
        f"{REQUEST}.insurer.identifier",
        "invalid",
    ),
    (
        "an unknown domain",
        _set("entry.0.resource.item.0.category.coding.0.code", "XXXX"),
        400,
        f"{REQUEST}.item[0].category",
        "invalid",
    ),
    (
        "a care date in the future",
        _set("entry.0.resource.servicedDate", "2999-01-01"),
        400,
        f"{REQUEST}.servicedDate",
        "invalid",
    ),
    (
        "a cancelled coverage",
        _set("entry.2.resource.status", "cancelled"),
        400,
        "Bundle.entry[2].resource.status",
        "not-supported",
    ),
]


def outcome(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:400])
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    body = response.json()
    OperationOutcome.model_validate(body)
    assert body["issue"] and all(i["details"]["coding"][0]["code"] for i in body["issue"])
    text = response.content.decode()
    assert "Traceback" not in text and "pydantic" not in text and "Input should" not in text
    return body


@pytest.mark.parametrize(
    ("name", "change", "status", "expression", "issue_type"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_rights_checks_are_4xx_operation_outcomes(fhir, family, token_for, name, change, status,
                                                         expression, issue_type):  # fmt: skip
    bundle = resources.changed(resources.eligibility(card(family)), change)
    body = outcome(fhir(CER, token_for("rights:check"), bundle), status)
    issue = body["issue"][0]
    assert issue["code"] == issue_type, issue
    if expression:
        assert issue["expression"] == [expression], issue
    assert not Disclosure.objects.exists()


@pytest.mark.parametrize(
    ("name", "body", "content_type", "status", "code"),
    [
        ("not JSON", "{not json", "application/fhir+json", 400, "malformed_body"),
        ("a repeated key", '{"resourceType": "Bundle", "resourceType": "Patient"}', "application/fhir+json", 400,
         "malformed_body"),
        ("nesting beyond the interpreter", "[" * 5000 + "]" * 5000, "application/fhir+json", 400, "malformed_body"),
        ("too many nodes", json.dumps({"resourceType": "Bundle", "x": [0] * 5001}), "application/json", 400,
         "too_complex"),
        ("a JSON array", "[]", "application/fhir+json", 400, "structure"),
        ("XML", "<Bundle/>", "application/fhir+xml", 415, "unsupported_media_type"),
        ("a form", "a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)  # fmt: skip
def test_bodies_that_are_no_fhir_json(fhir, family, token_for, name, body, content_type, status, code):
    response = fhir(CER, token_for("rights:check"), body, content_type=content_type)
    assert outcome(response, status)["issue"][0]["details"]["coding"][0]["code"] == code
    assert not Disclosure.objects.exists()


def test_a_body_too_large_is_refused_before_it_is_read(fhir, family, token_for, settings):
    bundle = resources.eligibility(card(family))
    bundle["id"] = "a" * 64
    bundle["meta"] = {"tag": [{"code": "x" * 1000}] * 20}
    response = fhir(CER, token_for("rights:check"), bundle)
    body = outcome(response, 413)
    assert (
        body["issue"][0]["details"]["coding"][0]["code"] == "too_large"
        and "16384" in body["issue"][0]["details"]["text"]
    )


@pytest.mark.parametrize(
    ("name", "change", "expression"),
    [
        ("a claim of another use", _set("entry.0.resource.use", "predetermination"), f"{REQUEST}.use"),
        ("an invoice extension on a prise en charge", _set("entry.0.resource.extension", [
            {"url": systems.extension("total-amo"), "valueMoney": {"value": 1, "currency": "EUR"}}]),
         f"{REQUEST}.extension[0]"),
        ("a prescription that is not in the Bundle", _set("entry.0.resource.prescription", {"reference": "VisionPrescription/9"}),
         f"{REQUEST}.prescription.reference"),
        ("a prescriber without RPPS", _set("entry.3.resource.prescriber", {"display": "Dr X"}),
         "Bundle.entry[3].resource.prescriber"),
        ("two corrections for one eye", lambda b: b["entry"][3]["resource"]["lensSpecification"].append(
            b["entry"][3]["resource"]["lensSpecification"][0]), "Bundle.entry[3].resource.lensSpecification[2].eye"),
        ("a sphere out of range", _set("entry.3.resource.lensSpecification.0.sphere", -45),
         "Bundle.entry[3].resource.lensSpecification[0].sphere"),
        ("items on two dates", _set("entry.0.resource.item.1.servicedDate", "2099-01-01"), f"{REQUEST}.item"),
        ("a price in dollars", _set("entry.0.resource.item.0.unitPrice.currency", "USD"),
         f"{REQUEST}.item[0].unitPrice.currency"),
        ("an item out of sequence", _set("entry.0.resource.item.0.sequence", 7), f"{REQUEST}.item[0].sequence"),
        ("an unknown class system", _set("entry.0.resource.item.0.modifier.0.coding.0.system", "http://x"),
         f"{REQUEST}.item[0].modifier[0].coding"),
    ],
)  # fmt: skip
def test_hostile_prises_en_charge(fhir, population, token_for, name, change, expression):
    bundle = resources.changed(resources.preauthorization(pec_body(_adult(population))), change)
    body = outcome(fhir(CLAIM, token_for("pec:write"), bundle), 400)
    assert body["issue"][0]["expression"] == [expression], body
    assert not Disclosure.objects.exists()


def test_an_unknown_extension_on_an_invoice_is_refused(fhir, population, token_for):
    from rempart.claims.tests.test_api import invoice_for

    pec = {"number": "PEC-ABCD-EFGH", "lines": [{"lpp_code": "2290100", "price_eur": "30.00", "base_eur": "15.00",
                                                 "amo_eur": "9.00"}]}  # fmt: skip
    bundle = resources.invoice(invoice_for(_adult(population), pec))
    bundle["entry"][0]["resource"]["item"][0]["extension"].append(
        {"url": "http://evil.example/x", "valueMoney": {}}
    )
    body = outcome(fhir(CLAIM, token_for("claims:write"), bundle), 400)
    assert body["issue"][0]["expression"] == [f"{REQUEST}.item[0].extension[3]"]


def test_methods_and_addresses_that_do_not_exist(client, fhir, token_for):
    wrong = client.get(CER)
    assert outcome(wrong, 405)["issue"][0]["details"]["coding"][0]["code"] == "method_not_allowed"
    assert wrong["Allow"] == "POST"
    for path in ("/fhir/r4/Patient?identifier=1", "/fhir/r4/Patient/1", "/fhir/r4/Coverage", "/fhir/r4/Claim/1",
                 "/fhir/r4/CodeSystem/nope", "/fhir/r4/OperationDefinition/nope", "/fhir/other", "/fhir/r4/"):  # fmt: skip
        assert outcome(client.get(path), 404)["issue"][0]["details"]["coding"][0]["code"] == "not_found", path
    deleted = client.delete(
        "/fhir/r4/Claim/$submit", HTTP_AUTHORIZATION=f"Bearer {token_for('claims:write')}"
    )
    assert outcome(deleted, 405)["issue"][0]["code"] == "not-supported"


def test_an_invoice_line_without_its_claimed_amount(fhir, population, token_for):
    from rempart.claims.tests.test_api import invoice_for

    pec = {"number": "PEC-ABCD-EFGH", "lines": [{"lpp_code": "2290100", "price_eur": "30.00", "base_eur": "15.00",
                                                 "amo_eur": "9.00"}]}  # fmt: skip
    bundle = resources.invoice(invoice_for(_adult(population), pec))
    del bundle["entry"][0]["resource"]["item"][0]["extension"][2]  # amc-claimed
    issue = outcome(fhir(CLAIM, token_for("claims:write"), bundle), 400)["issue"][0]
    assert issue["expression"] == [f"{REQUEST}.item[0].extension('{systems.EXT_AMC_CLAIMED}')"]
    assert issue["details"]["text"] == "champ obligatoire"
