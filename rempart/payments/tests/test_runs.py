"""Payment runs: what a preparation takes at its cut-off, four eyes at approval, the postings, cancellation, the
stored file; every scenario ends with a green ``rempart accounts check``."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction  # noqa: F401 - connection: skipif
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounting.models import Transaction
from rempart.accounts.models import Organisation, SecurityEvent
from rempart.lib.crypto import field_cipher
from rempart.payments import runs, sepa
from rempart.payments.models import FileDownload, Payment, PaymentItem, PaymentRun
from rempart.registry.bank_details import change_bank_details
from rempart.registry.models import Professional

from .conftest import IBANS, accept_claim, credit_claim, reject_claim, set_iban, yesterday

Kind = PaymentItem.Kind


def payable(organisation) -> int:
    return accounting.balance(accounting.professional_payable(organisation))


def ledger_is_sound() -> None:
    call_command("accounts", "check")  # raises CommandError (exit 1) on any break


def payment_of(run: PaymentRun, organisation) -> Payment:
    return run.payments.get(organisation=organisation)


def tags() -> list[str]:
    return list(
        SecurityEvent.objects.filter(tag__startswith="payments.").order_by("pk").values_list("tag", flat=True)
    )


# ---------------------------------------------------------------------------------------------- preparation


def test_a_run_pays_each_organisation_its_balance_at_the_cutoff_with_one_line_per_transaction(
    cast, owed, preparer
):
    optician, pharmacy = cast.optician, cast.other_shop
    later = accept_claim(cast, optician, 999, day=timezone.localdate())  # after the cut-off: waits
    run = runs.prepare_run(yesterday(), user=preparer)
    assert run.reference == f"PR-{yesterday():%Y%m%d}-001" and run.status == PaymentRun.Status.PREPARED
    assert (run.transfer_count, run.total_cents) == (2, 17_250)
    first = payment_of(run, optician)
    assert first.amount_cents == 14_250 and first.status == Payment.Status.PREPARED
    assert first.reference == f"{run.reference}-O{optician.pk}" and sepa.is_sepa_id(first.reference)
    assert first.iban_masked == "FR76 •••• 0189" and first.bic == "AGRIFRPPXXX"
    assert first.creditor_name == "Optique du Test" and not first.iban_cipher  # encrypted only at approval
    lines = sorted(first.items.values_list("kind", "claim_id", "amount_cents"))
    assert lines == sorted((Kind.CLAIM, claim.pk, claim.accepted_cents) for claim in owed["optician"])
    assert later.pk not in PaymentItem.objects.values_list("claim_id", flat=True)
    assert payment_of(run, pharmacy).amount_cents == 3_000
    event = SecurityEvent.objects.get(tag="payments.run_prepared")
    assert (
        event.user == preparer
        and event.details["run"] == run.reference
        and event.details["total_cents"] == 17_250
    )
    # Preparing moves no money: the professionals are still owed everything.
    assert payable(optician) == -(14_250 + 999) and payable(pharmacy) == -3_000
    ledger_is_sound()


def test_credit_notes_net_and_a_negative_balance_waits_for_the_next_run(cast, payees, preparer, approver):
    optician, pharmacy = payees
    sold = accept_claim(cast, optician, 10_000)
    credit_claim(sold, 3_000)
    accept_claim(cast, pharmacy, 2_000)
    run = runs.prepare_run(yesterday(), user=preparer)
    lines = dict(payment_of(run, optician).items.values_list("kind", "amount_cents"))
    assert lines == {Kind.CLAIM: 10_000, Kind.CREDIT_NOTE: -3_000}
    assert payment_of(run, optician).amount_cents == 7_000
    runs.approve_run(run, user=approver)
    assert payable(optician) == 0 and payable(pharmacy) == 0
    # The pharmacy gives back more than it is owed: nothing is paid, the balance is carried forward.
    returned = PaymentItem.objects.get(payment__organisation=pharmacy).claim
    credit_claim(returned, 2_000)
    accept_claim(cast, pharmacy, 500)
    accept_claim(cast, optician, 1_000)
    second = runs.prepare_run(yesterday(), user=preparer)
    assert not second.payments.filter(organisation=pharmacy).exists()
    assert payable(pharmacy) == 1_500  # the pharmacy owes 15,00 €: nothing leaves
    runs.approve_run(second, user=approver)
    accept_claim(cast, pharmacy, 4_000)
    third = runs.prepare_run(yesterday(), user=preparer)
    carried = payment_of(third, pharmacy)
    assert carried.amount_cents == 2_500 and carried.items.count() == 3  # −20,00 + 5,00 + 40,00
    ledger_is_sound()


def test_an_organisation_without_a_usable_iban_is_held_with_its_reason_and_paid_once_it_has_one(
    cast, payees, preparer, approver
):
    optician, pharmacy = payees
    pharmacy.professional.iban_cipher = None
    pharmacy.professional.save(update_fields=["iban_cipher"])
    accept_claim(cast, optician, 1_000)
    accept_claim(cast, pharmacy, 2_000)
    run = runs.prepare_run(yesterday(), user=preparer)
    held = payment_of(run, pharmacy)
    assert (held.status, held.held_reason, held.amount_cents, held.items.count()) == (
        "held",
        "no_iban",
        2_000,
        0,
    )
    assert (run.transfer_count, run.total_cents) == (1, 1_000)
    runs.approve_run(run, user=approver)
    assert [p.reference for p in run.payments.filter(status="sent")] == [f"{run.reference}-O{optician.pk}"]
    assert sepa.end_to_end_ids(bytes(PaymentRun.objects.get(pk=run.pk).file_content)) == [
        f"{run.reference}-O{optician.pk}"
    ]
    assert payable(pharmacy) == -2_000  # still owed, nothing posted
    set_iban(pharmacy, *IBANS["other_shop"])
    later = runs.prepare_run(yesterday(), user=preparer)
    assert (
        payment_of(later, pharmacy).amount_cents == 2_000 and payment_of(later, pharmacy).status == "prepared"
    )
    ledger_is_sound()


def test_during_an_iban_hold_the_previous_iban_is_paid_and_without_one_the_payment_is_held(
    cast, payees, preparer, approver, mailoutbox
):
    """The hijacked-account scenario end to end: a new IBAN is asked for, a run is prepared and approved within
    the hold: not a cent goes to the new IBAN."""
    optician, pharmacy = payees
    thief = "FR7630004000000000000000151"
    change_bank_details(optician.professional, thief, "BNPAFRPP", by=cast.owner)
    pharmacy.professional.iban_cipher = None  # no previous IBAN: nothing to pay during the hold
    pharmacy.professional.save(update_fields=["iban_cipher"])
    change_bank_details(pharmacy.professional, thief, "BNPAFRPP", by=cast.outsider)
    accept_claim(cast, optician, 1_000)
    accept_claim(cast, pharmacy, 2_000)
    run = runs.approve_run(runs.prepare_run(yesterday(), user=preparer), user=approver)
    paid = payment_of(run, optician)
    assert paid.status == "sent" and paid.iban_masked == "FR76 •••• 0189"
    assert field_cipher().decrypt("iban", bytes(paid.iban_cipher)) == IBANS["optician"][0]
    assert payment_of(run, pharmacy).held_reason == "iban_on_hold"
    assert thief.encode() not in bytes(run.file_content)
    ledger_is_sound()


def test_where_to_pay_costs_a_few_queries_for_many_professionals(cast, payees, django_assert_max_num_queries):
    optician, pharmacy = payees
    change_bank_details(optician.professional, "FR7630004000000000000000151", "BNPAFRPP", by=cast.owner)
    professionals = [Professional.objects.get(pk=o.professional_id) for o in (optician, pharmacy)]
    with django_assert_max_num_queries(2):
        destinations = runs.accounts_to_pay(professionals, timezone.now())
    assert destinations[pharmacy.professional_id].iban == IBANS["other_shop"][0]
    assert (
        destinations[optician.professional_id].iban == IBANS["optician"][0]
    )  # the previous one, during the hold


def test_a_failed_iban_or_a_suspended_organisation_is_held(cast, payees, preparer):
    optician, pharmacy = payees
    pharmacy.professional.iban_failed_at = timezone.now()
    pharmacy.professional.save(update_fields=["iban_failed_at"])
    Organisation.objects.filter(pk=optician.pk).update(status=Organisation.Status.SUSPENDED)
    accept_claim(cast, optician, 1_000)
    accept_claim(cast, pharmacy, 2_000)
    with pytest.raises(runs.PaymentRunError) as refused:
        runs.prepare_run(yesterday(), user=preparer)
    assert refused.value.code == "nothing_to_pay" and "retenues" in refused.value.message
    assert not PaymentRun.objects.exists() and not Payment.objects.exists()
    Organisation.objects.filter(pk=optician.pk).update(status=Organisation.Status.ACTIVE)
    run = runs.prepare_run(yesterday(), user=preparer)
    assert payment_of(run, pharmacy).held_reason == "iban_failed"
    assert payment_of(run, pharmacy).iban_masked.endswith("2606")  # masked, for the console


def test_rejected_invoices_are_listed_once_with_no_money(cast, payees, preparer, approver):
    optician, _pharmacy = payees
    accept_claim(cast, optician, 1_000)
    rejected = reject_claim(cast, optician)
    run = runs.prepare_run(yesterday(), user=preparer)
    line = payment_of(run, optician).items.get(kind=Kind.REJECTED)
    assert (line.claim_id, line.amount_cents, line.transaction_id) == (rejected.pk, 0, None)
    assert payment_of(run, optician).amount_cents == 1_000
    runs.approve_run(run, user=approver)
    accept_claim(cast, optician, 500)
    later = runs.prepare_run(yesterday(), user=preparer)
    assert not payment_of(later, optician).items.filter(kind=Kind.REJECTED).exists()


def test_preparing_again_returns_the_open_run_and_another_cutoff_is_refused(cast, owed, preparer, approver):
    run = runs.prepare_run(yesterday(), user=preparer)
    assert runs.prepare_run(yesterday()).pk == run.pk  # the scheduler retrying
    with pytest.raises(runs.PaymentRunError) as refused:
        runs.prepare_run(yesterday() - dt.timedelta(days=1))
    assert refused.value.code == "run_open" and run.reference in refused.value.message
    assert PaymentRun.objects.count() == 1 and PaymentItem.objects.count() == 3
    assert tags() == ["payments.run_prepared"]
    with pytest.raises(IntegrityError), transaction.atomic():  # the database's own guard
        PaymentRun.objects.create(reference="PR-X", cutoff=yesterday(), execution_date=yesterday(),
                                  prepared_at=timezone.now())  # fmt: skip


@pytest.mark.parametrize(
    ("cutoff", "execution", "code"),
    [
        (1, None, "cutoff_in_future"),
        (-1, -1, "execution_date_past"),
        (-1, 400, "execution_date_far"),
    ],
)
def test_bad_dates_are_refused_and_change_nothing(cast, owed, preparer, cutoff, execution, code):
    today = timezone.localdate()
    execution_date = today + dt.timedelta(days=execution) if execution is not None else None
    with pytest.raises(runs.PaymentRunError) as refused:
        runs.prepare_run(today + dt.timedelta(days=cutoff), user=preparer, execution_date=execution_date)
    assert refused.value.code == code and not PaymentRun.objects.exists()


def test_a_weekend_execution_date_is_refused(cast, owed, preparer):
    saturday = timezone.localdate() + dt.timedelta(days=(5 - timezone.localdate().weekday()) % 7 or 7)
    with pytest.raises(runs.PaymentRunError, match="week-end"):
        runs.prepare_run(yesterday(), user=preparer, execution_date=saturday)
    assert runs.next_business_day(saturday).weekday() == 0


def test_nothing_owed_is_nothing_to_prepare(cast, payees, preparer):
    with pytest.raises(runs.PaymentRunError) as refused:
        runs.prepare_run(yesterday(), user=preparer)
    assert refused.value.code == "nothing_to_pay" and not PaymentRun.objects.exists()


def test_only_operator_staff_prepare(cast, owed):
    for user in (cast.owner, cast.insurer_member, cast.analyst):
        with pytest.raises(runs.PaymentRunError):
            runs.prepare_run(yesterday(), user=user)
    assert not PaymentRun.objects.exists()


# ---------------------------------------------------------------------------------------------- four eyes


def test_approval_posts_each_transfer_writes_a_valid_file_and_marks_them_sent(cast, owed, preparer, approver):
    optician, pharmacy = cast.optician, cast.other_shop
    run = runs.prepare_run(yesterday(), user=preparer)
    approved = runs.approve_run(run, user=approver)
    assert approved.status == PaymentRun.Status.APPROVED and approved.approved_by == approver
    assert payable(optician) == 0 and payable(pharmacy) == 0
    assert accounting.balance(accounting.operator_bank()) == -17_250
    content = bytes(PaymentRun.objects.get(pk=run.pk).file_content)
    assert approved.file_sha256 == hashlib.sha256(content).hexdigest()
    assert approved.file_name == f"{run.reference}.pain.001.001.09.xml"
    sepa.check_pain001(content, expected_count=2, expected_total_cents=17_250)
    for payment in run.payments.all():
        assert payment.status == Payment.Status.SENT
        tx = Transaction.objects.get(pk=payment.transaction_id)
        assert (tx.kind, tx.idempotency_key, tx.source_type, tx.source_id) == (
            "payment",
            f"payment:{payment.pk}",
            "payment",
            str(payment.pk),
        )
        iban = field_cipher().decrypt("iban", bytes(payment.iban_cipher))
        assert iban == IBANS["optician" if payment.organisation_id == optician.pk else "other_shop"][0]
        assert payment.reference.encode() in content
    assert b"FR7630006000011234567890189" in content  # the file is the one place an IBAN is in clear
    event = SecurityEvent.objects.get(tag="payments.run_approved")
    assert event.user == approver and event.details["sha256"] == approved.file_sha256
    assert "FR76300060" not in str(event.details)
    ledger_is_sound()


def test_the_preparer_cannot_approve_their_own_run_and_the_refusal_is_recorded(cast, owed, preparer):
    run = runs.prepare_run(yesterday(), user=preparer)
    with pytest.raises(runs.ApprovalRefused) as refused:
        runs.approve_run(run, user=preparer)
    assert refused.value.code == "preparer" and "quatre yeux" in refused.value.message
    run.refresh_from_db()
    assert run.status == PaymentRun.Status.PREPARED and not run.file_content
    assert not Transaction.objects.filter(kind="payment").exists()
    event = SecurityEvent.objects.get(tag="payments.approval_refused")
    assert event.user == preparer and event.details == {"run": run.reference, "reason": "preparer"}
    with pytest.raises(IntegrityError), transaction.atomic():  # the database refuses it too
        PaymentRun.objects.filter(pk=run.pk).update(approved_by=preparer)


def test_only_the_treasury_approves(cast, owed, preparer):
    run = runs.prepare_run(yesterday(), user=preparer)
    for user in (cast.admin, cast.analyst, cast.owner):
        with pytest.raises(runs.ApprovalRefused) as refused:
            runs.approve_run(run, user=user)
        assert refused.value.code == "not_treasury"
    assert SecurityEvent.objects.filter(tag="payments.approval_refused").count() == 3
    assert PaymentRun.objects.get(pk=run.pk).status == "prepared"


def test_a_run_prepared_by_the_scheduler_is_approved_by_any_treasury_member(cast, owed, preparer):
    run = runs.prepare_run(yesterday())
    assert run.prepared_by is None
    assert runs.approve_run(run, user=preparer).status == PaymentRun.Status.APPROVED


def test_approving_twice_pays_once(cast, owed, preparer, approver):
    run = runs.prepare_run(yesterday(), user=preparer)
    first = runs.approve_run(run, user=approver)
    again = runs.approve_run(run, user=approver)
    assert again.file_sha256 == first.file_sha256
    assert Transaction.objects.filter(kind="payment").count() == 2
    assert tags().count("payments.run_approved") == 1
    assert accounting.balance(accounting.operator_bank()) == -17_250
    with pytest.raises(runs.ApprovalRefused):  # and the preparer still cannot, even now
        runs.approve_run(run, user=cast.admin)
    ledger_is_sound()


def test_a_hold_that_began_since_preparation_holds_the_payment_and_frees_its_lines(
    cast, owed, preparer, approver, monkeypatch
):
    optician, pharmacy = cast.optician, cast.other_shop
    run = runs.prepare_run(yesterday(), user=preparer)
    real = runs.bank_details.account_to_pay

    def on_hold(professional, at=None):
        if professional.pk == pharmacy.professional_id:
            return runs.bank_details.PayTo(None, "", "FR14 •••• 2606", "iban_on_hold")
        return real(professional, at)

    monkeypatch.setattr(runs.bank_details, "account_to_pay", on_hold)
    approved = runs.approve_run(run, user=approver)
    held = payment_of(approved, pharmacy)
    assert (held.status, held.held_reason, held.items.count(), held.transaction_id) == (
        "held",
        "iban_on_hold",
        0,
        None,
    )
    assert (approved.transfer_count, approved.total_cents) == (1, 14_250)
    assert payable(pharmacy) == -3_000 and payable(optician) == 0
    monkeypatch.setattr(runs.bank_details, "account_to_pay", real)
    later = runs.prepare_run(yesterday(), user=preparer)
    assert payment_of(later, pharmacy).items.get().claim_id == owed["pharmacy"][0].pk
    ledger_is_sound()


def test_a_bank_file_that_does_not_validate_changes_nothing(cast, owed, preparer, approver, settings):
    run = runs.prepare_run(yesterday(), user=preparer)
    settings.REMPART_PAYMENTS_DEBTOR = {**settings.REMPART_PAYMENTS_DEBTOR, "iban": "FR76-NOT-AN-IBAN"}
    with pytest.raises(runs.ApprovalRefused) as refused:
        runs.approve_run(run, user=approver)
    assert refused.value.code == "bank_file_invalid" and "IBAN" in refused.value.message
    assert "FR76-NOT" not in refused.value.message  # the refused value is never repeated
    run.refresh_from_db()
    assert run.status == "prepared" and not run.file_sha256 and run.approved_by is None
    assert set(run.payments.values_list("status", flat=True)) == {"prepared"}
    assert not Transaction.objects.filter(kind="payment").exists() and payable(cast.optician) == -14_250
    assert SecurityEvent.objects.get(tag="payments.approval_refused").details["reason"] == "bank_file_invalid"
    ledger_is_sound()


def test_an_execution_date_passed_since_preparation_is_refused(cast, owed, preparer, approver):
    run = runs.prepare_run(yesterday(), user=preparer)
    PaymentRun.objects.filter(pk=run.pk).update(execution_date=yesterday())
    with pytest.raises(runs.ApprovalRefused, match="passée"):
        runs.approve_run(run, user=approver)


# ---------------------------------------------------------------------------------------------- cancellation


def test_cancelling_releases_every_line_for_the_next_run(cast, owed, preparer, approver):
    run = runs.prepare_run(yesterday(), user=preparer)
    with pytest.raises(runs.PaymentRunError):
        runs.cancel_run(run, user=preparer, reason="  ")
    with pytest.raises(runs.PaymentRunError):
        runs.cancel_run(run, user=cast.admin, reason="pas la sienne")  # neither its author nor the treasury
    cancelled = runs.cancel_run(run, user=preparer, reason="date d'arrêté erronée")
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "date d'arrêté erronée"
    assert (
        set(run.payments.values_list("status", flat=True)) == {"cancelled"}
        and not PaymentItem.objects.exists()
    )
    with pytest.raises(runs.ApprovalRefused):
        runs.approve_run(run, user=approver)
    again = runs.prepare_run(yesterday(), user=preparer)
    assert again.reference.endswith("-002") and again.total_cents == 17_250
    assert tags() == ["payments.run_prepared", "payments.run_cancelled", "payments.approval_refused",
                      "payments.run_prepared"]  # fmt: skip
    runs.approve_run(again, user=approver)
    with pytest.raises(runs.PaymentRunError):
        runs.cancel_run(again, user=approver, reason="trop tard")  # approved: the money left
    ledger_is_sound()


# ---------------------------------------------------------------------------------------------- the file


def test_each_download_serves_the_stored_bytes_and_is_recorded(cast, owed, preparer, approver):
    run = runs.approve_run(runs.prepare_run(yesterday(), user=preparer), user=approver)
    file = runs.bank_file(run, user=preparer)
    assert file.content == bytes(run.file_content) and file.sha256 == run.file_sha256
    runs.bank_file(run, user=approver)
    assert FileDownload.objects.filter(run=run).count() == 2
    assert tags().count("payments.file_downloaded") == 2
    with pytest.raises(runs.PaymentRunError):
        runs.bank_file(run, user=cast.admin)  # not the treasury


def test_a_tampered_file_is_refused(cast, owed, preparer, approver):
    run = runs.approve_run(runs.prepare_run(yesterday(), user=preparer), user=approver)
    forged = bytes(run.file_content).replace(b"FR7630006000011234567890189", b"FR7630006000019876543210925")
    PaymentRun.objects.filter(pk=run.pk).update(file_content=forged)
    run.refresh_from_db()
    with pytest.raises(runs.BankFileTampered):
        runs.bank_file(run, user=approver)
    assert not FileDownload.objects.exists() and tags()[-1] == "payments.file_tampered"


def test_only_an_approved_run_has_a_file(cast, owed, preparer, approver):
    run = runs.prepare_run(yesterday(), user=preparer)
    with pytest.raises(runs.PaymentRunError) as refused:
        runs.bank_file(run, user=approver)
    assert refused.value.code == "no_file"


# ---------------------------------------------------------------------------------------------- races (PostgreSQL)


def _race(count: int, work) -> tuple[list, list]:
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results.append(work(n))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def _slow_fill(monkeypatch):
    """Hold each preparation's transaction open a moment, so that the racers really overlap."""
    fill = runs._fill

    def slow(run):
        fill(run)
        time.sleep(0.3)

    monkeypatch.setattr(runs, "_fill", slow)


