"""Billing tests' cast, on top of rempart.testing's: insurers with billing contracts, fee schedules, and claims
accepted and paid at chosen dates, posted to the money ledger as the claims and payments apps post them.

``paid(...)`` writes an approved payment run the way ``payments.runs`` leaves it (run approved at noon on the
day, one sent payment per organisation, one ``PaymentItem`` per settled transaction, the payment posted), so
that statements can be tested over worked periods in the past; ``test_statements`` also goes once through a
real ``prepare_run``/``approve_run``.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.conf import settings
from django.utils import timezone, translation

from rempart.accounting import service as accounting
from rempart.accounts.models import Organisation
from rempart.billing.models import BillingContract, FeeSchedule
from rempart.claims.models import Claim, CreditNote
from rempart.payments.models import Payment, PaymentItem, PaymentRun
from rempart.registry.models import Insurer

_numbers = itertools.count(1)

# A worked month in the past (periods must be over to be billed).
OCT_1, OCT_31 = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
NOV_1, NOV_30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)


@pytest.fixture(autouse=True)
def _own_billing_dir(settings, tmp_path):
    """Detail files of a test go to its own directory (the command writes them at issue)."""
    settings.REMPART_BILLING_DIR = str(tmp_path / "billing-files")


@pytest.fixture(autouse=True)
def _french_unless_asked():
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


def noon(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def contract(insurer: Insurer, *, period: str = "monthly", due_days: int = 10) -> BillingContract:
    return BillingContract.objects.create(insurer=insurer, period=period, due_days=due_days)


def schedule(insurer: Insurer | None, effective_from: dt.date, **cents) -> FeeSchedule:
    """A fee schedule; keyword arguments: rights_check, pec, invoice (cents), share (basis points)."""
    return FeeSchedule.objects.create(
        insurer=insurer, effective_from=effective_from,
        per_rights_check_cents=cents.get("rights_check", 0), per_pec_cents=cents.get("pec", 0),
        per_invoice_cents=cents.get("invoice", 0), paid_share_basis_points=cents.get("share", 0),
    )  # fmt: skip


@pytest.fixture
def amc(cast) -> Insurer:
    """The cast's insurer (AMC 123456789), billed monthly, due 10 days after the period end."""
    insurer = cast.insurer.insurer
    contract(insurer)
    return insurer


@pytest.fixture
def other_amc(db) -> Insurer:
    """A second insurer, billed monthly too."""
    insurer = Insurer.objects.create(amc_number="987654321", name="Mutuelle Deux", kind="mutuelle")
    contract(insurer, due_days=30)
    return insurer


@pytest.fixture
def default_fees(db) -> FeeSchedule:
    """The default schedule since 2026-01-01: 0,05 € a rights check, 1 € a PEC, 0,30 € an invoice, 0,50 %."""
    return schedule(None, dt.date(2026, 1, 1), rights_check=5, pec=100, invoice=30, share=50)


def accept(
    insurer: Insurer, organisation: Organisation, cents: int, day: dt.date, *, domain: str = "OPTI"
) -> Claim:
    """An accepted claim of ``cents`` for ``insurer``, posted effective on ``day`` like claims.postings does."""
    number = f"F-{next(_numbers):05d}"
    claim = Claim.objects.create(
        organisation=organisation, invoice_number=number, channel=Claim.Channel.API, insurer=insurer,
        beneficiary_id=424242, domain=domain, invoice_date=day, care_date=day, status=Claim.Status.ACCEPTED,
        total_price_cents=cents + 5000, total_amo_cents=5000, claimed_cents=cents, accepted_cents=cents,
        decision={"status": "accepted", "lines": [], "reasons": [], "review_reasons": [], "explanation": ""},
        rule_version="test", data_version="test", request_fingerprint=f"fp-{number}", ledger_reference="",
        created_at=noon(day),
    )  # fmt: skip
    accounting.post(
        accounting.Kind.CLAIM_ACCEPTED,
        [(accounting.insurer_receivable(insurer), cents), (accounting.professional_payable(organisation), -cents)],
        idempotency_key=f"claim:{claim.pk}:1", memo=f"facture {number}", source=("claim", str(claim.pk)),
        effective_date=day,
    )  # fmt: skip
    return claim


