"""No oracle at any entry point: a matching and a non-matching card get identical answers, or the match is recorded.

A hijacked account must not be able to learn whether a card matches from an answer that has no ledger
row: a bad quote that answered 400 on a match and ``no_match`` on a miss, unrecorded, did exactly that.
For every entry point of the gate and every kind of request (good, and bad in each way we know), the
same request is sent with a card that matches and with one that differs only by its NIR (which no page
echoes). Either the two answers are identical once references, times and CSRF tokens are blanked out,
or the matching request wrote its ledger row naming the beneficiary.

Adding an entry point: list its module in ``ENTRY_MODULES`` (test_every_caller_of_the_gate_is_listed
fails otherwise) and its channels and bad requests below.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.utils import timezone

from rempart.accounts import tokens
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure
from rempart.testing import login

from .test_layers import import_graph

# Every module outside the gate that calls it, and the entry points (below) that cover it.
ENTRY_MODULES = {
    "rempart.rights.api": ["api:rights"],
    "rempart.rights.views": ["portal:rights"],
    "rempart.rights.bare_lookup": [],  # benchmark only: answers nothing of the card (docs/benchmarks.md)
    "rempart.authorizations.service": ["api:pec", "portal:pec"],
    "rempart.authorizations.api": ["api:pec"],
    "rempart.authorizations.views": ["portal:pec"],
    "rempart.api": [],  # renders the gate's refusals
    "rempart.claims.service": ["api:claim", "api:lot", "portal:claim"],
    "rempart.claims.views": ["portal:claim"],
    "rempart.claims.api": ["api:claim", "api:lot"],
    "rempart.claims.lots": ["api:lot"],
    "rempart.claims.batch": ["api:lot"],  # the lots chunk by chunk
    "rempart.claims.jobs": ["api:lot"],  # a large lot, adjudicated by a worker through the same lots module
    "rempart.claims.management.commands.import_claims": ["api:lot"],  # the same lots module
    # Insurer billing (purpose "billing"): no card is presented; the detail file names the beneficiaries of the
    # claims a statement bills, chosen by the statement, never by the reader, and each is recorded at production.
    "rempart.billing.detail": [],
    # FHIR R4 (rempart/fhir): the same services as the JSON API, the standard way.
    "rempart.fhir.eligibility": ["fhir:rights"],
    "rempart.fhir.preauth": ["fhir:pec"],
    "rempart.fhir.invoice": ["fhir:claim"],
    "rempart.fhir.views": [],  # renders the gate's refusals
}


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    """Surveillance would step the script up part-way; its own tests cover it. Switches still apply."""
    settings.REMPART_SURVEILLANCE_ENABLED = False


def _adult(population) -> list[str]:
    today = timezone.localdate()
    for row in population.people[population.insurers[0].pk]:
        born = dt.date.fromisoformat(row[COL["birth_date"]].replace("-00", "-01"))
        if row[COL["nir"]] and (today - born).days > 30 * 365 and row[COL["contract_status"]] == "active":
            return row
    raise AssertionError("no adult in the population")


def _stranger_nir(population, row: list[str]) -> str:
    """A valid NIR of somebody in another insurer: the card then differs from the match by its NIR only."""
    for other in population.people[population.insurers[1].pk]:
        if other[COL["nir"]] and other[COL["nir"]] != row[COL["nir"]]:
            return other[COL["nir"]]
    raise AssertionError("no other NIR")


_BLANKS = [
    re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"'),
    re.compile(r"\b[A-Z]{2}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}\b"),  # ledger references
    re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.+\-Z]+"),  # times in JSON
    re.compile(r"F-(?:ORACLE|LOT)-\d+|LOT-ORACLE-\d+"),  # invoice and lot numbers (new for each request)
]


def _signature(response) -> tuple[int, str]:
    body = response.content.decode()
    if response.get("Content-Type", "").startswith("application/json"):
        data = json.loads(body)
        for volatile in ("reference", "checked_at"):
            data.pop(volatile, None) if isinstance(data, dict) else None
        body = json.dumps(data, sort_keys=True)
    for pattern in _BLANKS:
        body = pattern.sub("…", body)
    return response.status_code, body


# --- The entry points: each sends one request for a row, with the NIR given.


def _api_rights(ctx, row, nir, variant):
    body = {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": nir,
        "birth_date": row[COL["birth_date"]],
        "domain": "OPTI",
        **variant,
    }
    return ctx.client.post(
        "/api/v1/rights/check",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ctx.token}",
    )


def _portal_rights(ctx, row, nir, variant):
    born = row[COL["birth_date"]]
    data = {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": nir,
        "birth_date": f"{born[8:10]}/{born[5:7]}/{born[0:4]}",
        "birth_rank": "",
        "domain": "OPTI",
        "care_date": "",
        **variant,
    }
    return ctx.shop.post("/comptoir/droits/", data)


def _pec_body(row, nir):
    today = timezone.localdate()
    return {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": nir,
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


def _api_pec(ctx, row, nir, variant: Callable[[dict], None]):
    body = _pec_body(row, nir)
    variant(body)
    return ctx.client.post(
        "/api/v1/pec",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ctx.pec_token}",
    )


def _fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _portal_pec(ctx, row, nir, variant: dict):
    today = timezone.localdate()
    born = row[COL["birth_date"]]
    data = {
        "amc_number": row[COL["amc_number"]], "adherent_number": row[COL["adherent_number"]], "nir": nir,
        "birth_date": f"{born[8:10]}/{born[5:7]}/{born[0:4]}", "birth_rank": "1", "domain": "OPTI",
        "delivery_date": _fr(today + dt.timedelta(days=5)), "prescription_date": _fr(today - dt.timedelta(days=10)),
        "prescriber_id": "10001234567", "right_sphere": "-1,25", "left_sphere": "-1,00",
        "line1_code": "2290100", "line1_class": "A", "line1_side": "", "line1_quantity": "1", "line1_price": "30,00",
        "line2_code": "2290200", "line2_class": "A", "line2_side": "right", "line2_quantity": "1", "line2_price": "32,50",
        "line3_code": "2290200", "line3_class": "A", "line3_side": "left", "line3_quantity": "1", "line3_price": "32,50",
        **variant,
    }  # fmt: skip
    return ctx.shop.post("/comptoir/prise-en-charge/", data)


def _set_line(index: int, **values):
    def change(body: dict) -> None:
        body["lines"][index].update(values)

    return change


def _set(path: str, value):
    def change(body: dict) -> None:
        target = body
        *parents, last = path.split(".")
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _unchanged(body: dict) -> None:
    return None


def _claim_body(row, nir, change: Callable[[dict], None]) -> dict:
    today = timezone.localdate()
    body = {
        "invoice_number": "F-ORACLE-1", "invoice_date": today.isoformat(), "care_date": today.isoformat(),
        "amc_number": row[COL["amc_number"]], "adherent_number": row[COL["adherent_number"]], "nir": nir,
        "birth_date": row[COL["birth_date"]], "birth_rank": None, "domain": "OPTI",
        "prescriber_rpps": "10001234565", "pec_number": "PEC-ABCD-EFGH",
        "lines": [{"code_system": "LPP", "code": "2290100", "lpp_class": "A", "side": None, "quantity": 1,
                   "unit_price_cents": 3000, "base_cents": 1500, "amo_paid_cents": 900, "amc_claimed_cents": 2100}],
        "total_price_cents": 3000, "total_amo_cents": 900, "total_amc_cents": 2100,
    }  # fmt: skip
    change(body)
    return body


def _api_claim(ctx, row, nir, variant: Callable[[dict], None]):
    # A fresh invoice number each time: the same number with another body would be a 409 by design.
    ctx.sent += 1
    body = _claim_body(row, nir, variant)
    body["invoice_number"] = f"F-ORACLE-{ctx.sent}"
    return ctx.client.post(
        "/api/v1/claims",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ctx.claims_token}",
    )


def _api_lot(ctx, row, nir, variant: Callable[[dict], None]):
    from rempart.claims.lot_format import write_lot

    ctx.sent += 1
    body = _claim_body(row, nir, variant)
    body["invoice_number"] = f"F-LOT-{ctx.sent}"
    lot = write_lot([body], {"finess": ctx.finess, "lot_number": f"LOT-ORACLE-{ctx.sent}"})
    response = ctx.client.post(
        "/api/v1/claims/lots", data=lot, content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {ctx.claims_token}",
    )  # fmt: skip
    if response.status_code == 200:  # what the sender reads: the lot's counts and its per-invoice results
        results = ctx.client.get(
            response.json()["results_url"], HTTP_AUTHORIZATION=f"Bearer {ctx.claims_token}"
        )
        text = re.sub(r"F-LOT-\d+|LOT-ORACLE-\d+", "…", results.content.decode())
        response.content = json.dumps({"lot": response.json()["counts"], "results": text}).encode()
    return response


def _portal_claim(ctx, row, nir, variant: dict):
    """« Facturer cette prise en charge » for the PEC granted to ``row`` (made before the case's requests)."""
    from rempart.authorizations.models import Pec
    from rempart.claims.portal import pec_invoice_lines

    ctx.sent += 1
    today = timezone.localdate()
    born = row[COL["birth_date"]]
    data = {
        "amc_number": row[COL["amc_number"]], "adherent_number": row[COL["adherent_number"]], "nir": nir,
        "birth_date": f"{born[8:10]}/{born[5:7]}/{born[0:4]}", "birth_rank": "",
        "invoice_number": f"F-ORACLE-{ctx.sent}", "invoice_date": _fr(today), "care_date": _fr(today),
        "prescriber_rpps": "10001234565",
    }  # fmt: skip
    for n, line in enumerate(pec_invoice_lines(Pec.objects.get(number=ctx.pec_number)), start=1):
        data[f"line{n}_amo_paid"] = f"{line['amo_cents'] // 100},{line['amo_cents'] % 100:02d}"
        data[f"line{n}_amc_claimed"] = f"{line['amc_cents'] // 100},{line['amc_cents'] % 100:02d}"
    data.update(variant)
    return ctx.shop.post(f"/comptoir/prises-en-charge/{ctx.pec_number}/facturer/", data)


def _fhir_rights(ctx, row, nir, variant):
    from rempart.fhir.tests import resources

    body = {"amc_number": row[COL["amc_number"]], "adherent_number": row[COL["adherent_number"]], "nir": nir,
            "birth_date": row[COL["birth_date"]], "domain": "OPTI", **variant}  # fmt: skip
    return ctx.client.post("/fhir/r4/CoverageEligibilityRequest/$submit", data=json.dumps(resources.eligibility(body)),
                           content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {ctx.token}")  # fmt: skip


def _fhir_pec(ctx, row, nir, variant: Callable[[dict], None]):
    from rempart.fhir.tests import resources

    body = _pec_body(row, nir)
    variant(body)
    return ctx.client.post("/fhir/r4/Claim/$submit", data=json.dumps(resources.preauthorization(body)),
                           content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {ctx.pec_token}")  # fmt: skip


def _fhir_claim(ctx, row, nir, variant: Callable[[dict], None]):
    from rempart.fhir.tests import resources

    ctx.sent += 1
    body = _claim_body(row, nir, variant)
    body["invoice_number"] = f"F-ORACLE-{ctx.sent}"
    return ctx.client.post("/fhir/r4/Claim/$submit", data=json.dumps(resources.invoice(body)),
                           content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {ctx.claims_token}")  # fmt: skip


@dataclass(frozen=True)
class Case:
    entry: str
    name: str
    send: Callable
    variant: object


CASES = [
    Case("api:rights", "good", _api_rights, {}),
    Case("api:rights", "foreign domain", _api_rights, {"domain": "PHAR"}),
    Case("api:rights", "future care date", _api_rights, {"care_date": "2999-01-01"}),
    Case("api:rights", "unknown domain", _api_rights, {"domain": "XXXX"}),
    Case("api:rights", "bad birth rank", _api_rights, {"birth_rank": 12}),
    Case("portal:rights", "good", _portal_rights, {}),
    Case("portal:rights", "foreign domain", _portal_rights, {"domain": "PHAR"}),
    Case("portal:rights", "impossible date", _portal_rights, {"care_date": "31/02/2026"}),
    Case("api:pec", "good", _api_pec, _unchanged),
    Case("api:pec", "unknown LPP code", _api_pec, _set_line(0, lpp_code="9999999")),
    Case("api:pec", "class mismatch", _api_pec, _set_line(0, **{"class": "B"})),
    Case("api:pec", "price above the limit", _api_pec, _set_line(1, unit_price_eur="900.00")),
    Case("api:pec", "lens without side", _api_pec, _set_line(1, side=None)),
    Case("api:pec", "delivery in the past", _api_pec, _set("delivery_date", "2020-01-01")),
    Case("api:pec", "bad prescriber", _api_pec, _set("prescription.prescriber_id", "12")),
    Case("api:pec", "a child's frame for an adult", _api_pec, _set_line(0, lpp_code="2290101")),
    Case("api:pec", "foreign domain", _api_pec, _set("domain", "AUDI")),
    Case("portal:pec", "good", _portal_pec, {}),
    Case("portal:pec", "unknown LPP code", _portal_pec, {"line1_code": "9999999"}),
    Case("portal:pec", "class mismatch", _portal_pec, {"line1_class": "B"}),
    Case("portal:pec", "a child's frame for an adult", _portal_pec, {"line1_code": "2290101"}),
    Case("api:claim", "unknown PEC", _api_claim, _unchanged),
    Case("api:claim", "totals that do not add up", _api_claim, _set("total_amc_cents", 1)),
    Case("api:claim", "bad RPPS", _api_claim, _set("prescriber_rpps", "12345678901")),
    Case("api:claim", "future care date", _api_claim, _set("care_date", "2999-01-01")),
    Case("api:claim", "foreign domain", _api_claim, _set("domain", "PHAR")),
    Case("api:claim", "money as a float", _api_claim, _set("total_amc_cents", 21.0)),
    Case("portal:claim", "good", _portal_claim, {}),
    Case("portal:claim", "future care date", _portal_claim, {"care_date": "31/12/2999"}),
    Case("portal:claim", "AMO above the price", _portal_claim, {"line1_amo_paid": "99,00"}),
    Case("portal:claim", "bad RPPS", _portal_claim, {"prescriber_rpps": "12345678901"}),
    Case("api:lot", "unknown PEC", _api_lot, _unchanged),
    Case("api:lot", "totals that do not add up", _api_lot, _set("total_price_cents", 1)),
    Case("fhir:rights", "good", _fhir_rights, {}),
    Case("fhir:rights", "foreign domain", _fhir_rights, {"domain": "PHAR"}),
    Case("fhir:rights", "future care date", _fhir_rights, {"care_date": "2999-01-01"}),
    Case("fhir:rights", "unknown domain", _fhir_rights, {"domain": "XXXX"}),
    Case("fhir:rights", "bad birth rank", _fhir_rights, {"birth_rank": 12}),
    Case("fhir:pec", "good", _fhir_pec, _unchanged),
    Case("fhir:pec", "unknown LPP code", _fhir_pec, _set_line(0, lpp_code="9999999")),
    Case("fhir:pec", "price above the limit", _fhir_pec, _set_line(1, unit_price_eur="900.00")),
    Case("fhir:pec", "delivery in the past", _fhir_pec, _set("delivery_date", "2020-01-01")),
    Case("fhir:pec", "a child's frame for an adult", _fhir_pec, _set_line(0, lpp_code="2290101")),
    Case("fhir:pec", "foreign domain", _fhir_pec, _set("domain", "AUDI")),
    Case("fhir:claim", "unknown PEC", _fhir_claim, _unchanged),
    Case("fhir:claim", "totals that do not add up", _fhir_claim, _set("total_amc_cents", 1)),
    Case("fhir:claim", "bad RPPS", _fhir_claim, _set("prescriber_rpps", "12345678901")),
    Case("fhir:claim", "foreign domain", _fhir_claim, _set("domain", "PHAR")),
]


@dataclass
class Context:
    client: object
    shop: object
    token: str
    pec_token: str
    claims_token: str = ""
    finess: str = ""
    sent: int = 0
    pec_number: str = ""  # a PEC granted to the matching row, delivered today (the portal's invoice cases)


@pytest.fixture
def ctx(client, client_class, cast, population):
    shop = client_class(REMOTE_ADDR="192.0.2.44")
    login(shop, cast.staff, cast.secrets[cast.staff.email])
    shop.get("/comptoir/droits/")  # shows (and so drops) the login's flash message
    context = Context(
        client=client,
        shop=shop,
        token=tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1],
        pec_token=tokens.create_token(cast.optician, "LGO PEC", ["pec:write"], cast.owner)[1],
        claims_token=tokens.create_token(cast.optician, "LGO factures", ["claims:write"], cast.owner)[1],
        finess=cast.optician.professional.finess,
    )
    context.pec_number = _granted_pec(context, _adult(population))
    return context


def _granted_pec(ctx, row) -> str:
    """Before the case's requests, so that its ledger rows are not taken for the invoice's."""
    from rempart.authorizations.models import Pec

    response = _api_pec(ctx, row, row[COL["nir"]], _unchanged)
    assert response.status_code == 200 and response.json()["status"] == "accepted", response.content
    Pec.objects.filter(number=response.json()["number"]).update(delivery_date=timezone.localdate())
    return response.json()["number"]


def _person_id(row) -> int:
    from rempart.registry.models import Beneficiary

    matches = [
        b.pk
        for b in Beneficiary.objects.filter(
            contract__adherent_number=row[COL["adherent_number"]],
            contract__insurer__amc_number=row[COL["amc_number"]],
        )
        if b.birth_year == int(row[COL["birth_date"]][:4])
    ]
    assert matches, "the row is not in the registry"
    return matches[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.entry}:{c.name}")
def test_a_matching_card_gets_the_same_answer_or_a_recorded_one(case, ctx, population):
    row = _adult(population)
    stranger = _stranger_nir(population, row)

    before = Disclosure.objects.order_by("-id").values_list("id", flat=True).first() or 0
    matched = case.send(ctx, row, row[COL["nir"]], case.variant)
    matched_rows = list(Disclosure.objects.filter(id__gt=before))
    missed = case.send(ctx, row, stranger, case.variant)

    assert matched.status_code < 500 and missed.status_code < 500
    if _signature(matched) == _signature(missed):
        return
    person = _person_id(row)
    assert any(r.beneficiary_id == person for r in matched_rows), (
        f"{case.entry} '{case.name}': the answers differ ({matched.status_code} vs {missed.status_code}) "
        "and the matching request left no ledger row naming the person"
    )


def test_a_rejected_quote_after_identification_is_recorded_as_such(ctx, population):
    """What only the beneficiary's age reveals is refused after the ledger row, with outcome "rejected"."""
    row = _adult(population)
    before = Disclosure.objects.count()
    response = _api_pec(ctx, row, row[COL["nir"]], _set_line(0, lpp_code="2290101"))
    assert response.status_code == 400 and response.json()["field"] == "lpp_code"
    row_written = Disclosure.objects.order_by("-id").first()
    assert Disclosure.objects.count() == before + 1
    assert (row_written.purpose, row_written.outcome) == ("pec", "rejected")
    assert row_written.fields == ["identity_confirmed", "coverage:OPTI"]


def test_bad_quotes_are_refused_before_the_lookup(ctx, population):
    """A quote bad in itself gets its 400 without any ledger row: nothing of the card was read."""
    row = _adult(population)
    before = Disclosure.objects.count()
    for change in (_set_line(0, lpp_code="9999999"), _set_line(0, **{"class": "B"})):
        for nir in (row[COL["nir"]], _stranger_nir(population, row)):
            assert _api_pec(ctx, row, nir, change).status_code == 400
    assert Disclosure.objects.count() == before


def test_every_caller_of_the_gate_is_listed():
    callers = {
        module
        for module, targets in import_graph().items()
        if not module.startswith("rempart.gate")
        and module != "rempart.conftest"  # resets the gate's per-process cache between tests
        and any(t == "rempart.gate" or t.startswith("rempart.gate.") for t in targets)
    }
    assert callers == set(ENTRY_MODULES), "a new caller of the gate needs its no-oracle cases here"
    covered = {c.entry for c in CASES}
    assert {e for entries in ENTRY_MODULES.values() for e in entries} <= covered
