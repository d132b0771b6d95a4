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
from rempart.surveillance.models import Alert
from rempart.testing import make_user

from .bank_credit_support import camt054_lump_sum, camt054_returns
from .conftest import money_ok
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


# --- direct debits returned by the insurer's bank; collection files booked as one lump sum ------------------


def _collected(cast, *amounts: int):
    """Statements of the cast's insurer (direct debit) collected by one pain.008, claims posted for them."""
    from rempart.billing import collection

    from .receivables_support import contract

    insurer = cast.insurer.insurer
    contract(insurer)
    accepted_claim(insurer, cast.optician, sum(amounts), dt.date(2026, 10, 15))
    bills = [statement(insurer, cents) for cents in amounts]
    made = collection.make_collection_file(collection_date=timezone.localdate() + dt.timedelta(days=3))
    return insurer, bills, made


def _money_state(insurer):
    return (
        _state(),
        books.balance(accounting.insurer_receivable(insurer)),
        books.balance(accounting.operator_bank()),
        Alert.objects.count(),
    )


@pytest.mark.django_db
def test_a_returned_direct_debit_reopens_the_receivable(cast, treasurer):
    insurer, (bill,), _made = _collected(cast, 40_000)
    (credit,) = receipts.import_camt054(
        camt054_credits([{"amount": 40_000, "e2e": bill.number}]), user=treasurer
    ).receipts
    assert credit.source == Receipt.Source.DIRECT_DEBIT and credit.collection_file is not None
    receivable = accounting.insurer_receivable(insurer)
    assert books.balance(receivable) == 0 and books.balance(accounting.operator_bank()) == 40_000

    returned = receipts.import_camt054(
        camt054_returns(
            [{"amount": 40_000, "e2e": bill.number, "reason": "AM04", "mandate": "MDT-123456789"}]
        ),
        user=treasurer,
    )
    assert [r.pk for r in returned.returns] == [credit.pk] and not returned.receipts
    credit.refresh_from_db(), bill.refresh_from_db()
    assert credit.return_reason == "AM04" and credit.returned_on == dt.date(2026, 12, 1)
    reversal = credit.return_transaction
    assert reversal.reverses_id == credit.transaction_id and reversal.kind == "receipt"
    assert reversal.effective_date == dt.date(2026, 12, 1)
    assert bill.status == Statement.Status.RETURNED and receipts.received_cents(bill) == 0
    assert books.balance(receivable) == 40_000 and books.balance(accounting.operator_bank()) == 0
    alert = Alert.objects.get(signal="insurer_debit_returned")
    evidence = alert.evidence["insurer_debit_returned"]
    assert alert.severity == Alert.Severity.WARNING and alert.organisation == cast.insurer
    assert alert.response == "debit_reopened"  # a code, in words in the console (surveillance.labels)
    assert evidence["statement"] == bill.number and evidence["amount_cents"] == 40_000
    assert evidence["reason_label"] == "Provision insuffisante sur le compte de l'assureur (AM04)"
    assert SecurityEvent.objects.filter(tag="billing.debit_returned").count() == 1
    money_ok()
    # The statement is due again: what the insurer owes is the ledger's, the overdue computation nets it.
    from rempart.billing import overdue

    assert overdue.received_cents(insurer.pk, dt.date(2026, 12, 31)) == 0


@pytest.mark.django_db
def test_return_reason_labels_in_both_languages():
    from django.utils import translation

    from rempart.billing import debit_return_reasons

    assert debit_return_reasons.label("MD01") == "Pas de mandat valable (MD01)"
    with translation.override("en"):
        assert debit_return_reasons.label("MD01") == "No valid mandate (MD01)"
        assert debit_return_reasons.label("MS02") == "Refused by the insurer (no reason given) (MS02)"
        assert debit_return_reasons.label("ZZ99") == "Unlisted reason (ZZ99)"
    assert debit_return_reasons.reason("ZZ99").mandate and not debit_return_reasons.reason("AM04").mandate


