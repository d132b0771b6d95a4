"""Receipts: camt.054 credits matched to statements (or refused whole), receipts by hand with four eyes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError
from django.test import override_settings
from django.utils import timezone

from rempart.accounting import books
from rempart.accounting import service as accounting
from rempart.accounting.models import Transaction
from rempart.accounts.models import Role, SecurityEvent
from rempart.billing import receipts
from rempart.billing.models import Receipt, Statement
from rempart.testing import make_user

from .receivables_support import accepted_claim, camt054_credits, second_insurer, statement


@pytest.fixture
def treasurer(cast):
    return make_user("tresor1@operator.test", cast.operator, Role.TREASURY)


@pytest.fixture
def treasurer2(cast):
    return make_user("tresor2@operator.test", cast.operator, Role.TREASURY)


@pytest.fixture
def billed(cast):
    """The insurer owes 150,00 € for claims, billed by two statements."""
    insurer = cast.insurer.insurer
    accepted_claim(insurer, cast.optician, 15_000, dt.date(2026, 10, 15))
    return insurer, statement(insurer, 10_000), statement(insurer, 5_000)


def _state():
    return (
        Transaction.objects.count(),
        Receipt.objects.count(),
        list(Statement.objects.values_list("status", flat=True)),
    )


@pytest.mark.django_db
def test_camt054_credits_matched_by_end_to_end_id_and_by_remittance(cast, billed, treasurer):
    insurer, first, second = billed
    content = camt054_credits([
        {"amount": 10_000, "e2e": first.number},
        {"amount": 2_000, "ustrd": f"REGLEMENT {second.number} MUTUELLE TEST"},
    ])  # fmt: skip
    result = receipts.import_camt054(content, user=treasurer)

    assert [r.statement for r in result.receipts] == [first, second] and result.total_cents == 12_000
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == (Statement.Status.PAID, Statement.Status.PARTLY_PAID)
    receivable = accounting.insurer_receivable(insurer)
    assert books.balance(receivable) == 3_000
    assert books.balance(accounting.operator_bank()) == 12_000
    tx = result.receipts[0].transaction
    assert tx.kind == "receipt" and tx.effective_date == dt.date(2026, 11, 30)
    assert books.trial_balance().balanced
    assert SecurityEvent.objects.filter(tag="billing.receipts_imported").count() == 1


@pytest.mark.django_db
def test_same_file_twice_refused_nothing_changed(billed, treasurer):
    _insurer, first, _second = billed
    content = camt054_credits([{"amount": 10_000, "e2e": first.number}])
    receipts.import_camt054(content, user=treasurer)
    before = _state()
    with pytest.raises(receipts.ReceiptError, match="déjà été importé") as caught:
        receipts.import_camt054(content, user=treasurer)
    assert caught.value.code == "duplicate_file" and _state() == before


@pytest.mark.django_db
def test_same_entry_in_another_file_refused_whole(billed, treasurer):
    _insurer, first, second = billed
    receipts.import_camt054(
        camt054_credits([{"amount": 100, "e2e": first.number, "ref": "B1"}]), user=treasurer
    )
    before = _state()
    again = camt054_credits(
        [
            {"amount": 5_000, "e2e": second.number, "ref": "B2"},
            {"amount": 100, "e2e": first.number, "ref": "B1"},
        ],
        message_id="NTF-CR-2",
    )
    with pytest.raises(receipts.ReceiptError, match="déjà enregistré") as caught:
        receipts.import_camt054(again, user=treasurer)
    assert caught.value.code == "duplicate_entry" and _state() == before  # the first credit was not kept


@pytest.mark.django_db
def test_unmatched_credit_refuses_the_whole_file(billed, treasurer):
    _insurer, first, _second = billed
    before = _state()
    content = camt054_credits([{"amount": 10_000, "e2e": first.number}, {"amount": 77, "ustrd": "CADEAU"}])
    with pytest.raises(receipts.ReceiptError, match="aucun relevé ne correspond") as caught:
        receipts.import_camt054(content, user=treasurer)
    assert caught.value.code == "unmatched" and "ligne" in caught.value.message
    assert _state() == before
    assert SecurityEvent.objects.filter(tag="billing.receipts_refused").count() == 1


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "vide"),
        (b"<not xml", "bien form"),
        (b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>', "DTD"),
        (
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt/></Document>',
            "camt.054",
        ),
    ],
    ids=["empty", "not-xml", "entity", "other-message"],
)
@pytest.mark.django_db
def test_malformed_files_refused_clearly(billed, treasurer, content, expected):
    before = _state()
    with pytest.raises(receipts.ReceiptError, match=expected) as caught:
        receipts.import_camt054(content, user=treasurer)
    assert caught.value.code == "malformed" and _state() == before


@pytest.mark.django_db
def test_foreign_currency_pending_and_debits(billed, treasurer):
    _insurer, first, second = billed
    with pytest.raises(receipts.ReceiptError, match="euros"):
        receipts.import_camt054(camt054_credits([{"amount": 10_000, "e2e": first.number, "ccy": "USD"}]))
    mixed = camt054_credits([
        {"amount": 10_000, "e2e": first.number, "status": "PDNG"},
        {"amount": 999, "side": "DBIT", "e2e": "PAY-1"},
        {"amount": 5_000, "e2e": second.number},
    ])  # fmt: skip
    result = receipts.import_camt054(mixed, user=treasurer)
    assert [r.statement for r in result.receipts] == [second] and result.skipped_not_booked == 1
    with pytest.raises(receipts.ReceiptError, match="Aucun crédit"):
        receipts.import_camt054(
            camt054_credits([{"amount": 1, "e2e": first.number, "status": "PDNG"}], message_id="X")
        )


@pytest.mark.django_db
@override_settings(REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS=10_000)
def test_manual_receipt_below_threshold_posts_at_once_and_is_idempotent(billed, treasurer):
    insurer, first, _second = billed
    today = timezone.localdate()
    receipt = receipts.record_manual_receipt(
        insurer=insurer,
        statement=first,
        amount_cents=10_000,
        received_on=today,
        reference="VIR 42",
        user=treasurer,
    )
    assert receipt.transaction is not None and receipt.approved_by is None
    first.refresh_from_db()
    assert first.status == Statement.Status.PAID
    with pytest.raises(receipts.ReceiptError, match="déjà enregistré"):
        receipts.record_manual_receipt(
            insurer=insurer, statement=first, amount_cents=10_000, received_on=today, reference="VIR 42",
            user=treasurer,
        )  # fmt: skip
    assert Receipt.objects.count() == 1


@pytest.mark.django_db
@override_settings(REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS=10_000)
def test_manual_receipt_above_threshold_waits_for_a_second_person(billed, treasurer, treasurer2):
    insurer, first, _second = billed
    receipt = receipts.record_manual_receipt(
        insurer=insurer, statement=first, amount_cents=10_001, received_on=timezone.localdate(),
        reference="VIR 43", user=treasurer,
    )  # fmt: skip
    assert receipt.transaction is None and list(receipts.pending_manual_receipts()) == [receipt]
    assert books.balance(accounting.insurer_receivable(insurer)) == 15_000
    with pytest.raises(receipts.ReceiptError, match="seconde personne") as caught:
        receipts.approve_manual_receipt(receipt, user=treasurer)
    assert caught.value.code == "same_person"
    receipts.approve_manual_receipt(receipt, user=treasurer2)
    receipt.refresh_from_db()
    assert receipt.approved_by == treasurer2 and receipt.transaction.kind == "receipt"
    assert books.balance(accounting.insurer_receivable(insurer)) == 15_000 - 10_001
    with pytest.raises(receipts.ReceiptError, match="n'attend pas"):
        receipts.approve_manual_receipt(receipt, user=treasurer2)


@pytest.mark.django_db
def test_database_refuses_an_approver_equal_to_the_recorder(billed, treasurer):
    insurer, _first, _second = billed
    with pytest.raises(IntegrityError):
        Receipt.objects.create(insurer=insurer, amount_cents=1, received_on=timezone.localdate(),
                               source="manual", recorded_by=treasurer, approved_by=treasurer)  # fmt: skip


@pytest.mark.django_db
def test_manual_receipt_refusals(cast, billed, treasurer):
    insurer, first, _second = billed
    today = timezone.localdate()
    ok = {"insurer": insurer, "amount_cents": 100, "received_on": today, "reference": "R", "user": treasurer}
    cases = [
        ({"user": cast.admin}, "trésorerie"),
        ({"amount_cents": 0}, "positif"),
        ({"received_on": today + dt.timedelta(days=1)}, "futur"),
        ({"reference": " "}, "référence"),
        ({"insurer": second_insurer(), "statement": first}, "pas celui"),
    ]
    for change, expected in cases:
        with pytest.raises(receipts.ReceiptError, match=expected):
            receipts.record_manual_receipt(**{**ok, **change})
    assert not Receipt.objects.exists()


@pytest.mark.django_db
def test_a_collection_booked_as_one_entry_settles_each_statement(billed, treasurer):
    _insurer, first, second = billed
    content = camt054_credits(
        [{"amount": 10_000, "e2e": first.number, "ref": "BATCH-1"}, {"amount": 5_000, "e2e": second.number}],
        batched=True,
    )
    result = receipts.import_camt054(content, user=treasurer)
    assert [r.statement for r in result.receipts] == [first, second]
    assert Statement.objects.filter(status=Statement.Status.PAID).count() == 2
    with pytest.raises(receipts.ReceiptError):
        receipts.import_camt054(
            content.replace(b"NTF-CR-1", b"NTF-CR-9"), user=treasurer
        )  # the same entry again
