"""CoverageEligibilityRequest/$submit: the rights check's answers, the standard way, and nothing more."""

import json

import pytest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse

from rempart.fhir import systems
from rempart.fhir.tests import resources
from rempart.ledger.models import Disclosure
from rempart.rights.tests.conftest import TODAY, nir

from .conftest import CER


def card(family, **extra):
    return {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
            "birth_date": family.parent_birth, "domain": "OPTI", **extra}  # fmt: skip


def answer(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    body = response.json()
    CoverageEligibilityResponse.model_validate(body)  # what leaves is valid R4(B)
    return body


def benefits(body) -> dict:
    item = body["insurance"][0]["item"][0]
    found = {}
    for benefit in item["benefit"]:
        code = benefit["type"]["coding"][0]["code"]
        found[code] = next(v for k, v in benefit.items() if k.startswith("allowed"))
    return found


def test_a_hit_answers_what_the_json_api_answers_and_nothing_more(fhir, api, family, token_for):
    raw = token_for("rights:check")
    response = fhir(CER, raw, resources.eligibility(card(family)))
    body = answer(response)
    json_answer = api("/api/v1/rights/check", raw, card(family)).json()
    assert json_answer["outcome"] == "covered" and body["disposition"] == "covered"
    insurance = body["insurance"][0]
    assert insurance["inforce"] is True
    assert insurance["benefitPeriod"]["end"] == json_answer["valid_until"]
    assert insurance["coverage"] == {"reference": resources.COVERAGE}
    terms = json_answer["terms"]
    assert benefits(body) == {"tp-code": terms["tp_code"], "rate-percent": terms["rate_percent"]}
    assert insurance["item"][0]["authorizationRequired"] is terms["pec_required"]
    assert insurance["item"][0]["category"]["coding"][0]["code"] == "OPTI"
    assert body["servicedDate"] == json_answer["care_date"] == TODAY.isoformat()
    # The reference names this check's ledger row; the patient and the insurer are masked.
    reference = body["identifier"][0]["value"]
    assert body["identifier"][0]["system"] == systems.identifier_system("check-reference")
    row = Disclosure.objects.get(reference=reference)
    assert row.purpose == "rights_check" and row.outcome == "covered" and row.channel == "api"
    assert body["patient"] == body["insurer"] == systems.masked()
    text = response.content.decode()
    for secret in (family.parent_nir, "Testeur", "Paul", "Léa", family.parent_birth, "1985", family.amc,
                   family.adherent, resources.PATIENT, "PHAR", "CONF"):  # fmt: skip
        assert secret not in text, secret
    assert set(body) == {"resourceType", "identifier", "status", "purpose", "patient", "servicedDate", "created",
                         "request", "outcome", "disposition", "insurer", "insurance"}  # fmt: skip


@pytest.mark.parametrize(
    "who",
    ["child on the parent's card", "second twin by rank", "lunar birth date"],
)
def test_children_twins_and_lunar_dates(fhir, family, token_for, who):
    sent = {
        "child on the parent's card": card(family, birth_date=family.child_birth, birth_rank=1),
        "second twin by rank": card(family, birth_date=family.twin_birth, birth_rank=2),
        "lunar birth date": card(family, adherent_number="ADH-0002", nir=family.lunar_nir,
                                 birth_date=family.lunar_birth),
    }[who]  # fmt: skip
    bundle = resources.eligibility(sent)
    if who == "lunar birth date":
        assert bundle["entry"][1]["resource"]["birthDate"] == "1975"  # FHIR's partial date
    body = answer(fhir(CER, token_for("rights:check"), bundle))
    assert body["disposition"] == "covered" and body["insurance"][0]["inforce"] is True


def test_every_kind_of_miss_gives_the_same_answer(fhir, family, token_for):
    raw = token_for("rights:check")
    misses = [
        card(family, amc_number="999999999"),
        card(family, adherent_number="NOPE"),
        card(family, nir=nir("1850575123457")),
        card(family, birth_date="1985-12-05"),
        card(family, birth_date=family.twin_birth, birth_rank=3),
    ]
    bodies = []
    for sent in misses:
        body = answer(fhir(CER, raw, resources.eligibility(sent)))  # the request names the card's insurer
        assert Disclosure.objects.get(reference=body["identifier"][0]["value"]).outcome == "no_match"
        bodies.append({k: v for k, v in body.items() if k not in ("identifier", "created")})
    assert all(b == bodies[0] for b in bodies), bodies
    assert bodies[0]["outcome"] == "error" and bodies[0]["disposition"] == "no_match"
    assert bodies[0]["error"] == [{"code": {"coding": [systems.coding(systems.OUTCOMES, "no_match")]}}]
    assert "insurance" not in bodies[0]


def test_not_covered_says_so_and_nothing_else(fhir, family, token_for):
    body = answer(fhir(CER, token_for("rights:check"), resources.eligibility(
        card(family, adherent_number="ADH-0003", nir=nir("1600175123111"), birth_date="1960-01-01"))))  # fmt: skip
    assert body["disposition"] == "not_covered" and body["outcome"] == "complete"
    assert body["insurance"] == [{"coverage": {"reference": resources.COVERAGE}, "inforce": False}]


def test_a_care_date_in_the_past_is_the_serviced_date(fhir, family, token_for):
    import datetime as dt

    day = (TODAY - dt.timedelta(days=3)).isoformat()
    body = answer(fhir(CER, token_for("rights:check"), resources.eligibility(card(family, care_date=day))))
    assert body["servicedDate"] == day
    assert Disclosure.objects.get(reference=body["identifier"][0]["value"]).care_date.isoformat() == day


def test_a_bad_field_is_the_json_apis_message_at_the_fhir_element(fhir, family, token_for):
    raw = token_for("rights:check")
    response = fhir(CER, raw, resources.eligibility(card(family, nir="185057512345600")), lang="en")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/fhir+json")
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.identifier[0].value"]
    assert issue["details"]["text"] == "the NIR key does not match (check what was typed)"
    assert issue["details"]["coding"][0]["code"] == "invalid"
    assert "185057512345600" not in response.content.decode()
    assert not Disclosure.objects.exists()


def test_the_same_token_scopes_bearer_only(client, fhir, family, token_for, cast):
    bundle = resources.eligibility(card(family))
    missing = fhir(CER, None, bundle)
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == "Bearer"
    assert missing.json()["issue"][0]["details"]["coding"][0]["code"] == "unauthenticated"
    wrong = fhir(CER, token_for("pec:write"), bundle)
    assert (
        wrong.status_code == 403
        and wrong.json()["issue"][0]["details"]["coding"][0]["code"] == "scope_missing"
    )
    forged = fhir(CER, "rmp_abc_def", bundle)
    assert (
        forged.status_code == 401
        and forged.json()["issue"][0]["details"]["coding"][0]["code"] == "token_invalid"
    )
    # A logged-in session is no token.
    from rempart.testing import login

    login(client, cast.staff, cast.secrets[cast.staff.email])
    cookie_only = client.post(CER, data=json.dumps(bundle), content_type="application/fhir+json")
    assert cookie_only.status_code == 401
    assert not Disclosure.objects.exists()
