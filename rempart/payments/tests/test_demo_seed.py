"""The demo's money side (rempart/payments/demo.py): what `demo_setup` seeds is what the README tour promises.

An approved run whose statement lists paid and rejected invoices, a run prepared by the admin that only the
treasurer may approve, a ledger that stays green, the tour's own card still free for a PEC, and later starts
that seed nothing twice and prepare again a waiting run whose execution date has passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from rempart.accounts import demo
from rempart.accounts.models import User
from rempart.authorizations import rules as pec_rules
from rempart.authorizations.optics import Correction
from rempart.authorizations.service import request_pec
from rempart.claims.models import Claim
from rempart.payments import demo as payments_demo
from rempart.payments import runs, sepa
from rempart.payments.models import Payment, PaymentRun
from rempart.payments.statements import build_statement
from rempart.registry.seeding import DEMO_ADHERENT


def setup_demo() -> str:
    out = StringIO()
    call_command("demo_setup", beneficiaries=60, stdout=out)
    return out.getvalue()


def person(email: str) -> User:
    return User.objects.get(email=email)


def lines_of(run: PaymentRun) -> list[tuple[str, str, int]]:
    payment = run.payments.get()
    return [(line.kind, line.invoice_number, line.paid_cents) for line in build_statement(payment).lines]


def test_the_demo_seeds_a_paid_statement_and_a_run_for_the_treasurer(db):
    text = setup_demo()
    admin, treasurer = person(demo.OPERATOR_ADMIN), person(demo.TREASURER)
    assert treasurer.membership.role == "treasury" and treasurer.is_staff and not treasurer.is_superuser
    assert re.search(r"tresorier@demo\.rempart\.test\s+treasury", text), text
    code = StringIO()
    call_command("demo_code", demo.TREASURER, stdout=code)
    assert re.fullmatch(r"\d{6}\n", code.getvalue())

    approved = PaymentRun.objects.get(status=PaymentRun.Status.APPROVED)
    assert (approved.prepared_by, approved.approved_by, approved.transfer_count) == (admin, treasurer, 1)
    sepa.check_pain001(
        bytes(approved.file_content), expected_count=1, expected_total_cents=approved.total_cents
    )
    payment = approved.payments.get()
    optician = payment.organisation
    assert (
        payment.status == Payment.Status.SENT and payment.iban_masked == optician.professional.masked_iban()
    )
    statement = build_statement(payment)
    assert statement.balanced and statement.total_cents == payment.amount_cents == approved.total_cents
    assert [(kind, number) for kind, number, _cents in lines_of(approved)] == [
        ("claim", "F-DEMO-0001"), ("claim", "F-DEMO-0002"), ("rejected", "F-DEMO-0003"),
    ]  # fmt: skip
    rejected = next(line for line in statement.lines if line.kind == "rejected")
    assert [code for code, _text in rejected.reasons] == ["pec_consumed"]

    waiting = PaymentRun.objects.get(status=PaymentRun.Status.PREPARED)
    assert waiting.prepared_by == admin and waiting.approved_by is None
    assert [(kind, cents < 0) for kind, _n, cents in lines_of(waiting)] == [
        ("claim", False), ("claim", False), ("credit_note", True),
    ]  # fmt: skip
    assert approved.reference in text and waiting.reference in text
    assert f"/operateur/paiements/{waiting.reference}/" in text
    call_command("accounts", "check", stdout=StringIO())  # raises on any break

    # Four eyes on the demo's own run: the admin who prepared it may not approve, the treasurer may.
    assert runs.approval_refusal(waiting, admin)[0] == "not_treasury"
    with pytest.raises(runs.ApprovalRefused):
        runs.approve_run(waiting, user=admin)
    paid = runs.approve_run(waiting, user=treasurer)
    assert paid.status == PaymentRun.Status.APPROVED and paid.approved_by == treasurer
    call_command("accounts", "check", stdout=StringIO())


def test_the_tour_card_is_left_for_the_person_trying_the_demo(db):
    """The seed invoices another synthetic family: Camille's quote of the README is still granted."""
    setup_demo()
    assert not Claim.objects.exclude(invoice_number__startswith="F-DEMO-").exists()
    optician = Claim.objects.first().organisation
    insurer = Claim.objects.first().insurer
    today = timezone.localdate()
    camille = payments_demo.Glasses("", "ASSURE", "Camille", "F", "1985-05-12", "2850575123456",
                                    payments_demo.ADULT, adherent=DEMO_ADHERENT)  # fmt: skip
    card = dataclasses.replace(payments_demo._card(insurer, camille, today), care_date=today)
    correction = Correction.of("-1.25")
    prescription = pec_rules.Prescription(
        today - dt.timedelta(days=10), "10001234565", correction, correction
    )
    quote = tuple(
        pec_rules.QuoteLine(code, klass, side, 1, cents) for code, klass, side, cents in camille.lines
    )
    outcome = request_pec(
        payments_demo.import_actor(optician), card, pec_rules.PecRequest("OPTI", today, prescription, quote)
    )
    assert outcome.pec is not None and outcome.pec.status == "accepted"


