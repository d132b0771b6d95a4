"""Claims pending review: nothing is owed until an operator decides; each decision posts exactly its difference."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounts.models import SecurityEvent
from rempart.claims import rules
from rempart.claims.models import Claim
from rempart.claims.service import review_claim, submit_claim
from rempart.gate import Actor
from rempart.incidents.tests.conftest import COL
from rempart.rights.cards import read_card_data

CIP13 = "3400930000014"


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


def _big_pharmacy_invoice(cast, population, number="PH-BIG-1", claimed=150_000):
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    today = timezone.localdate()
    card = read_card_data(amc_number=row[COL["amc_number"]], adherent_number=row[COL["adherent_number"]],
                          nir=row[COL["nir"]], birth_date=row[COL["birth_date"]], domain="PHAR", today=today)  # fmt: skip
    line = rules.InvoiceLine(number=1, code_system="CIP13", code=CIP13, quantity=1, unit_price_cents=200_000,
                             base_cents=200_000, amo_paid_cents=50_000, amc_claimed_cents=claimed)  # fmt: skip
    invoice = rules.Invoice(invoice_number=number, invoice_date=today, care_date=today - dt.timedelta(days=2),
                            domain="PHAR", prescriber_rpps="10001234565", pec_number=None, lines=(line,),
                            total_price_cents=200_000, total_amo_cents=50_000, total_amc_cents=claimed)  # fmt: skip
    actor = Actor(channel="api", organisation_id=cast.other_shop.pk, token_id=None, ip="203.0.113.5")
    return submit_claim(actor, card, invoice, channel="api").claim


def _payable(cast) -> int:
    return accounting.balance(accounting.professional_payable(cast.other_shop.pk))


def test_an_invoice_above_the_threshold_waits_and_owes_nothing(cast, population):
    claim = _big_pharmacy_invoice(cast, population)
    assert claim.status == Claim.Status.PENDING_REVIEW and claim.accepted_cents == 0
    assert claim.decision["accepted_cents"] == 150_000 and claim.decision["review_reasons"]
    assert _payable(cast) == 0


@pytest.mark.parametrize(
    ("decision", "amount", "status", "owed"),
    [
        ("accept", None, "accepted", 150_000),
        ("reduce", 90_000, "partially_accepted", 90_000),
        ("reject", None, "rejected", 0),
    ],
)
def test_a_review_decides_records_the_reviewer_and_posts_the_difference(
    cast, population, decision, amount, status, owed
):
    claim = _big_pharmacy_invoice(cast, population)
    reviewed = review_claim(claim, reviewer=cast.admin, decision=decision, accepted_cents=amount,
                            reason="review_checked", note="ordonnance vérifiée")  # fmt: skip
    assert (reviewed.status, reviewed.accepted_cents, reviewed.reviewed_by) == (status, owed, cast.admin)
    event = SecurityEvent.objects.get(tag="claim.reviewed")  # it moves money: a security event, with who
    assert (
        event.user == cast.admin
        and event.details["decision"] == decision
        and event.details["accepted_cents"] == owed
    )
    assert _payable(cast) == -owed
    assert accounting.balance(accounting.insurer_receivable(claim.insurer_id)) == owed
    with pytest.raises(ValueError, match="plus en examen"):
        review_claim(claim, reviewer=cast.admin, decision="accept", accepted_cents=None, reason="x", note="")
    assert _payable(cast) == -owed  # a second decision changes nothing
    call_command("accounts", "check")


def test_a_reduction_must_stay_within_what_was_claimed(cast, population):
    claim = _big_pharmacy_invoice(cast, population)
    for amount in (None, -1, 150_001):
        with pytest.raises(ValueError):
            review_claim(
                claim, reviewer=cast.admin, decision="reduce", accepted_cents=amount, reason="r", note=""
            )
    assert Claim.objects.get(pk=claim.pk).status == Claim.Status.PENDING_REVIEW and _payable(cast) == 0
