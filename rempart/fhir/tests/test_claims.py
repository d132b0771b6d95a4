"""Claim/$submit: a prise en charge (use preauthorization) and an invoice (use claim), each outcome, the same
service and the same answers as the JSON API's, said as a ClaimResponse."""

import datetime as dt

import pytest
from django.utils import timezone
from fhir.resources.R4B.claimresponse import ClaimResponse

from rempart.authorizations import api as pec_api
from rempart.authorizations.models import Pec
from rempart.authorizations.service import PecOutcome
from rempart.authorizations.tests.test_api import _adult
from rempart.authorizations.tests.test_api import _body as pec_body
from rempart.claims import api as claims_api
from rempart.claims.models import Claim
from rempart.claims.tests.test_api import invoice_for
from rempart.fhir import systems
from rempart.fhir.tests import resources
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure

from .conftest import CLAIM


@pytest.fixture
def raw(token_for):
    return token_for("pec:write", "claims:write")


def answer(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    body = response.json()
    ClaimResponse.model_validate(body)
    assert body["patient"] == body["insurer"] == systems.masked()
    return body


def _code(concept) -> str:
    return concept["coding"][0]["code"]


def line_view(item: dict) -> dict:
    """A ClaimResponse item as {category: amount}, its status and its reason codes."""
    view = {"status": None, "reasons": [], "amounts": {}}
    for entry in item["adjudication"]:
        category = _code(entry["category"])
        if category == "status":
            view["status"] = _code(entry["reason"])
        elif category == "reason":
            view["reasons"].append(_code(entry["reason"]))
        else:
            view["amounts"][category] = entry["amount"]["value"]
    return view


def cents(value) -> int:
    return round(float(value) * 100)


def assert_same_as_json_pec(body: dict) -> None:
    """The ClaimResponse says what the JSON API's answer for the same stored PEC says (its own to_schema)."""
    pec = Pec.objects.get(number=body["preAuthRef"])
    expected = pec_api.to_schema(PecOutcome(pec, pec.ledger_reference)).dict()
    assert body["identifier"][0]["value"] == expected["reference"]
    assert _code(body["adjudication"][0]["reason"]) == expected["status"]
    assert body.get("preAuthPeriod", {}).get("end") == (
        expected["valid_until"] and expected["valid_until"].isoformat()
    )
    assert len(body["item"]) == len(expected["lines"])
    for item, line in zip(body["item"], expected["lines"], strict=True):
        view = line_view(item)
        assert view["status"] == line["status"] and view["reasons"] == line["reasons"]
        assert {k: cents(v) for k, v in view["amounts"].items()} == {
            "submitted": cents(line["price_eur"]), "eligible": cents(line["base_eur"]), "amo": cents(line["amo_eur"]),
            "benefit": cents(line["amc_eur"]), "patient": cents(line["patient_eur"]),
        }  # fmt: skip
    notes = {note["number"]: note["text"] for note in body["processNote"]}
    assert [notes[item["noteNumber"][0]] for item in body["item"]] == [
        line["explanation"] for line in expected["lines"]
    ]


def assert_same_as_json_claim(body: dict) -> None:
    claim = Claim.objects.get(ledger_reference=body["identifier"][0]["value"])
    expected = claims_api.to_schema(claim, reference=claim.ledger_reference).dict()
    assert body["disposition"] == expected["status"] == _code(body["adjudication"][0]["reason"])
    assert body["request"]["identifier"]["value"] == expected["invoice_number"]
    totals = {_code(t["category"]): cents(t["amount"]["value"]) for t in body["total"]}
    assert totals == {"submitted": expected["claimed_cents"], "benefit": expected["accepted_cents"]}
    for item, line in zip(body["item"], expected["lines"], strict=True):
        view = line_view(item)
        assert item["itemSequence"] == line["line"] and view["status"] == line["status"]
        assert view["reasons"] == [r["code"] for r in line["reasons"]]
        assert {k: cents(v) for k, v in view["amounts"].items()} == {
            "submitted": line["claimed_cents"], "benefit": line["accepted_cents"]}  # fmt: skip
    review = [_code(e["reason"]) for e in body["adjudication"][1:]]
    assert review == [r["code"] for r in expected["review_reasons"]]


# --- prise en charge -------------------------------------------------------------------------------------


def test_a_pec_is_granted_with_its_number_and_per_line_amounts(fhir, population, raw):
    row = _adult(population)
    response = fhir(CLAIM, raw, resources.preauthorization(pec_body(row)))
    body = answer(response)
    assert body["use"] == "preauthorization" and body["outcome"] == "complete"
    assert body["preAuthRef"].startswith("PEC-") and _code(body["adjudication"][0]["reason"]) == "accepted"
    assert_same_as_json_pec(body)
    pec = Pec.objects.get(number=body["preAuthRef"])
    ledger = Disclosure.objects.get(reference=body["identifier"][0]["value"])
    assert ledger.purpose == "pec" and ledger.beneficiary_id == pec.beneficiary_id and ledger.channel == "api"
    for secret in (row[COL["nir"]], row[COL["last_name"]], row[COL["first_name"]], row[COL["birth_date"]]):
        assert secret not in response.content.decode()


def test_an_early_renewal_is_refused_with_the_previous_delivery(fhir, population, raw):
    row = _adult(population)
    answer(fhir(CLAIM, raw, resources.preauthorization(pec_body(row))))
    body = answer(fhir(CLAIM, raw, resources.preauthorization(pec_body(row))))
    assert _code(body["adjudication"][0]["reason"]) == "refused"
    assert "renewal_too_early" in line_view(body["item"][1])["reasons"]
    previous = [e for item in body["item"] for e in item.get("extension", [])]
    assert previous and previous[0]["url"] == systems.extension("previous-delivery")
    assert_same_as_json_pec(body)


def test_a_pec_partly_granted(fhir, population, raw):
    row = _adult(population)
    first = pec_body(row)
    first["lines"] = [first["lines"][1]]  # the right lens only
    answer(fhir(CLAIM, raw, resources.preauthorization(first)))
    body = answer(fhir(CLAIM, raw, resources.preauthorization(pec_body(row))))  # frame and both lenses
    assert _code(body["adjudication"][0]["reason"]) == "partially_accepted"
    assert [line_view(i)["status"] for i in body["item"]] == ["accepted", "refused", "accepted"]
    assert_same_as_json_pec(body)


def test_hearing_aids_with_a_device_request(fhir, population, cast, token_for):
    professional = cast.optician.professional
    professional.domains = ["OPTI", "AUDI"]
    professional.save(update_fields=["domains"])
    row = _adult(population)
    sent = pec_body(row, domain="AUDI")
    sent["prescription"] = {"date": sent["prescription"]["date"], "prescriber_id": "10001234567"}
    sent["lines"] = [
        {"lpp_code": "2390100", "class": "I", "side": "right", "quantity": 1, "unit_price_eur": "950.00"},
        {"lpp_code": "2390110", "class": "II", "side": "left", "quantity": 1, "unit_price_eur": "2500.00"},
    ]
    bundle = resources.preauthorization(sent)
    assert bundle["entry"][3]["resource"]["resourceType"] == "DeviceRequest"
    body = answer(fhir(CLAIM, token_for("pec:write"), bundle))
    assert_same_as_json_pec(body)
    assert line_view(body["item"][0])["amounts"]["patient"] == 0


def test_pec_misses_are_one_answer(fhir, population, raw):
    row = _adult(population)
    stranger = next(r for r in population.people[population.insurers[1].pk] if r[COL["nir"]])
    bodies = []
    for change in ({"nir": stranger[COL["nir"]]}, {"adherent_number": "NOPE-1"}, {"amc_number": "999999999"}):
        body = answer(fhir(CLAIM, raw, resources.preauthorization(pec_body(row, **change))))
        bodies.append({k: v for k, v in body.items() if k not in ("identifier", "created")})
    assert bodies[0] == bodies[1] == bodies[2] and bodies[0]["outcome"] == "error"
    assert bodies[0]["error"] == [{"code": {"coding": [systems.coding(systems.OUTCOMES, "no_match")]}}]
    assert "item" not in bodies[0] and "preAuthRef" not in bodies[0] and not Pec.objects.exists()


def test_a_bad_quote_names_the_claim_item_and_stores_nothing(fhir, population, raw):
    row = _adult(population)
    sent = pec_body(row)
    sent["lines"][1]["unit_price_eur"] = "99.00"  # above the class A price limit
    response = fhir(CLAIM, raw, resources.preauthorization(sent))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.item[1].unitPrice"]
    assert not Pec.objects.exists() and not Disclosure.objects.exists()


def test_what_only_the_patient_reveals_is_refused_after_its_ledger_row(fhir, population, raw):
    row = _adult(population)
    sent = pec_body(row)
    sent["lines"][0]["lpp_code"] = "2290101"  # a child's frame, for an adult
    response = fhir(CLAIM, raw, resources.preauthorization(sent))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.item[0].productOrService"]
    written = Disclosure.objects.get()
    assert (written.purpose, written.outcome) == ("pec", "rejected")


def test_the_idempotency_key_replays_and_refuses_another_quote(fhir, population, raw):
    row = _adult(population)
    first = answer(
        fhir(CLAIM, raw, resources.preauthorization(pec_body(row)), HTTP_IDEMPOTENCY_KEY="devis-7")
    )
    again = answer(
        fhir(CLAIM, raw, resources.preauthorization(pec_body(row)), HTTP_IDEMPOTENCY_KEY="devis-7")
    )
    assert again["preAuthRef"] == first["preAuthRef"] and Pec.objects.count() == 1
    other = pec_body(row)
    other["lines"] = other["lines"][:1]
    conflict = fhir(CLAIM, raw, resources.preauthorization(other), HTTP_IDEMPOTENCY_KEY="devis-7")
    assert conflict.status_code == 409 and conflict.json()["issue"][0]["code"] == "conflict"


def test_each_use_needs_its_own_scope(fhir, population, token_for):
    row = _adult(population)
    refused = fhir(CLAIM, token_for("claims:write"), resources.preauthorization(pec_body(row)))
    assert refused.status_code == 403 and _code(refused.json()["issue"][0]["details"]) == "scope_missing"
    assert not Disclosure.objects.exists()


# --- invoices --------------------------------------------------------------------------------------------


@pytest.fixture
def delivered(fhir, population, raw):
    """A PEC granted through FHIR, its glasses delivered today, in the JSON API's shape for invoice_for."""
    row = _adult(population)
    body = answer(fhir(CLAIM, raw, resources.preauthorization(pec_body(row))))
    pec = Pec.objects.get(number=body["preAuthRef"])
    Pec.objects.filter(pk=pec.pk).update(delivery_date=timezone.localdate())
    return row, pec_api.to_schema(PecOutcome(pec, pec.ledger_reference)).dict()


def _json_pec(pec: dict) -> dict:
    """invoice_for reads euros as strings, as the JSON API writes them."""
    return {
        **pec,
        "lines": [{k: str(v) if k.endswith("_eur") else v for k, v in line.items()} for line in pec["lines"]],
    }


def test_an_invoice_is_accepted_and_consumes_its_pec(fhir, raw, delivered):
    row, pec = delivered
    body = answer(fhir(CLAIM, raw, resources.invoice(invoice_for(row, _json_pec(pec)))))
    assert body["use"] == "claim" and body["disposition"] == "accepted" and body["outcome"] == "complete"
    assert_same_as_json_claim(body)
    assert Pec.objects.get(number=pec["number"]).consumed_at is not None
    row_written = Disclosure.objects.get(reference=body["identifier"][0]["value"])
    assert (row_written.purpose, row_written.outcome) == ("claim", "covered")


def test_a_second_invoice_for_the_pec_is_rejected_with_its_reason(fhir, raw, delivered):
    row, pec = delivered
    answer(fhir(CLAIM, raw, resources.invoice(invoice_for(row, _json_pec(pec)))))
    body = answer(fhir(CLAIM, raw, resources.invoice(invoice_for(row, _json_pec(pec), number="F2026-0002"))))
    assert body["disposition"] == "rejected"
    assert all(line_view(i)["reasons"] == ["pec_consumed"] for i in body["item"])
    labels = [
        e["reason"]["text"] for e in body["item"][0]["adjudication"] if _code(e["category"]) == "reason"
    ]
    assert labels == ["Prise en charge déjà facturée"]
    assert_same_as_json_claim(body)


def test_an_invoice_partly_accepted(fhir, raw, delivered):
    row, pec = delivered
    sent = invoice_for(row, _json_pec(pec))
    extra = dict(sent["lines"][1])  # a second right lens: not in the PEC
    sent["lines"].append(extra)
    for total, name in (("total_price_cents", "unit_price_cents"), ("total_amo_cents", "amo_paid_cents"),
                        ("total_amc_cents", "amc_claimed_cents")):  # fmt: skip
        sent[total] = sum(line[name] for line in sent["lines"])
    body = answer(fhir(CLAIM, raw, resources.invoice(sent)))
    assert body["disposition"] == "partially_accepted"
    assert line_view(body["item"][3])["status"] == "rejected"
    assert_same_as_json_claim(body)


def test_an_invoice_sent_to_review(fhir, raw, delivered):
    row, pec = delivered
    sent = invoice_for(row, _json_pec(pec))
    for line in sent["lines"]:  # nothing paid by the compulsory scheme: an anomaly the operator looks at
        line["amc_claimed_cents"] -= 100
        line["amo_paid_cents"] = 0
    sent["total_amo_cents"] = 0
    sent["total_amc_cents"] = sum(line["amc_claimed_cents"] for line in sent["lines"])
    body = answer(fhir(CLAIM, raw, resources.invoice(sent)))
    assert body["disposition"] == "pending_review" and body["outcome"] == "partial"
    assert "amo_not_paid" in [_code(e["reason"]) for e in body["adjudication"][1:]]
    assert_same_as_json_claim(body)


def test_invoice_misses_are_one_answer_and_keep_no_claim(fhir, raw, delivered, population):
    row, pec = delivered
    stranger = next(r for r in population.people[population.insurers[1].pk] if r[COL["nir"]])
    bodies = []
    for change in ({"nir": stranger[COL["nir"]]}, {"adherent_number": "NOPE-1"}):
        sent = invoice_for(row, _json_pec(pec), number="F-MISS", **change)
        body = answer(fhir(CLAIM, raw, resources.invoice(sent)))
        bodies.append({k: v for k, v in body.items() if k not in ("identifier", "created")})
    assert bodies[0] == bodies[1] and bodies[0]["disposition"] == "no_match" and "item" not in bodies[0]
    assert not Claim.objects.exists()


def test_an_invoice_number_replays_or_conflicts(fhir, raw, delivered):
    row, pec = delivered
    sent = invoice_for(row, _json_pec(pec))
    first = answer(fhir(CLAIM, raw, resources.invoice(sent)))
    again = answer(fhir(CLAIM, raw, resources.invoice(sent)))
    assert again["identifier"] == first["identifier"] and Claim.objects.count() == 1
    other = dict(sent, care_date=(timezone.localdate() - dt.timedelta(days=1)).isoformat())
    conflict = fhir(CLAIM, raw, resources.invoice(other))
    assert conflict.status_code == 409 and Claim.objects.count() == 1


def test_a_bad_invoice_is_every_problem_with_its_stable_code_and_element(fhir, raw, delivered):
    row, pec = delivered
    sent = invoice_for(row, _json_pec(pec))
    sent["lines"][0]["code"] = "12"  # not an LPP code
    sent["total_amc_cents"] += 1
    response = fhir(CLAIM, raw, resources.invoice(sent))
    assert response.status_code == 400
    issues = response.json()["issue"]
    found = {(i["details"]["coding"][0]["code"], i["expression"][0]) for i in issues}
    reasons = systems.code_system(systems.CLAIM_REASONS)
    assert all(i["details"]["coding"][0]["system"] == reasons for i in issues)
    assert ("code_invalid", "Bundle.entry[0].resource.item[0].productOrService") in found
    assert ("totals_mismatch", f"Bundle.entry[0].resource.extension('{systems.EXT_TOTAL_AMC}')") in found
    assert not Claim.objects.exists() and not Disclosure.objects.filter(purpose="claim").exists()


def test_money_with_a_fraction_of_a_cent_is_refused_not_rounded(fhir, raw, delivered):
    row, pec = delivered
    bundle = resources.invoice(invoice_for(row, _json_pec(pec)))
    bundle["entry"][0]["resource"]["item"][0]["unitPrice"]["value"] = 30.001
    response = fhir(CLAIM, raw, bundle)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.item[0].unitPrice.value"]
