"""POST /api/v1/pec end to end: identification through the gate, a decision, nothing more disclosed."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from rempart.accounts import tokens
from rempart.authorizations.models import Pec
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


@pytest.fixture
def token(cast):
    return tokens.create_token(cast.optician, "LGO optique", ["pec:write"], cast.owner)[1]


def _adult(population):
    rows = population.people[population.insurers[0].pk]
    today = timezone.localdate()
    for row in rows:
        born = dt.date.fromisoformat(row[COL["birth_date"]].replace("-00", "-01"))
        if row[COL["nir"]] and (today - born).days > 30 * 365 and row[COL["contract_status"]] == "active":
            return row
    raise AssertionError("no adult")


def _body(row, **extra):
    today = timezone.localdate()
    body = {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": row[COL["nir"]],
        "birth_date": row[COL["birth_date"]],
        "domain": "OPTI",
        "delivery_date": (today + dt.timedelta(days=7)).isoformat(),
        "prescription": {
            "date": (today - dt.timedelta(days=20)).isoformat(),
            "prescriber_id": "10001234567",
            "right": {"sphere": "-1.25"},
            "left": {"sphere": "-1.00"},
        },
        "lines": [
            {"lpp_code": "2290100", "class": "A", "quantity": 1, "unit_price_eur": "30.00"},
            {"lpp_code": "2290200", "class": "A", "side": "right", "quantity": 1, "unit_price_eur": "32.50"},
            {"lpp_code": "2290200", "class": "A", "side": "left", "quantity": 1, "unit_price_eur": "32.50"},
        ],
    }
    body.update(extra)
    return body


def _post(client, raw, body, **headers):
    return client.post("/api/v1/pec", data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {raw}", **headers)  # fmt: skip


def test_class_a_glasses_are_accepted_and_nothing_more_is_disclosed(client, cast, population, token):
    row = _adult(population)
    response = _post(client, token, _body(row))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["outcome"] == "decided" and answer["status"] == "accepted"
    assert answer["number"].startswith("PEC-") and answer["totals"]["price_eur"] == "95.00"
    text = response.content.decode()
    for secret in (row[COL["nir"]], row[COL["last_name"]], row[COL["first_name"]], row[COL["birth_date"]]):
        assert secret not in text
    pec = Pec.objects.get(number=answer["number"])
    assert pec.beneficiary_id and pec.rule_version and len(pec.data_version) == 64
    ledger = Disclosure.objects.get(reference=answer["reference"])
    assert ledger.purpose == "pec" and ledger.beneficiary_id == pec.beneficiary_id and ledger.token_id


def test_idempotency_key_replays_and_refuses_a_different_request(client, cast, population, token):
    row = _adult(population)
    first = _post(client, token, _body(row), HTTP_IDEMPOTENCY_KEY="devis-42").json()
    again = _post(client, token, _body(row), HTTP_IDEMPOTENCY_KEY="devis-42").json()
    assert again["number"] == first["number"] and again["replayed"] is True
    assert Pec.objects.count() == 1
    other = _body(row)
    other["lines"] = other["lines"][:1]
    assert _post(client, token, other, HTTP_IDEMPOTENCY_KEY="devis-42").status_code == 409


def test_an_early_renewal_is_refused_with_the_previous_date(client, cast, population, token):
    row = _adult(population)
    assert _post(client, token, _body(row)).json()["status"] == "accepted"
    second = _post(client, token, _body(row)).json()
    assert second["status"] == "refused"
    assert any(line["previous_delivery"] for line in second["lines"])
    assert "renewal_too_early" in second["lines"][1]["reasons"]


def test_bad_lines_are_400_with_the_line_and_nothing_is_stored(client, cast, population, token):
    row = _adult(population)
    bad = _body(row)
    bad["lines"][1]["unit_price_eur"] = "99.00"  # above the class A price limit
    response = _post(client, token, bad)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors and errors[0]["line"] == 2
    assert not Pec.objects.exists() and not Disclosure.objects.filter(purpose="pec").exists()
    unknown = _body(row)
    unknown["lines"][0]["lpp_code"] = "9999999"
    assert _post(client, token, unknown).status_code == 400
    past = _body(row, delivery_date=(timezone.localdate() - dt.timedelta(days=3)).isoformat())
    assert _post(client, token, past).status_code == 400
    wrong_sphere = _body(row)
    wrong_sphere["prescription"]["right"] = {"sphere": "-45"}
    response = _post(client, token, wrong_sphere)
    assert response.status_code == 400 and response.json()["field"].startswith("prescription.right")


def test_no_match_is_uniform_and_needs_the_scope(client, cast, population, token):
    row = list(_adult(population))
    row[COL["adherent_number"]] = "NOPE-1"
    answer = _post(client, token, _body(row)).json()
    assert answer["outcome"] == "no_match" and answer["number"] is None
    rights_only = tokens.create_token(cast.optician, "autre", ["rights:check"], cast.owner)[1]
    assert _post(client, rights_only, _body(_adult(population))).status_code == 403


def test_only_an_organisation_of_the_domain_may_ask(client, cast, population, token):
    body = _body(_adult(population), domain="AUDI")
    body["prescription"].pop("right"), body["prescription"].pop("left")
    before = Disclosure.objects.count()
    response = _post(client, token, body)
    assert response.status_code == 403 and "AUDI" in response.json()["detail"]
    assert response.json()["code"] == "domain_not_allowed"
    row = Disclosure.objects.get(reference=response.json()["reference"])
    assert Disclosure.objects.count() == before + 1
    assert (row.purpose, row.outcome, row.beneficiary_id, row.domain) == ("pec", "refused", None, "AUDI")


@pytest.fixture
def audio_token(cast):
    professional = cast.optician.professional
    professional.domains = ["OPTI", "AUDI"]
    professional.save(update_fields=["domains"])
    return tokens.create_token(cast.optician, "LGO audio", ["pec:write"], cast.owner)[1]


def test_hearing_aids_class_one_and_two_over_the_ear_ceiling(client, cast, population, audio_token):
    row = _adult(population)
    body = _body(row, domain="AUDI")
    body["prescription"] = {"date": body["prescription"]["date"], "prescriber_id": "10001234567"}
    body["lines"] = [
        {"lpp_code": "2390100", "class": "I", "side": "right", "quantity": 1, "unit_price_eur": "950.00"},
        {"lpp_code": "2390110", "class": "II", "side": "left", "quantity": 1, "unit_price_eur": "2500.00"},
    ]
    response = _post(client, audio_token, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    right, left = answer["lines"]
    assert right["patient_eur"] == "0.00"  # class I, responsible contract: nothing left to pay
    assert float(left["amo_eur"]) + float(left["amc_eur"]) <= 1700.0  # the per-ear cap, AMO included
    assert float(left["patient_eur"]) > 0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["lines"].append(
            {"lpp_code": "2290200", "class": "A", "side": "right", "quantity": 1, "unit_price_eur": "32.50"}
        ),
        lambda b: b["lines"][1].update({"class": "B"}),
        lambda b: b["lines"][1].update({"side": None}),
        lambda b: b["prescription"].update({"date": "2015-01-01"}),
        lambda b: b["prescription"].update({"prescriber_id": "12"}),
        lambda b: b.update({"lines": []}),
        lambda b: b["lines"][0].update({"unit_price_eur": "-3"}),
        lambda b: b["lines"][0].update({"quantity": "lots"}),
    ],
)
def test_bad_quotes_are_clear_400s_never_500s(client, cast, population, token, mutate):
    body = _body(_adult(population))
    mutate(body)
    response = _post(client, token, body)
    assert response.status_code == 400, response.content
    assert response.json()["detail"] and not Pec.objects.exists()