def test_later_starts_seed_nothing_twice_and_prepare_a_stale_run_again(db):
    setup_demo()
    claims, first_runs = Claim.objects.count(), set(PaymentRun.objects.values_list("reference", "status"))
    setup_demo()
    assert Claim.objects.count() == claims
    assert set(PaymentRun.objects.values_list("reference", "status")) == first_runs

    waiting = PaymentRun.objects.get(status=PaymentRun.Status.PREPARED)
    PaymentRun.objects.filter(pk=waiting.pk).update(
        execution_date=timezone.localdate() - dt.timedelta(days=1)
    )  # the demo started again days later: this run can no longer be approved
    text = setup_demo()
    waiting.refresh_from_db()
    assert (
        waiting.status == PaymentRun.Status.CANCELLED and waiting.cancel_reason == payments_demo.CANCEL_REASON
    )
    again = PaymentRun.objects.get(status=PaymentRun.Status.PREPARED)
    assert again.reference != waiting.reference and again.reference in text
    assert (again.total_cents, again.prepared_by.email) == (waiting.total_cents, demo.OPERATOR_ADMIN)
    assert runs.approve_run(again, user=person(demo.TREASURER)).status == PaymentRun.Status.APPROVED
    call_command("accounts", "check", stdout=StringIO())


def test_a_database_that_already_has_runs_gets_no_demo_invoices(db):
    """A demo database where someone ran payments before this seed existed keeps them as they are, and says so."""
    today = timezone.localdate()
    PaymentRun.objects.create(
        reference="PR-EARLIER-001",
        cutoff=today,
        execution_date=today,
        status=PaymentRun.Status.CANCELLED,
        prepared_at=timezone.now(),
        cancel_reason="essai",
    )  # fmt: skip - a cancelled run: no money moved
    text = setup_demo()
    assert "were not seeded" in text and not Claim.objects.exists()
    assert list(PaymentRun.objects.values_list("reference", flat=True)) == ["PR-EARLIER-001"]


# What the README's tour types in *Banque* (synthetic, valid).
README_IBAN, README_BIC = "FR1420041010050500013M02606", "PSSTFRPPXXX"


def test_the_tour_iban_change_is_held_and_the_waiting_run_pays_the_previous_iban(db, settings, mailoutbox):
    """As the README says: a new IBAN waits 5 days; the treasurer's approval meanwhile pays the previous one;
    the owner (or the operator) cancels it and it is never paid."""
    from rempart.registry import bank_details, bank_hold

    setup_demo()
    owner, treasurer = person(demo.OPTICIAN_OWNER), person(demo.TREASURER)
    professional = owner.membership.organisation.professional
    before = professional.masked_iban()
    change = bank_details.change_bank_details(professional, README_IBAN, README_BIC, by=owner)
    assert (
        change.hold_until - change.requested_at
        == dt.timedelta(days=settings.REMPART_IBAN_HOLD_DAYS)
        == (dt.timedelta(days=5))
    )
    assert demo.OPTICIAN_OWNER in {address for mail in mailoutbox for address in mail.to}
    run = runs.approve_run(PaymentRun.objects.get(status=PaymentRun.Status.PREPARED), user=treasurer)
    assert run.payments.get().iban_masked == before != bank_details.mask_iban(README_IBAN)
    assert README_IBAN.encode() not in bytes(run.file_content)
    cancelled = bank_hold.cancel_change(change, by=treasurer)
    assert cancelled.status == "cancelled" and bank_details.account_to_pay(professional).masked == before
