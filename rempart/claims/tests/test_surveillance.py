"""An invoice is no oracle: rejected invoices count like checks, accepted ones have their own budget, canaries trip."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken
from rempart.claims import rules
from rempart.claims.models import Claim
from rempart.claims.service import submit_claim
from rempart.gate import Actor
from rempart.incidents.tests.conftest import COL
from rempart.rights.cards import read_card_data
from rempart.surveillance import canaries
from rempart.surveillance.engine import CheckRefused
from rempart.surveillance.models import Alert

pytestmark = pytest.mark.django_db(transaction=True)
CIP13 = "3400930000014"  # synthetic, valid key


@pytest.fixture(autouse=True)
def watched(settings):
    """Surveillance on, with the organisation's history long enough for "new" to mean something."""
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = "database"
    settings.REMPART_SURVEILLANCE = {
        "clientele_learning_days": 0,
        "invoiced_new_identities_day_alert": 4,
        "invoiced_new_identities_day_suspend": 8,
        "api_checks_per_minute": 1000,
        "api_checks_per_hour": 100000,
    }


def _pharmacy_token(cast):
    token, _raw = tokens.create_token(cast.other_shop, "LGO officine", ["claims:write"], cast.outsider)
    return token


def _actor(token) -> Actor:
    return Actor(channel="api", organisation_id=token.organisation_id, token_id=token.pk, ip="203.0.113.9",
                 session_ref=f"token:{token.prefix}")  # fmt: skip


def _people(population):
    return [row for pk in population.people for row in population.people[pk] if row[COL["nir"]]]


def _invoice(row, number: str, *, pec_number=None, domain="PHAR"):
    today = timezone.localdate()
    card = read_card_data(
        amc_number=row[COL["amc_number"]], adherent_number=row[COL["adherent_number"]], nir=row[COL["nir"]],
        birth_date=row[COL["birth_date"]], domain=domain, today=today,
    )  # fmt: skip
    line = rules.InvoiceLine(
        number=1, code_system="CIP13", code=CIP13, quantity=1, unit_price_cents=1000, base_cents=1000,
        amo_paid_cents=650, amc_claimed_cents=350,
    )  # fmt: skip
    if domain == "OPTI":
        line = rules.InvoiceLine(
            number=1, code_system="LPP", code="2290100", quantity=1, unit_price_cents=3000, base_cents=1500,
            amo_paid_cents=900, amc_claimed_cents=2100, lpp_class="A",
        )  # fmt: skip
    invoice = rules.Invoice(
        invoice_number=number, invoice_date=today, care_date=today - dt.timedelta(days=1), domain=domain,
        prescriber_rpps="10001234565", pec_number=pec_number, lines=(line,),
        total_price_cents=line.unit_price_cents, total_amo_cents=line.amo_paid_cents,
        total_amc_cents=line.amc_claimed_cents,
    )  # fmt: skip
    return card, invoice


def _suspended(token) -> bool:
    return ApiToken.objects.get(pk=token.pk).suspended_at is not None


def test_accepted_invoices_for_new_people_have_their_own_budget(cast, population):
    """A pharmacy invoices people it never checked: no step-up at the 10th, an alert, then suspension."""
    token = _pharmacy_token(cast)
    actor = _actor(token)
    statuses = []
    for n, row in enumerate(_people(population)[:12], start=1):
        try:
            outcome = submit_claim(actor, *_invoice(row, f"PH-{n}"), channel="api")
        except CheckRefused:
            break
        statuses.append(outcome.claim.status if outcome.claim else "no_match")
        if _suspended(token):
            break
    assert statuses[:7] == ["accepted"] * 7, statuses  # the check's budget (10) would have stepped up at 5
    assert Alert.objects.filter(signal="invoiced_new_identities_day").exists()
    # Suspended by the 8th new person invoiced (the request that suspends is still answered, as at the counter).
    assert _suspended(token) and 8 <= len(statuses) <= 9, statuses


def test_rejected_invoices_count_like_rights_checks(cast, population):
    """Invoices with a made-up PEC (rejected, but the identity is confirmed): contained like checks."""
    token, _raw = tokens.create_token(cast.optician, "LGO volé", ["claims:write"], cast.owner)
    actor = _actor(token)
    confirmed = 0
    for n, row in enumerate(_people(population)[:20], start=1):
        try:
            outcome = submit_claim(actor, *_invoice(row, f"OP-{n}", pec_number="PEC-ZZZZ-ZZZZ", domain="OPTI"),
                                   channel="api")  # fmt: skip
        except CheckRefused:
            continue
        if outcome.claim is not None:
            assert outcome.claim.status == Claim.Status.REJECTED
            confirmed += 1
        if _suspended(token):
            break
    assert _suspended(token) and confirmed <= 10, confirmed


def test_an_invoice_for_a_canary_trips_it(cast, population):
    planted = canaries.plant(population.insurers[0], 2, seed=7)
    card = canaries.sealed_card(planted[0])
    row = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        row[COL[name]] = card[name]
    token = _pharmacy_token(cast)
    outcome = submit_claim(_actor(token), *_invoice(row, "CANARY-1"), channel="api")
    assert outcome.claim is not None  # answered like anyone's: the sender learns nothing
    assert _suspended(token)
    assert Alert.objects.get(signal="canary").severity == "critical"
