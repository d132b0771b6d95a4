"""POST /api/v1/claims end to end: identified through the gate, adjudicated, posted to the money ledger."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounts import tokens
from rempart.accounts.models import SecurityEvent
from rempart.authorizations.models import Pec
from rempart.authorizations.service import cancel_pec
from rempart.authorizations.tests.test_api import _adult
from rempart.claims.models import Claim, ClaimLine
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure

from .conftest import granted_pec


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


def post(client, raw, body):
    return client.post(
        "/api/v1/claims",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def invoice_for(row, pec: dict, number: str = "F2026-0001", **extra) -> dict:
    """The invoice of a delivered PEC: its lines, what the AMO paid (60 % of the BR) and the rest from the AMC."""
    today = timezone.localdate()
    lines = []
    for line in pec["lines"]:
        price = round(float(line["price_eur"]) * 100)
        base = round(float(line["base_eur"]) * 100)
        amo = round(float(line["amo_eur"]) * 100)
        lines.append(
            {
                "code_system": "LPP",
                "code": line["lpp_code"],
                "lpp_class": "A",
                "side": None,
                "quantity": 1,
                "unit_price_cents": price,
                "base_cents": base,
                "amo_paid_cents": amo,
                "amc_claimed_cents": price - amo,
            }
        )
    sides = [None, "right", "left"]
    for line, side in zip(lines, sides, strict=False):
        line["side"] = side
    body = {
        "invoice_number": number,
        "invoice_date": today.isoformat(),
        "care_date": today.isoformat(),
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": row[COL["nir"]],
        "birth_date": row[COL["birth_date"]],
        "birth_rank": None,
        "domain": "OPTI",
        "prescriber_rpps": "10001234565",  # Luhn-valid
        "pec_number": pec["number"],
        "lines": lines,
        "total_price_cents": sum(line["unit_price_cents"] for line in lines),
        "total_amo_cents": sum(line["amo_paid_cents"] for line in lines),
        "total_amc_cents": sum(line["amc_claimed_cents"] for line in lines),
    }
    body.update(extra)
    return body


def test_an_invoice_against_its_pec_is_accepted_consumes_it_and_is_owed(client, cast, token, delivered):
    row, pec = delivered
    body = invoice_for(row, pec)
    response = post(client, token, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["outcome"] == "adjudicated" and answer["status"] == "accepted", answer
    assert answer["accepted_cents"] == body["total_amc_cents"] == 6650
    assert [line["status"] for line in answer["lines"]] == ["accepted"] * 3
    for secret in (row[COL["nir"]], row[COL["last_name"]], row[COL["first_name"]]):
        assert secret not in response.content.decode()

    claim = Claim.objects.get()
    assert claim.beneficiary_id and claim.pec.number == pec["number"] and claim.channel == "api"
    assert Pec.objects.get(number=pec["number"]).consumed_at is not None
    row_written = Disclosure.objects.get(reference=answer["reference"])
    assert (row_written.purpose, row_written.outcome, row_written.beneficiary_id) == (
        "claim",
        "covered",
        claim.beneficiary_id,
    )
    assert row_written.fields == ["identity_confirmed", "coverage:OPTI", "claim_amounts:OPTI"]
    # Owed: the insurer to the operator, the operator to the shop.
    assert accounting.balance(accounting.insurer_receivable(claim.insurer_id)) == 6650
    assert accounting.balance(accounting.professional_payable(cast.optician.pk)) == -6650
    call_command("accounts", "check")
    # A consumed PEC can no longer be cancelled.
    assert not cancel_pec(Pec.objects.get(number=pec["number"]), cast.optician.pk)


def test_the_same_invoice_replays_and_another_body_with_its_number_is_a_conflict(client, token, delivered):
    row, pec = delivered
    body = invoice_for(row, pec)
    first = post(client, token, body).json()
    again = post(client, token, body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["reference"] == first["reference"] and Claim.objects.count() == 1
    changed = dict(body, care_date=(timezone.localdate() - dt.timedelta(days=1)).isoformat())
    conflict = post(client, token, changed)
    assert conflict.status_code == 409 and Claim.objects.count() == 1
    # The money was posted once.
    claim = Claim.objects.get()
    assert accounting.balance(accounting.insurer_receivable(claim.insurer_id)) == 6650


def test_a_second_invoice_for_a_consumed_pec_is_rejected_and_owes_nothing(client, token, delivered):
    row, pec = delivered
    assert post(client, token, invoice_for(row, pec)).json()["status"] == "accepted"
    second = post(client, token, invoice_for(row, pec, number="F2026-0002")).json()
    assert second["status"] == "rejected" and second["accepted_cents"] == 0
    codes = {reason["code"] for line in second["lines"] for reason in line["reasons"]}
    assert codes and all("pec" in code for code in codes), codes
    claim = Claim.objects.get(invoice_number="F2026-0002")
    assert accounting.balance(accounting.insurer_receivable(claim.insurer_id)) == 6650


def test_no_match_is_uniform_recorded_and_stores_no_claim(client, token, delivered, population):
    row, pec = delivered
    stranger = next(r for r in population.people[population.insurers[1].pk] if r[COL["nir"]])
    body = invoice_for(row, pec, nir=stranger[COL["nir"]])
    response = post(client, token, body)
    assert response.status_code == 200
    assert response.json() == {
        "outcome": "no_match",
        "reference": response.json()["reference"],
        "invoice_number": "F2026-0001",
        "status": None,
        "claimed_cents": None,
        "accepted_cents": None,
        "lines": [],
        "review_reasons": [],
        "replayed": False,
    }
    assert not Claim.objects.exists()
    written = Disclosure.objects.get(reference=response.json()["reference"])
    assert (written.purpose, written.outcome, written.beneficiary_id) == ("claim", "no_match", None)


@pytest.mark.parametrize(
    "change",
    [
        {"total_amc_cents": 1},
        {"care_date": "2999-01-01"},
        {"invoice_date": "2000-01-01"},
        {"prescriber_rpps": "12345678901"},
        {"pec_number": None},
    ],
    ids=["totals", "future care", "invoice before care", "bad RPPS", "no PEC number"],
)
def test_a_bad_invoice_gets_the_same_400_whatever_the_card_and_reads_nothing(
    client, token, delivered, population, change
):
    row, pec = delivered
    stranger = next(r for r in population.people[population.insurers[1].pk] if r[COL["nir"]])
    before = Disclosure.objects.count()
    matched = post(client, token, invoice_for(row, pec, **change))
    missed = post(client, token, invoice_for(row, pec, nir=stranger[COL["nir"]], **change))
    assert matched.status_code == missed.status_code == 400, matched.content
    assert matched.json() == missed.json() and matched.json()["errors"]
    assert Disclosure.objects.count() == before and not Claim.objects.exists()


def test_money_cannot_be_a_float_or_a_string(client, token, delivered):
    row, pec = delivered
    body = invoice_for(row, pec)
    body["lines"][0]["unit_price_cents"] = 30.0
    assert post(client, token, body).status_code == 400
    body["lines"][0]["unit_price_cents"] = "3000"
    assert post(client, token, body).status_code == 400
    assert not Claim.objects.exists()


def test_a_claim_is_read_back_by_its_organisation_only(client, cast, token, delivered):
    row, pec = delivered
    post(client, token, invoice_for(row, pec))
    own = client.get("/api/v1/claims/F2026-0001", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert own.status_code == 200 and own.json()["status"] == "accepted"
    other = tokens.create_token(cast.other_shop, "LGO voisin", ["claims:write"], cast.outsider)[1]
    assert client.get("/api/v1/claims/F2026-0001", HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 404
    assert client.get("/api/v1/claims/F2026-9999", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404
    rights_only = tokens.create_token(cast.optician, "LGO droits", ["rights:check"], cast.owner)[1]
    assert (
        client.get("/api/v1/claims/F2026-0001", HTTP_AUTHORIZATION=f"Bearer {rights_only}").status_code == 403
    )


def test_a_domain_the_shop_does_not_practise_is_refused_and_recorded(client, token, delivered):
    row, pec = delivered
    body = invoice_for(row, pec, domain="PHAR", pec_number=None)
    response = post(client, token, body)
    assert response.status_code == 403 and response.json()["code"] == "domain_not_allowed"
    assert Disclosure.objects.get(reference=response.json()["reference"]).outcome == "refused"


@pytest.mark.django_db(transaction=True)
def test_two_invoices_racing_for_one_pec_exactly_one_wins(client_class, cast, population, token):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers on the whole database: nothing races")
    client = client_class()
    row = _adult(population)
    pec = granted_pec(client, token, row)
    Pec.objects.filter(number=pec["number"]).update(delivery_date=timezone.localdate())
    barrier = threading.Barrier(4)
    answers = []

    def send(n: int) -> None:
        try:
            barrier.wait()
            answers.append(post(client_class(), token, invoice_for(row, pec, number=f"RACE-{n}")).json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer["status"] for answer in answers)
    assert statuses == ["accepted", "rejected", "rejected", "rejected"], answers
    claim = Claim.objects.get(status="accepted")
    assert accounting.balance(accounting.insurer_receivable(claim.insurer_id)) == 6650
    assert ClaimLine.objects.filter(status="accepted").count() == 3


def test_a_credit_note_gives_back_part_of_an_accepted_claim(client, cast, token, delivered):
    row, pec = delivered
    post(client, token, invoice_for(row, pec))
    claim = Claim.objects.get()
    url = "/api/v1/claims/F2026-0001/credit-notes"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    body = {"credit_note_number": "AV-1", "amount_cents": 1000, "reason": "verre rendu"}
    first = client.post(url, data=json.dumps(body), content_type="application/json", **auth)
    assert first.status_code == 200 and first.json()["claim_worth_cents"] == 5650, first.content
    again = client.post(url, data=json.dumps(body), content_type="application/json", **auth)
    assert again.status_code == 200  # replayed: posted once
    assert accounting.balance(accounting.professional_payable(cast.optician.pk)) == -5650
    reused = dict(body, amount_cents=5)
    assert (
        client.post(url, data=json.dumps(reused), content_type="application/json", **auth).status_code == 400
    )
    too_much = {"credit_note_number": "AV-2", "amount_cents": 5651, "reason": "erreur"}
    assert (
        client.post(url, data=json.dumps(too_much), content_type="application/json", **auth).status_code
        == 400
    )
    other = tokens.create_token(cast.other_shop, "LGO voisin", ["claims:write"], cast.outsider)[1]
    stranger = {"HTTP_AUTHORIZATION": f"Bearer {other}"}
    assert (
        client.post(url, data=json.dumps(body), content_type="application/json", **stranger).status_code
        == 404
    )
    assert accounting.balance(accounting.insurer_receivable(claim.insurer_id)) == 5650
    assert SecurityEvent.objects.filter(tag="claim.credited", organisation=cast.optician).count() == 1
    call_command("accounts", "check")