def credit(claim: Claim, cents: int, day: dt.date) -> CreditNote:
    """A credit note (*avoir*) of ``cents`` on ``claim``, posted effective on ``day``."""
    note = CreditNote.objects.create(
        claim=claim, number=f"A-{next(_numbers):05d}", organisation=claim.organisation, amount_cents=cents,
        reason="retour",
    )  # fmt: skip
    source = ("claim", str(claim.pk))
    accounting.post(
        accounting.Kind.CLAIM_REVERSED,
        [(accounting.insurer_receivable(claim.insurer_id), -cents),
         (accounting.professional_payable(claim.organisation_id), cents)],
        idempotency_key=f"claim:{claim.pk}:{accounting.source_transaction_count(source) + 1}",
        memo=f"avoir {note.number}", source=source, effective_date=day,
    )  # fmt: skip
    return note


def paid(claims: list[Claim], day: dt.date) -> PaymentRun:
    """Pay every unsettled transaction of these claims in a run approved at noon on ``day`` (as runs does)."""
    run = PaymentRun.objects.create(
        reference=f"PAY-T{next(_numbers):06d}", cutoff=day, execution_date=day,
        status=PaymentRun.Status.APPROVED, prepared_at=noon(day), approved_at=noon(day),
    )  # fmt: skip
    by_org: dict[int, list[tuple[int, int, int]]] = {}
    for claim in claims:
        payable = accounting.professional_payable(claim.organisation_id)
        for tx in accounting.source_transactions(("claim", str(claim.pk))):
            if PaymentItem.objects.filter(transaction=tx).exists():
                continue
            cents = -sum(tx.postings.filter(account=payable).values_list("amount_cents", flat=True))
            by_org.setdefault(claim.organisation_id, []).append((tx.pk, claim.pk, cents))
    for org_id, lines in by_org.items():
        amount = sum(cents for _tx, _claim, cents in lines)
        payment = Payment.objects.create(
            run=run, organisation_id=org_id, reference=f"{run.reference}-{org_id}", amount_cents=amount,
            status=Payment.Status.SENT,
        )  # fmt: skip
        PaymentItem.objects.bulk_create(
            PaymentItem(payment=payment, kind="claim" if cents > 0 else "credit_note", transaction_id=tx,
                        claim_id=claim, amount_cents=cents)
            for tx, claim, cents in lines
        )  # fmt: skip
        if amount > 0:
            payment.transaction = accounting.post(
                accounting.Kind.PAYMENT,
                [(accounting.professional_payable(org_id), amount), (accounting.operator_bank(), -amount)],
                idempotency_key=f"payment:{payment.reference}", source=("payment", str(payment.pk)),
                effective_date=day,
            )  # fmt: skip
            payment.save(update_fields=["transaction"])
    return run


def rights_checks(insurer: Insurer, day: dt.date, count: int, outcome: str = "covered") -> None:
    """``count`` rights-check rows of the disclosure ledger for ``insurer`` at noon on ``day``."""
    from rempart.ledger.models import Disclosure

    Disclosure.objects.bulk_create(
        Disclosure(
            created_at=noon(day), chain=77, seq=next(_numbers), prev_hash=b"\0" * 32, row_hash=b"\0" * 32,
            reference=f"T{next(_numbers)}", channel="api", purpose="rights_check", insurer_id=insurer.pk,
            outcome=outcome,
        )
        for _n in range(count)
    )  # fmt: skip


def pecs(
    insurer: Insurer, organisation: Organisation, day: dt.date, count: int, status: str = "accepted"
) -> None:
    from rempart.authorizations.models import Pec

    for _n in range(count):
        Pec.objects.create(
            organisation=organisation, insurer=insurer, beneficiary_id=1, domain="OPTI", status=status,
            delivery_date=day, quote={}, decision={}, total_committed_cents=0, rule_version="t",
            data_version="t", ledger_reference="t", request_fingerprint=f"pec-{next(_numbers)}",
            created_at=noon(day),
        )  # fmt: skip


def money_ok() -> None:
    """The money invariant, as `rempart accounts check` verifies it: every account balances, nothing is lost."""
    from rempart.accounting import integrity

    report = integrity.verify()
    assert report.ok, report