@pytest.mark.django_db
def test_a_return_with_an_unknown_reason_code_is_recorded_and_critical(cast, treasurer):
    _insurer, (bill,), _made = _collected(cast, 10_000)
    receipts.import_camt054(camt054_credits([{"amount": 10_000, "e2e": bill.number}]), user=treasurer)
    result = receipts.import_camt054(
        camt054_returns([{"amount": 10_000, "e2e": bill.number, "reason": "ZZ99"}]), user=treasurer
    )
    assert result.returns[0].return_reason == "ZZ99"
    alert = Alert.objects.get(signal="insurer_debit_returned")
    assert alert.severity == Alert.Severity.CRITICAL
    assert alert.evidence["insurer_debit_returned"]["reason_label"] == "Motif non répertorié (ZZ99)"
    money_ok()


@pytest.mark.django_db
def test_a_mandate_reason_raises_a_critical_alert_and_a_returned_receipt_cannot_be_returned_twice(
    cast, treasurer
):
    insurer, (bill,), _made = _collected(cast, 10_000)
    receipts.import_camt054(camt054_credits([{"amount": 10_000, "e2e": bill.number}]), user=treasurer)
    receipts.import_camt054(camt054_returns([{"amount": 10_000, "e2e": bill.number, "reason": "MD01"}]))
    assert Alert.objects.get().severity == Alert.Severity.CRITICAL
    before = _money_state(insurer)
    again = camt054_returns([{"amount": 10_000, "e2e": bill.number, "reason": "MD01", "ref": "OTHER"}],
                            message_id="NTF-RT-2")  # fmt: skip
    with pytest.raises(receipts.ReceiptError, match="déjà été contre-passé") as caught:
        receipts.import_camt054(again, user=treasurer)
    assert caught.value.code == "duplicate_return" and _money_state(insurer) == before
    same_file = camt054_returns([{"amount": 10_000, "e2e": bill.number, "reason": "MD01"}])
    with pytest.raises(receipts.ReceiptError) as caught:
        receipts.import_camt054(same_file, user=treasurer)
    assert caught.value.code == "duplicate_file" and _money_state(insurer) == before
    money_ok()


@pytest.mark.parametrize(
    "change, expected, code",
    [
        ({"e2e": "REL-000000000-NOPE"}, "aucun relevé prélevé", "unmatched_return"),
        ({"amount": 9_999}, "attendu 100,00\u00a0€, reçu 99,99\u00a0€", "unmatched_return"),
        ({"mandate": "MDT-SOMEONE-ELSE"}, "n'est pas celui du contrat", "unmatched_return"),
        ({"reason": "X1"}, "code ISO", "malformed"),
        ({"ccy": "USD"}, "euros", "currency"),
    ],
    ids=["unknown-statement", "other-amount", "other-mandate", "malformed-code", "currency"],
)
@pytest.mark.django_db
def test_unmatched_or_malformed_returns_refuse_the_file_and_change_nothing(cast, treasurer, change, expected,
                                                                           code):  # fmt: skip
    insurer, (bill,), _made = _collected(cast, 10_000)
    receipts.import_camt054(camt054_credits([{"amount": 10_000, "e2e": bill.number}]), user=treasurer)
    before = _money_state(insurer)
    content = camt054_returns([{"amount": 10_000, "e2e": bill.number, "reason": "AM04", **change}])
    with pytest.raises(receipts.ReceiptError, match=expected) as caught:
        receipts.import_camt054(content, user=treasurer)
    assert caught.value.code == code and _money_state(insurer) == before
    assert not SecurityEvent.objects.filter(tag="billing.debit_returned").exists()
    assert SecurityEvent.objects.filter(tag="billing.receipts_refused").exists()
    money_ok()


@pytest.mark.django_db
def test_a_return_of_a_statement_never_credited_is_refused(cast, treasurer):
    insurer, (bill,), _made = _collected(cast, 10_000)
    before = _money_state(insurer)
    with pytest.raises(receipts.ReceiptError, match="aucun prélèvement encaissé"):
        receipts.import_camt054(camt054_returns([{"amount": 10_000, "e2e": bill.number}]), user=treasurer)
    assert _money_state(insurer) == before