pg_race = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),  # SQLite serialises writers: nothing races
]


@pytest.mark.parametrize("advisory_lock", [True, False], ids=["lock", "constraint-only"])
@pg_race[0]
@pg_race[1]
def test_racing_preparations_take_each_transaction_at_most_once(
    cast, owed, preparer, monkeypatch, advisory_lock
):
    _slow_fill(monkeypatch)
    if not advisory_lock:  # the database's constraints alone still hold
        monkeypatch.setattr(runs, "_lock_runs", lambda: None)
    results, errors = _race(4, lambda n: runs.prepare_run(yesterday()).pk)
    assert not errors, errors
    assert len(set(results)) == 1 and PaymentRun.objects.count() == 1
    taken = list(PaymentItem.objects.exclude(transaction=None).values_list("transaction_id", flat=True))
    assert len(taken) == len(set(taken)) == 3
    assert PaymentRun.objects.get().total_cents == 17_250


@pg_race[0]
@pg_race[1]
def test_a_preparation_racing_an_approval_never_pays_twice(cast, owed, preparer, approver, monkeypatch):
    run = runs.prepare_run(yesterday(), user=preparer)
    results, errors = _race(
        2,
        lambda n: runs.approve_run(run, user=approver).status if n == 0 else runs.prepare_run(yesterday()).pk,
    )
    assert PaymentRun.objects.filter(status="approved").count() == 1
    assert Transaction.objects.filter(kind="payment").count() == 2
    taken = list(PaymentItem.objects.exclude(transaction=None).values_list("transaction_id", flat=True))
    assert len(taken) == len(set(taken)) == 3
    assert all(isinstance(e, runs.PaymentRunError) and e.code == "nothing_to_pay" for e in errors), errors
    ledger_is_sound()
