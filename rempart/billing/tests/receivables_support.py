"""Helpers for the collection, receipts, ageing and treasury tests: receivables and statements built directly.

A claim here is only its ledger transaction (debit the insurer's receivable, credit the professional's payable,
as the claims app posts it); a statement is a ``Statement`` row whose total is what it bills, as
``statements.py`` would issue it. What collection and receipts do depends on these alone.
"""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounting.models import TransactionKind
from rempart.billing.models import BillingContract, Statement
from rempart.lib.crypto import field_cipher
from rempart.registry.models import Insurer

_numbers = itertools.count(1)
INSURER_IBAN = "FR7630001007941234567890185"


def accepted_claim(insurer: Insurer, organisation, cents: int, on: dt.date):
    """A claim accepted on ``on``: the insurer owes ``cents`` and the operator owes them to the professional."""
    number = next(_numbers)
    return accounting.post(
        TransactionKind.CLAIM_ACCEPTED,
        [
            (accounting.insurer_receivable(insurer), cents),
            (accounting.professional_payable(organisation), -cents),
        ],
        idempotency_key=f"test-claim:{number}",
        source=("claim", f"t{number}"),
        effective_date=on,
    )


def statement(
    insurer: Insurer, cents: int, *, due: dt.date | None = None, number: str | None = None
) -> Statement:
    """An issued statement of ``cents`` for a period ending a fortnight before its due date."""
    due = due or timezone.localdate() + dt.timedelta(days=10)
    start = due - dt.timedelta(days=40 + next(_numbers))  # a distinct period each time
    return Statement.objects.create(
        number=number or f"REL-{insurer.amc_number}-{next(_numbers):05d}",
        insurer=insurer,
        period_start=start,
        period_end=start + dt.timedelta(days=29),
        paid_cents=cents,
        total_cents=cents,
        due_date=due,
        issued_at=timezone.now(),
    )


def contract(insurer: Insurer, *, direct_debit: bool = True, **fields) -> BillingContract:
    values = {
        "collection": BillingContract.Collection.DIRECT_DEBIT
        if direct_debit
        else BillingContract.Collection.TRANSFER,
        "mandate_reference": f"MDT-{insurer.amc_number}",
        "mandate_signed_on": dt.date(2025, 1, 15),
        "iban_cipher": field_cipher().encrypt("iban", INSURER_IBAN),
        "iban_masked": "FR76 **** 0185",
        "bic": "BDFEFRPPCCT",
        **fields,
    }
    return BillingContract.objects.create(insurer=insurer, **values)


def second_insurer() -> Insurer:
    return Insurer.objects.create(amc_number="987654321", name="Prévoyance Seconde", kind="mutuelle")


def camt054_credits(credits: list[dict], *, message_id: str = "NTF-CR-1", batched: bool = False) -> bytes:
    """A camt.054.001.08 with one booked CRDT entry per credit: keys amount, e2e, ustrd, ref, date, status, ccy."""
    from rempart.payments.tests.bank_files import _Doc, money

    doc = _Doc("camt.054.001.08", "BkToCstmrDbtCdtNtfctn")
    header = doc.add(doc.message, "GrpHdr")
    doc.add(header, "MsgId", message_id)
    doc.add(header, "CreDtTm", "2026-12-01T18:00:00")
    notification = doc.add(doc.message, "Ntfctn")
    doc.add(notification, "Id", f"{message_id}-1")
    doc.path(notification, "Acct/Id/IBAN", "FR7630006000011234567890189")
    details = None
    for number, credit in enumerate(credits, start=1):
        if (
            not batched or details is None
        ):  # batched: one entry (one reference) for every credit, e.g. a collection
            entry = doc.add(notification, "Ntry")
            amount = sum(c["amount"] for c in credits) if batched else credit["amount"]
            doc.add(entry, "Amt", money(amount), Ccy=credit.get("ccy", "EUR"))
            doc.add(entry, "CdtDbtInd", credit.get("side", "CRDT"))
            doc.path(entry, "Sts/Cd", credit.get("status", "BOOK"))
            doc.path(entry, "BookgDt/Dt", credit.get("date", "2026-11-30"))
            doc.add(entry, "AcctSvcrRef", credit.get("ref", f"{message_id}-E{number}"))
            details = doc.add(entry, "NtryDtls")
        tx = doc.add(details, "TxDtls")
        refs = doc.add(tx, "Refs")
        doc.add(refs, "EndToEndId", credit.get("e2e", "NOTPROVIDED"))
        doc.add(tx, "Amt", money(credit["amount"]), Ccy=credit.get("ccy", "EUR"))
        doc.path(tx, "RltdPties/Dbtr/Pty/Nm", "MUTUELLE TEST")
        if credit.get("ustrd"):
            doc.path(tx, "RmtInf/Ustrd", credit["ustrd"])
    return doc.bytes()