@pytest.mark.django_db
def test_a_bad_return_refuses_the_credits_of_the_same_file_too(cast, billed, treasurer):
    """All or nothing: a file with a good credit and an unmatched return records neither."""
    _insurer, first, _second = billed
    before = _state()
    mixed = camt054_credits([{"amount": 10_000, "e2e": first.number}])
    bad_return = camt054_returns([{"amount": 5, "e2e": "REL-UNKNOWN", "reason": "MS02"}])
    # one file holding both: the credit's entry moved into the returns' document
    from lxml import etree

    document, other = etree.fromstring(bad_return), etree.fromstring(mixed)
    ns = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"}
    document.find(".//c:Ntfctn", ns).append(other.find(".//c:Ntry", ns))
    with pytest.raises(receipts.ReceiptError, match="aucun relevé prélevé"):
        receipts.import_camt054(etree.tostring(document), user=treasurer)
    assert _state() == before


@pytest.mark.django_db
def test_a_debit_flagged_as_a_reversal_without_return_info_is_a_return(cast, treasurer):
    insurer, (bill,), _made = _collected(cast, 10_000)
    receipts.import_camt054(camt054_credits([{"amount": 10_000, "e2e": bill.number}]), user=treasurer)
    result = receipts.import_camt054(
        camt054_returns([{"amount": 10_000, "e2e": bill.number, "reason": None, "reversal": True}])
    )
    assert (
        result.returns[0].return_reason == ""
        and books.balance(accounting.insurer_receivable(insurer)) == 10_000
    )
    alert = Alert.objects.get()
    assert alert.evidence["insurer_debit_returned"]["reason_label"] == "Motif non précisé par la banque"
    money_ok()


@pytest.mark.django_db
def test_our_own_transfers_debits_are_skipped(cast, billed, treasurer):
    _insurer, first, _second = billed
    content = camt054_returns([{"amount": 999, "e2e": "PAY-1", "reason": None}])
    with pytest.raises(receipts.ReceiptError, match="Aucun crédit"):
        receipts.import_camt054(content, user=treasurer)


@pytest.mark.parametrize(
    "how",
    [
        {"batch_msg_id": "{msg}"},
        {"batch_block_id": "{msg}-1"},
        {"batch_msg_id": "{msg}", "batch_block_id": "{msg}-1", "as_transaction": True},
        {"ntry_ref": "{msg}"},
        {"info": "PRLV SEPA {msg} REMPART"},
    ],
    ids=["btch-msgid", "btch-pmtinfid", "refs-in-txdtls", "ntryref", "entry-text"],
)
@pytest.mark.django_db
def test_a_collection_booked_as_one_lump_sum_settles_every_statement(cast, treasurer, how):
    insurer, bills, made = _collected(cast, 30_000, 12_345)
    content = camt054_lump_sum(42_345, **{k: v.format(msg=made.reference) if isinstance(v, str) else v
                                          for k, v in how.items()})  # fmt: skip
    result = receipts.import_camt054(content, user=treasurer)
    assert sorted((r.statement.number, r.amount_cents) for r in result.receipts) == sorted(
        (b.number, b.total_cents) for b in bills
    )
    assert {r.source for r in result.receipts} == {Receipt.Source.DIRECT_DEBIT}
    assert {r.collection_file_id for r in result.receipts} == {made.pk}
    assert Statement.objects.filter(status=Statement.Status.PAID).count() == 2
    assert books.balance(accounting.insurer_receivable(insurer)) == 0
    assert books.balance(accounting.operator_bank()) == 42_345
    money_ok()


@pytest.mark.django_db
def test_a_lump_sum_of_another_amount_is_unmatched_with_the_reason(cast, treasurer):
    insurer, _bills, made = _collected(cast, 30_000, 12_345)
    before = _money_state(insurer)
    content = camt054_lump_sum(42_000, batch_msg_id=made.reference)
    with pytest.raises(receipts.ReceiptError, match="attendu 423,45\u00a0€, reçu 420,00\u00a0€") as caught:
        receipts.import_camt054(content, user=treasurer)
    assert caught.value.code == "unmatched" and made.reference in caught.value.message
    assert _money_state(insurer) == before
    money_ok()


@pytest.mark.django_db
def test_a_lump_sum_credited_twice_is_refused(cast, treasurer):
    insurer, bills, made = _collected(cast, 30_000, 12_345)
    receipts.import_camt054(camt054_lump_sum(42_345, batch_msg_id=made.reference), user=treasurer)
    before = _money_state(insurer)
    again = camt054_lump_sum(42_345, batch_msg_id=made.reference, ref="LUMP-2", message_id="NTF-LS-2")
    with pytest.raises(receipts.ReceiptError, match="déjà encaissé") as caught:
        receipts.import_camt054(again, user=treasurer)
    assert caught.value.code == "duplicate_entry" and _money_state(insurer) == before
    per_transaction = camt054_credits([{"amount": 30_000, "e2e": bills[0].number}], message_id="NTF-CR-7")
    with pytest.raises(receipts.ReceiptError, match="déjà encaissé"):
        receipts.import_camt054(per_transaction, user=treasurer)
    assert _money_state(insurer) == before


