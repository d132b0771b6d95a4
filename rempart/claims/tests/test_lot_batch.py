"""Lots are judged chunk by chunk (rempart.claims.batch): exactly as the same invoices one by one, contained alike."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone

from rempart.accounting.models import Posting
from rempart.accounts import tokens
from rempart.accounts.models import ApiToken, Organisation
from rempart.claims import batch
from rempart.claims.intake import from_dict
from rempart.claims.lot_format import write_lot
from rempart.claims.lots import receive_lot
from rempart.claims.models import Claim, LotInvoiceError
from rempart.claims.service import submit_claim
from rempart.gate import Actor
from rempart.incidents.tests.conftest import COL
from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.lib import fast_insert
from rempart.registry.models import Professional
from rempart.surveillance import canaries
from rempart.surveillance.models import Alert

from .test_api import invoice_for

CIP13 = ("3400930000014", "3400930000021")  # synthetic, valid keys


def _pharmacy(name: str, finess: str) -> Organisation:
    professional = Professional.objects.create(finess=finess, name=name, domains=["PHAR"])
    return Organisation.objects.create(kind="professional", name=name, professional=professional)


def _actor(organisation: Organisation, owner) -> Actor:
    token, _raw = tokens.create_token(organisation, "LGO officine", ["claims:write"], owner)
    return Actor(channel="api", organisation_id=organisation.pk, token_id=token.pk, ip="203.0.113.9",
                 session_ref=f"token:{token.prefix}")  # fmt: skip


def _people(population):
    return [row for pk in population.people for row in population.people[pk] if row[COL["nir"]]]


def pharmacy_invoice(row, number: str, *, code=CIP13[0], claimed=350, days_ago=1, **extra) -> dict:
    today = timezone.localdate()
    line = {
        "code_system": "CIP13", "code": code, "lpp_class": None, "side": None, "quantity": 1,
        "unit_price_cents": 650 + claimed, "base_cents": 650 + claimed, "amo_paid_cents": 650,
        "amc_claimed_cents": claimed,
    }  # fmt: skip
    body = {
        "invoice_number": number,
        "invoice_date": today.isoformat(),
        "care_date": (today - dt.timedelta(days=days_ago)).isoformat(),
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": row[COL["nir"]],
        "birth_date": row[COL["birth_date"]],
        "birth_rank": None,
        "domain": "PHAR",
        "prescriber_rpps": "10001234565",
        "pec_number": None,
        "lines": [line],
        "total_price_cents": line["unit_price_cents"],
        "total_amo_cents": 650,
        "total_amc_cents": claimed,
    }
    body.update(extra)
    return body


def _lot(organisation: Organisation, invoices: list[dict], number: str = "LOT-B-1") -> io.BytesIO:
    header = {
        "finess": organisation.professional.finess,
        "lot_number": number,
        "total_amc_cents": sum(i["total_amc_cents"] for i in invoices),
    }
    return io.BytesIO(write_lot(invoices, header))


def _mixed_invoices(population) -> list[dict]:
    """Good invoices, and every kind of trouble a lot meets, some across chunk boundaries (chunks of 4)."""
    people = _people(population)
    invoices = [pharmacy_invoice(row, f"G-{n}", claimed=300 + n) for n, row in enumerate(people[:9])]
    invoices.append(pharmacy_invoice(people[0], "DUP-1", claimed=300))  # G-0's line again: a duplicate
    invoices.append(pharmacy_invoice(people[1], "G-1", claimed=301))  # the same invoice again: replayed
    invoices.append(pharmacy_invoice(people[2], "G-2", claimed=999))  # another invoice, same number
    invoices.append(pharmacy_invoice(people[3], "NM-1", nir=people[4][COL["nir"]]))  # nobody
    invoices.append(pharmacy_invoice(people[5], "OPT-1", domain="OPTI"))  # not a pharmacy's domain
    invoices.append(pharmacy_invoice(people[6], "OLD-1", days_ago=800))  # beyond the time limit
    invoices.append(pharmacy_invoice(people[7], "TWO-1", code=CIP13[1]))  # another product, same day: fine
    invoices.append(pharmacy_invoice(people[7], "TWO-2", code=CIP13[1]))  # …then its duplicate
    invoices.append(pharmacy_invoice(people[8], "BAD-1", total_amc_cents=1))  # totals do not add up
    return invoices


def _results(organisation: Organisation, invoices: list[dict]) -> dict[str, tuple]:
    """Each invoice number's outcome: its claim's status and accepted amount, else the kind of error."""
    outcome: dict[str, tuple] = {}
    for claim in Claim.objects.filter(organisation=organisation).prefetch_related("lines"):
        reasons = tuple(sorted({code for line in claim.lines.all() for code in line.reasons}))
        outcome[claim.invoice_number] = (claim.status, claim.accepted_cents, reasons)
    return outcome


def _one_by_one(actor: Actor, invoices: list[dict]) -> dict[str, str]:
    kinds = {}
    today = timezone.localdate()
    for body in invoices:
        try:
            card, invoice = from_dict(body, today=today)
            result = submit_claim(actor, card, invoice, channel=Claim.Channel.API, today=today)
        except Exception as exc:  # noqa: BLE001 - the kind of refusal is what is compared
            kinds.setdefault(body["invoice_number"], type(exc).__name__)
            continue
        if result.claim is None:
            kinds.setdefault(body["invoice_number"], "no_match")
    return kinds


@pytest.fixture
def quiet(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_SIZE", 4)


def test_a_lot_is_judged_exactly_as_its_invoices_one_by_one(cast, population, small_chunks, quiet):
    lot_shop, single_shop = _pharmacy("Pharmacie Lot", "750000036"), _pharmacy("Pharmacie Seule", "750000044")
    invoices = _mixed_invoices(population)
    lot, replayed = receive_lot(_actor(lot_shop, cast.owner), lot_shop, _lot(lot_shop, invoices))
    assert not replayed
    kinds = _one_by_one(_actor(single_shop, cast.owner), invoices)

    assert _results(lot_shop, invoices) == _results(single_shop, invoices)
    statuses = _results(lot_shop, invoices)
    assert statuses["G-0"][0] == "accepted" and statuses["DUP-1"][0] == "rejected"
    assert statuses["TWO-1"][0] == "accepted" and statuses["TWO-2"][0] == "rejected"
    errors = {e.invoice_number: e.kind for e in LotInvoiceError.objects.filter(lot=lot)}
    # A number twice in one lot is refused by the format itself (docs/formats/claims-lot-v1.md); one by one,
    # the same body replays and another body conflicts.
    assert errors == {"G-1": "invalid", "G-2": "invalid", "NM-1": "no_match", "OPT-1": "invalid",
                      "OLD-1": "invalid", "BAD-1": "invalid"}  # fmt: skip
    assert kinds == {"G-2": "ClaimConflict", "NM-1": "no_match", "OPT-1": "RefusedDomain",
                     "OLD-1": "ClaimInputError", "BAD-1": "ClaimInputError"}  # fmt: skip
    # One ledger row per invoice that reached the gate (or was refused its domain), in both paths.
    rows = {
        org.pk: Disclosure.objects.filter(organisation_id=org.pk, purpose="claim").count()
        for org in (lot_shop, single_shop)
    }
    assert rows[lot_shop.pk] == rows[single_shop.pk] == 14
    # The money owed is the accepted amounts, the same in both; the books balance; the chains verify.
    for org in (lot_shop, single_shop):
        owed = -sum(Posting.objects.filter(account__organisation=org).values_list("amount_cents", flat=True))
        assert owed == sum(c.accepted_cents for c in Claim.objects.filter(organisation=org)) > 0
    call_command("accounts", "check")
    assert chain.verify().ok


def test_two_invoices_of_one_lot_cannot_both_consume_a_pec(cast, delivered, quiet):
    row, pec = delivered
    first, second = invoice_for(row, pec, number="P-1"), invoice_for(row, pec, number="P-2")
    lot, _replayed = receive_lot(
        _actor(cast.optician, cast.owner), cast.optician, _lot(cast.optician, [first, second])
    )
    claims = {c.invoice_number: c for c in Claim.objects.filter(lot=lot).prefetch_related("lines")}
    assert claims["P-1"].status == "accepted"
    assert claims["P-2"].status == "rejected"
    assert any("pec" in code.lower() for line in claims["P-2"].lines.all() for code in line.reasons)


def test_a_chunk_that_meets_a_concurrent_writer_is_judged_one_by_one(cast, population, monkeypatch, quiet):
    shop = _pharmacy("Pharmacie Lot", "750000036")
    invoices = [pharmacy_invoice(row, f"C-{n}") for n, row in enumerate(_people(population)[:6])]
    real = fast_insert.insert
    calls = []

    def first_fails(objs, *args, **kwargs):
        if objs and isinstance(objs[0], Claim):
            calls.append(len(objs))
            if len(calls) == 1:
                raise IntegrityError(
                    "claim_invoice_per_organisation"
                )  # an API request took a number meanwhile
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(fast_insert, "insert", first_fails)
    lot, _ = receive_lot(_actor(shop, cast.owner), shop, _lot(shop, invoices))
    assert calls[0] == 6
    assert Claim.objects.filter(lot=lot, status="accepted").count() == 6
    # The failed chunk's ledger rows went with its savepoint: one row per invoice, not two.
    assert Disclosure.objects.filter(organisation_id=shop.pk, purpose="claim").count() == 6
    assert chain.verify().ok


@pytest.mark.django_db(transaction=True)
def test_surveillance_stops_a_lot_in_the_middle_of_a_chunk(cast, population, settings):
    """A lot of invoices for people the shop never saw: suspended at the same invoice as one by one."""
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = "database"
    settings.REMPART_SURVEILLANCE = {
        "clientele_learning_days": 0,
        "invoiced_new_identities_day_alert": 4,
        "invoiced_new_identities_day_suspend": 8,
        "api_checks_per_minute": 1000,
        "api_checks_per_hour": 100000,
    }
    shop = _pharmacy("Pharmacie Lot", "750000036")
    actor = _actor(shop, cast.owner)
    invoices = [pharmacy_invoice(row, f"S-{n}") for n, row in enumerate(_people(population)[:20])]
    lot, _ = receive_lot(actor, shop, _lot(shop, invoices))
    accepted = Claim.objects.filter(lot=lot).count()
    assert accepted == 8, lot.counts  # the 8th new person suspends; nothing after it is judged
    assert lot.counts == {"accepted": 8, "refused": 12}
    assert ApiToken.objects.get(pk=actor.token_id).suspended_at is not None
    assert Alert.objects.filter(signal="invoiced_new_identities_day").exists()
    assert Disclosure.objects.filter(organisation_id=shop.pk, purpose="claim").count() == 8


@pytest.mark.django_db(transaction=True)
def test_a_canary_in_a_lot_stops_it_right_after(cast, population, settings):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = "database"
    settings.REMPART_SURVEILLANCE = {"api_checks_per_minute": 1000, "api_checks_per_hour": 100000}
    planted = canaries.plant(population.insurers[0], 2, seed=7)
    card = canaries.sealed_card(planted[0])
    canary_row = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        canary_row[COL[name]] = card[name]
    people = _people(population)[:9]
    rows = people[:3] + [canary_row] + people[3:]
    shop = _pharmacy("Pharmacie Lot", "750000036")
    actor = _actor(shop, cast.owner)
    lot, _ = receive_lot(actor, shop, _lot(shop, [pharmacy_invoice(r, f"K-{n}") for n, r in enumerate(rows)]))
    assert Claim.objects.filter(lot=lot).count() == 4  # the canary's invoice is answered like anyone's…
    assert lot.counts.get("refused") == 6  # …and nothing after it
    assert ApiToken.objects.get(pk=actor.token_id).suspended_at is not None
    assert Alert.objects.get(signal="canary").severity == "critical"
