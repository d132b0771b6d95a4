"""The portal page and the API: same answers, clear 4xx for bad input, nothing personal in any response or log."""

import json
import logging

import pytest

from rempart.accounts import tokens
from rempart.accounts.models import Organisation
from rempart.ledger.models import Disclosure
from rempart.testing import login

from .conftest import nir


@pytest.fixture
def token(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]


def post(client, raw, body, **extra):
    return client.post(
        "/api/v1/rights/check",
        data=body if isinstance(body, (str, bytes)) else json.dumps(body),
        content_type=extra.pop("content_type", "application/json"),
        HTTP_AUTHORIZATION=f"Bearer {raw}",
        **extra,
    )


def body(family, **extra):
    return {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
            "birth_date": family.parent_birth, "domain": "OPTI", **extra}  # fmt: skip


def test_api_covered_answer_discloses_nothing_more(client, cast, family, token, caplog):
    caplog.set_level(logging.DEBUG)
    response = post(client, token, body(family), REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 200
    answer = response.json()
    assert answer["outcome"] == "covered" and answer["terms"]["tp_code"] == "PEC"
    assert set(answer) == {
        "outcome",
        "reference",
        "checked_at",
        "domain",
        "care_date",
        "terms",
        "valid_until",
    }
    text = response.content.decode() + caplog.text
    for secret in (family.parent_nir, "Testeur", "Paul", "Léa", family.parent_birth, "CONF", "PHAR"):
        assert secret not in text
    row = Disclosure.objects.get(reference=answer["reference"])
    assert (
        row.channel == "api"
        and row.token_id is not None
        and row.user_id is None
        and row.ip_address == "198.51.100.4"
    )


def test_api_no_match_is_uniform(client, cast, family, token):
    answers = [
        post(client, token, body(family, amc_number="999999999")).json(),
        post(client, token, body(family, adherent_number="NOPE")).json(),
        post(client, token, body(family, nir=nir("1850575123457"))).json(),
    ]
    shapes = [{k: v for k, v in a.items() if k not in ("reference", "checked_at")} for a in answers]
    assert shapes[0] == shapes[1] == shapes[2] and shapes[0]["outcome"] == "no_match"


@pytest.mark.parametrize(
    "payload, content_type, status, field",
    [
        ("{not json", "application/json", 400, None),
        ({"amc_number": "1"}, "application/json", 400, "adherent_number"),
        (
            {"amc_number": 123456789, "adherent_number": [], "nir": 1, "birth_date": 2, "domain": 3},
            "application/json",
            400,
            None,
        ),
        ("amc_number=1", "application/x-www-form-urlencoded", 415, None),
    ],
    ids=["malformed-json", "missing-fields", "wrong-types", "wrong-content-type"],
)
def test_api_bad_requests_are_clear_4xx(client, cast, family, token, payload, content_type, status, field):
    response = post(client, token, payload, content_type=content_type)
    assert response.status_code == status
    assert "detail" in response.json()
    if field:
        assert response.json()["field"] == field
    assert not Disclosure.objects.exists()


def test_api_validation_errors_say_which_field(client, cast, family, token):
    response = post(client, token, body(family, nir="185057512345600"))
    assert (
        response.status_code == 400
        and response.json()["field"] == "nir"
        and "clé" in response.json()["detail"]
    )
    assert "185057512345600" not in response.content.decode()


def test_api_needs_a_json_content_type_even_for_a_json_body(client, cast, family, token):
    response = post(client, token, json.dumps(body(family)), content_type="text/plain")
    assert response.status_code == 415 and not Disclosure.objects.exists()


def test_api_example_nir_is_valid(client, db):
    from stdnum.fr import nir as stdnum_nir

    schema = client.get("/api/v1/openapi.json").json()
    example = schema["components"]["schemas"]["RightsCheckIn"]["properties"]["nir"]["examples"][0]
    assert stdnum_nir.is_valid(example)


def test_api_refuses_oversize_bodies(client, cast, family, token):
    response = post(client, token, json.dumps({**body(family), "padding": "x" * 20000}))
    assert response.status_code == 413


def test_api_needs_the_rights_check_scope(client, cast, family):
    _token, raw = tokens.create_token(cast.optician, "Autre", ["rights:check"], cast.owner)
    from rempart.accounts.models import ApiToken

    ApiToken.objects.filter(prefix=raw.split("_")[1]).update(scopes=["pec:write"])
    assert post(client, raw, body(family)).status_code == 403
    assert not Disclosure.objects.exists()


def test_api_refuses_a_suspended_organisation(client, cast, family, token):
    Organisation.objects.filter(pk=cast.optician.pk).update(status="suspended")
    assert post(client, token, body(family)).status_code == 403


def test_api_documents_the_endpoint_with_examples(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/rights/check"]["post"]
    assert operation["security"] and "requestBody" in operation
    assert "batch" not in json.dumps(schema["paths"]).lower()


def form(family, **extra):
    return {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
            "birth_date": "12/05/1985", "domain": "OPTI", "care_date": "", "birth_rank": "", **extra}  # fmt: skip


def test_portal_check_shows_a_colour_coded_answer_and_a_reference(client, cast, family):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    page = client.post("/comptoir/droits/", form(family))
    html = page.content.decode()
    assert page.status_code == 200 and "answer-covered" in html and 'id="check-reference"' in html
    for secret in (family.parent_nir, "1 85 05 75", "Testeur", "Paul"):
        assert secret not in html
    row = Disclosure.objects.get()
    assert row.channel == "portal" and row.user_id == cast.staff.pk and row.reference in html


def test_portal_validation_errors_name_the_field_and_do_not_echo_the_nir(client, cast, family):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    page = client.post("/comptoir/droits/", form(family, nir="185057512345600"))
    assert page.status_code == 400 and "clé du NIR" in page.content.decode()
    assert "185057512345600" not in page.content.decode()
    assert not Disclosure.objects.exists()


def test_portal_history_shows_checks_without_identity_and_only_for_the_organisation(client, cast, family):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    client.post("/comptoir/droits/", form(family))
    history = client.get("/comptoir/historique/").content.decode()
    reference = Disclosure.objects.get().reference
    assert reference in history and cast.staff.email in history and "Testeur" not in history
    client.post("/accounts/logout/")
    login(client, cast.outsider, cast.secrets[cast.outsider.email])
    assert reference not in client.get("/comptoir/historique/").content.decode()


@pytest.mark.parametrize("who", ["insurer_member", "analyst"])
def test_only_professionals_reach_the_counter(client, cast, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    assert client.get("/comptoir/droits/").status_code == 404
    assert client.get("/comptoir/historique/").status_code == 404


def test_the_api_offers_no_search_listing_or_export(client, db):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    operations = {(path, method) for path, methods in paths.items() for method in methods}
    # One patient at a time: a check, a prise en charge for one quote, and the token's own identity; for insurers'
    # tokens only, the ledger's signed anchors (chain heads: no personal data). Invoices: one, or a lot the
    # practice software sends (each identified like a check), and the organisation's own claims read back by
    # their invoice number or lot number — never a listing of people.
    assert operations == {
        ("/api/v1/whoami", "get"),
        ("/api/v1/rights/check", "post"),
        ("/api/v1/pec", "post"),
        ("/api/v1/ledger/anchors", "get"),
        ("/api/v1/claims", "post"),
        ("/api/v1/claims/{invoice_number}", "get"),
        ("/api/v1/claims/lots", "post"),
        ("/api/v1/claims/lots/{lot_number}/results.csv", "get"),
        ("/api/v1/claims/lots/{lot_number}/results", "get"),
        ("/api/v1/claims/lots/jobs/{job_id}", "get"),  # the state of a large lot being adjudicated (its own)
        ("/api/v1/claims/{invoice_number}/credit-notes", "post"),
        # The organisation's own payments and their statements (invoice numbers and amounts, masked IBAN): a
        # listing of its own money, never of people.
        ("/api/v1/payments", "get"),
        ("/api/v1/payments/{reference}", "get"),
        ("/api/v1/payments/{reference}/statement.pdf", "get"),
        ("/api/v1/payments/{reference}/statement.csv", "get"),
        # Insurers' tokens only (billing:read): the operator's statements to the insurer and their detail
        # files — the insurer's own adherent numbers for money paid on its behalf, each download in the ledger.
        ("/api/v1/insurer/statements", "get"),
        ("/api/v1/insurer/statements/{number}", "get"),
        ("/api/v1/insurer/statements/{number}/detail", "get"),
        ("/api/v1/insurer/statements/{number}/pdf", "get"),  # its PDF (totals only), French or English
    }