@pytest.mark.django_db
def test_one_debit_of_a_lump_sum_returned(cast, treasurer):
    insurer, (big, small), made = _collected(cast, 30_000, 12_345)
    receipts.import_camt054(camt054_lump_sum(42_345, batch_msg_id=made.reference), user=treasurer)
    receipts.import_camt054(camt054_returns([{"amount": 12_345, "e2e": small.number, "reason": "MS02"}]))
    big.refresh_from_db(), small.refresh_from_db()
    assert (big.status, small.status) == (Statement.Status.PAID, Statement.Status.RETURNED)
    assert books.balance(accounting.insurer_receivable(insurer)) == 12_345
    money_ok()


@pytest.mark.django_db
@override_settings(REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS=10_000)
def test_a_waiting_manual_receipt_discarded_is_never_posted(cast, billed, treasurer, treasurer2):
    insurer, first, _second = billed
    waiting = receipts.record_manual_receipt(
        insurer=insurer, statement=first, amount_cents=20_000, received_on=timezone.localdate(),
        reference="VIR 44", user=treasurer,
    )  # fmt: skip
    with pytest.raises(receipts.ReceiptError, match="Indiquez pourquoi"):
        receipts.discard_manual_receipt(waiting, user=treasurer, reason="  ")
    with pytest.raises(receipts.ReceiptError, match="trésorerie") as caught:
        receipts.discard_manual_receipt(waiting, user=cast.admin, reason="erreur")
    assert caught.value.code == "forbidden"
    before = Transaction.objects.count()
    receipts.discard_manual_receipt(waiting, user=treasurer2, reason="montant mal saisi")
    waiting.refresh_from_db()
    assert waiting.discarded_by == treasurer2 and waiting.discard_reason == "montant mal saisi"
    assert list(receipts.pending_manual_receipts()) == []
    with pytest.raises(receipts.ReceiptError, match="écarté") as caught:
        receipts.approve_manual_receipt(waiting, user=treasurer2)
    assert caught.value.code == "discarded"
    with pytest.raises(receipts.ReceiptError, match="déjà écarté"):
        receipts.discard_manual_receipt(waiting, user=treasurer, reason="encore")
    assert Transaction.objects.count() == before and waiting.transaction_id is None
    assert books.balance(accounting.insurer_receivable(insurer)) == 15_000
    event = SecurityEvent.objects.get(tag="billing.receipt_discarded")
    assert event.details["receipt"] == waiting.pk and event.details["reason"] == "montant mal saisi"
    # Its author may discard too; the same receipt can then be entered again correctly.
    again = receipts.record_manual_receipt(
        insurer=insurer, statement=first, amount_cents=20_000, received_on=timezone.localdate(),
        reference="VIR 44", user=treasurer,
    )  # fmt: skip
    receipts.discard_manual_receipt(again, user=treasurer, reason="doublon")
    posted = receipts.record_manual_receipt(
        insurer=insurer, statement=first, amount_cents=5_000, received_on=timezone.localdate(),
        reference="VIR 45", user=treasurer,
    )  # fmt: skip
    with pytest.raises(receipts.ReceiptError, match="en attente d'approbation"):
        receipts.discard_manual_receipt(posted, user=treasurer2, reason="trop tard")
    money_ok()


@pytest.mark.django_db
def test_the_database_refuses_a_discarded_receipt_with_a_posting(billed, treasurer):
    insurer, _first, _second = billed
    tx = accounting.post(
        "receipt", [(accounting.operator_bank(), 1), (accounting.insurer_receivable(insurer), -1)],
        idempotency_key="t-discarded", source=("receipt", "t"), effective_date=timezone.localdate(),
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        Receipt.objects.create(insurer=insurer, amount_cents=1, received_on=timezone.localdate(), source="manual",
                               transaction=tx, discarded_at=timezone.now())  # fmt: skip
