"""Fixtures of the returns tests: an approved run sent to the bank, built row by row (independent of the run
service), and a snapshot of everything an import may change, to show that a refusal changed nothing."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounting.models import Posting, Transaction
from rempart.accounts.models import Organisation, Role, SecurityEvent
from rempart.lib.crypto import field_cipher
from rempart.payments import sepa
from rempart.payments.models import BankFileImport, Payment, PaymentRun
from rempart.registry.bank_details import mask_iban
from rempart.registry.models import Professional
from rempart.testing import make_user

SHOP_IBAN = "FR7630004000010001234567830"
OTHER_IBAN = "FR7630006000011234567890189"
NEW_IBAN = "FR7610107001011234567890129"
RUN_REF = "PR-20261130-001"
OTHER_RUN_REF = "PR-20261123-001"


@dataclass
class SentRun:
    run: PaymentRun
    shop: Payment  # the optician's transfer
    other: Payment  # the pharmacy's transfer
    held: Payment | None = None


def set_iban(professional: Professional, iban: str, bic: str) -> None:
    """Give a professional an IBAN directly (the hold is another module's subject, tested there)."""
    professional.set_iban(iban)
    professional.bic = bic
    professional.iban_failed_at = None
    professional.iban_failed_reason = ""
    professional.save()


def owe(organisation: Organisation, cents: int, insurer, key: str) -> Transaction:
    """An accepted claim's posting: the insurer owes, the operator owes the professional."""
    return accounting.post(
        accounting.Kind.CLAIM_ACCEPTED,
        [
            (accounting.insurer_receivable(insurer), cents),
            (accounting.professional_payable(organisation), -cents),
        ],
        idempotency_key=key,
        source=("test", key[-60:]),  # not a claim row: the run's statement lines then carry no claim
    )


def approved_run(
    reference: str,
    transfers: list[tuple[Organisation, str, int, str]],
    *,
    insurer,
    held: list[tuple[Organisation, int]] = (),
) -> list[Payment]:
    """An approved run as the run service leaves it: one ``sent`` payment per (organisation, IBAN, amount,
    EndToEndId) with its ``payment`` posting, the pain.001 written and stored; ``held`` ones not in the file."""
    now = timezone.now()
    run = PaymentRun.objects.create(
        reference=reference, cutoff=dt.date(2026, 11, 30), execution_date=dt.date(2026, 12, 2),
        status=PaymentRun.Status.APPROVED, prepared_at=now, approved_at=now,
    )  # fmt: skip
    cipher = field_cipher()
    payments = []
    for organisation, iban, cents, e2e in transfers:
        owe(organisation, cents, insurer, f"test-claim:{e2e}")
        payment = Payment.objects.create(
            run=run, organisation=organisation, reference=e2e, amount_cents=cents, status=Payment.Status.SENT,
            creditor_name=sepa.sepa_text(organisation.name), iban_cipher=cipher.encrypt("iban", iban),
            iban_masked=mask_iban(iban), bic=organisation.professional.bic,
        )  # fmt: skip
        payment.transaction = accounting.post(
            accounting.Kind.PAYMENT,
            [(accounting.professional_payable(organisation), cents), (accounting.operator_bank(), -cents)],
            idempotency_key=f"payment:{payment.pk}",
            source=("payment", str(payment.pk)),
        )
        payment.save(update_fields=["transaction"])
        payments.append(payment)
    for organisation, cents in held:
        payments.append(
            Payment.objects.create(
                run=run,
                organisation=organisation,
                reference=f"{reference}-H{organisation.pk}",
                amount_cents=cents,
                status=Payment.Status.HELD,
                held_reason="no_iban",
            )  # fmt: skip
        )
    debtor = sepa.Debtor(**settings.REMPART_PAYMENTS_DEBTOR)
    content = sepa.write_pain001(
        message_id=reference, created_at=now, execution_date=run.execution_date, debtor=debtor,
        transfers=[sepa.Transfer(e2e, cents, organisation.name, iban, organisation.professional.bic, e2e)
                   for organisation, iban, cents, e2e in transfers],
    )  # fmt: skip
    run.file_content, run.file_name = content, f"{reference}.xml"
    run.transfer_count, run.total_cents = len(transfers), sum(t[2] for t in transfers)
    run.save()
    return payments


@pytest.fixture(name="sent_run")
def sent_run_fixture(cast) -> SentRun:
    """Run PR-20261130-001: 123,45 € to the optician, 67,89 € to the pharmacy, both sent."""
    set_iban(cast.optician.professional, SHOP_IBAN, "BNPAFRPPXXX")
    set_iban(cast.other_shop.professional, OTHER_IBAN, "AGRIFRPPXXX")
    shop, other = approved_run(
        RUN_REF,
        [
            (cast.optician, SHOP_IBAN, 12345, f"{RUN_REF}-OPT"),
            (cast.other_shop, OTHER_IBAN, 6789, f"{RUN_REF}-PHA"),
        ],
        insurer=cast.insurer.insurer,
    )
    return SentRun(shop.run, shop, other)


@pytest.fixture(name="treasurer")
def treasurer_fixture(cast):
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    user = make_user("tresor@operator.test", cast.operator, Role.TREASURY, totp_secret=secret)
    cast.secrets[user.email] = secret
    return user


def state() -> dict:
    """Everything an import may change, to compare before and after a refusal."""
    return {
        "payments": sorted(
            Payment.objects.values_list(
                "pk", "status", "return_reason", "returned_at", "settled_at", "return_transaction_id"
            )  # fmt: skip
        ),
        "transactions": Transaction.objects.count(),
        "postings": Posting.objects.count(),
        "imports": BankFileImport.objects.count(),
        "events": sorted(SecurityEvent.objects.values_list("tag", flat=True)),
        "ibans": sorted(Professional.objects.values_list("pk", "iban_failed_at", "iban_failed_reason")),
    }


def books_are_sound() -> bool:
    """``rempart accounts check`` passes (it exits with status 1 on any break)."""
    out = io.StringIO()
    try:
        call_command("accounts", "check", stdout=out, stderr=out)
    except SystemExit as exit_:
        assert exit_.code in (0, None), out.getvalue()
    assert "BROKEN" not in out.getvalue(), out.getvalue()
    return True


def payable(organisation) -> int:
    return accounting.balance(accounting.professional_payable(organisation))


def bank() -> int:
    return accounting.balance(accounting.operator_bank())


def forget_payments() -> None:
    """End of a transactional test on SQLite: the payments rows go before the ledger is wiped (they point at
    its transactions, PROTECT), as Django's flush would otherwise fail on the foreign keys."""
    from rempart.payments.models import FileDownload, PaymentItem

    for model in (FileDownload, BankFileImport, PaymentItem, Payment, PaymentRun):
        model.objects.all().delete()
