"""Bank returns: a pain.002 rejection puts the amount back as payable, marks the IBAN, tells the owners; a camt.054
settles; every file that does not match what Rempart sent is refused whole and changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from rempart.accounting.models import Transaction, TransactionKind
from rempart.accounts.models import SecurityEvent
from rempart.payments import bank_xml, returns
from rempart.payments.models import BankFileImport, Payment, PaymentRun
from rempart.payments.returns import BankFileRefused, import_bank_file
from rempart.payments.tests.bank_files import (
    Block,
    NEntry,
    NTx,
    Tx,
    camt054,
    group_rejection,
    pain002,
    rejecting,
    sent_of,
    settling,
)
from rempart.payments.tests.returns_support import (  # noqa: F401 - fixtures
    NEW_IBAN,
    OTHER_IBAN,
    OTHER_RUN_REF,
    RUN_REF,
    SHOP_IBAN,
    approved_run,
    bank,
    books_are_sound,
    payable,
    sent_run_fixture,
    set_iban,
    state,
    treasurer_fixture,
)

SHOP, PHARMACY = f"{RUN_REF}-OPT", f"{RUN_REF}-PHA"


def refusal(content: bytes, user=None) -> str:
    before = state()
    with pytest.raises(BankFileRefused) as caught:
        import_bank_file(content, user=user)
    assert state() == before, "a refused file changed something"
    return caught.value.message


def reload(payment: Payment) -> Payment:
    return Payment.objects.get(pk=payment.pk)


# --- pain.002: a rejected transfer -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", bank_xml.PAIN_002_VERSIONS)
def test_a_rejected_transfer_is_payable_again_and_its_iban_failed(
    cast, sent_run, treasurer, version, django_capture_on_commit_callbacks
):
    assert (payable(cast.optician), bank()) == (0, -(12345 + 6789))
    with django_capture_on_commit_callbacks(execute=True):
        result = import_bank_file(rejecting(sent_run.run, {SHOP: "AC04"}, version=version), user=treasurer)
    assert returns.summary_line(result.summary) == (
        f"pain.002 STS-0001 for run {RUN_REF}: 1 rejected (123,45\u00a0€, 1 IBAN marked failed), "
        "0 settled (0,00\u00a0€), 0 already settled"
    )

    shop = reload(sent_run.shop)
    assert (shop.status, shop.return_reason) == (Payment.Status.RETURNED, "AC04")
    assert shop.returned_at is not None
    reversal = shop.return_transaction
    assert reversal.kind == TransactionKind.PAYMENT_RETURNED and reversal.reverses_id == shop.transaction_id
    assert payable(cast.optician) == -12345  # owed again: the next run pays it
    assert bank() == -6789
    assert reload(sent_run.other).status == Payment.Status.SENT

    professional = cast.optician.professional
    professional.refresh_from_db()
    assert professional.iban_failed_at is not None and professional.iban_failed_reason == "AC04"
    other = cast.other_shop.professional
    other.refresh_from_db()
    assert other.iban_failed_at is None

    assert result.kind == "pain.002"
    summary = result.summary
    assert (summary["run"], summary["rejected"], summary["rejected_cents"], summary["iban_failed"]) == (
        RUN_REF,
        1,
        12345,
        1,
    )
    assert summary["returned"][0]["iban_masked"] == "FR76 •••• 7830"
    stored = BankFileImport.objects.get()
    assert (stored.run, stored.imported_by, stored.message_id, stored.summary) == (
        sent_run.run,
        treasurer,
        "STS-0001",
        summary,
    )

    event = SecurityEvent.objects.get(tag="payments.transfer_returned")
    assert (event.organisation, event.user) == (cast.optician, treasurer)
    assert event.details["reference"] == SHOP and event.details["iban"] == "FR76 •••• 7830"
    assert SecurityEvent.objects.filter(tag="payments.bank_file_imported", user=treasurer).count() == 1

    [message] = mail.outbox
    assert message.to == [cast.owner.email]
    assert SHOP in message.body and "123,45" in message.body and "FR76 •••• 7830" in message.body
    assert "Compte clôturé (AC04)" in message.body
    for text in (message.body, message.subject, str(summary), str(event.details)):
        assert SHOP_IBAN not in text and SHOP_IBAN[4:] not in text
    assert books_are_sound()


def test_a_reason_on_the_operators_side_leaves_the_iban_usable(
    cast, sent_run, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = import_bank_file(rejecting(sent_run.run, {SHOP: "AM04"}))
    assert result.summary["iban_failed"] == 0
    professional = cast.optician.professional
    professional.refresh_from_db()
    assert professional.iban_failed_at is None
    assert reload(sent_run.shop).return_reason == "AM04"
    assert "retenus" not in mail.outbox[0].body.lower() or "nouvel IBAN" not in mail.outbox[0].body
    assert payable(cast.optician) == -12345
    assert books_are_sound()


def test_an_unknown_or_missing_reason_counts_as_an_account_reason(cast, sent_run):
    import_bank_file(rejecting(sent_run.run, {SHOP: "ZZ99", PHARMACY: None}))
    for organisation in (cast.optician, cast.other_shop):
        organisation.professional.refresh_from_db()
        assert organisation.professional.iban_failed_at is not None
    assert reload(sent_run.shop).return_reason == "ZZ99"
    assert reload(sent_run.other).return_reason == ""


def test_an_iban_replaced_since_the_run_is_not_marked_failed(cast, sent_run):
    set_iban(cast.optician.professional, NEW_IBAN, "CCBPFRPPXXX")  # the owner gave a new IBAN, released since
    result = import_bank_file(rejecting(sent_run.run, {SHOP: "AC01"}))
    cast.optician.professional.refresh_from_db()
    assert cast.optician.professional.iban_failed_at is None
    assert result.summary["returned"][0]["iban_failed"] is False
    assert reload(sent_run.shop).status == Payment.Status.RETURNED


def test_a_group_rejection_rejects_every_transfer_of_the_run(cast, sent_run):
    result = import_bank_file(group_rejection(sent_run.run, "FF01"))
    assert {reload(p).status for p in (sent_run.shop, sent_run.other)} == {Payment.Status.RETURNED}
    assert {reload(p).return_reason for p in (sent_run.shop, sent_run.other)} == {"FF01"}
    assert (result.summary["rejected"], result.summary["rejected_cents"], result.summary["iban_failed"]) == (
        2,
        19134,
        0,
    )
    assert (payable(cast.optician), payable(cast.other_shop), bank()) == (-12345, -6789, 0)
    assert books_are_sound()


def test_a_rejected_block_rejects_its_transfers_and_a_listed_reason_wins(sent_run):
    block = sent_of(sent_run.run).transfers[SHOP].payment_info_id
    content = pain002(RUN_REF, [Block(block, "RJCT", "AM05", [Tx(PHARMACY, "RJCT", "AC06")])])
    import_bank_file(content)
    assert (reload(sent_run.shop).return_reason, reload(sent_run.other).return_reason) == ("AM05", "AC06")


def test_a_partial_report_settles_the_accepted_and_returns_the_rejected(cast, sent_run):
    block = sent_of(sent_run.run).transfers[SHOP].payment_info_id
    content = pain002(
        RUN_REF, [Block(block, "PART", None, [Tx(SHOP, "RJCT", "MD07", 12345), Tx(PHARMACY, "ACSC", None, 6789)])],
        group_status="PART", original_count=2, original_control_sum_cents=19134,
    )  # fmt: skip
    result = import_bank_file(content)
    assert reload(sent_run.shop).status == Payment.Status.RETURNED
    other = reload(sent_run.other)
    assert other.status == Payment.Status.SETTLED  # at the report's time (its CreDtTm, local time)
    assert timezone.localtime(other.settled_at).replace(tzinfo=None) == dt.datetime(2026, 12, 3, 9, 30)
    assert (result.summary["rejected"], result.summary["settled"]) == (1, 1)
    assert books_are_sound()


def test_an_acceptance_only_report_changes_no_transfer(sent_run):
    before = state()
    result = import_bank_file(pain002(RUN_REF, group_status="ACSP"))
    assert result.summary["pending"] == {"ACSP": 2} and result.summary["rejected"] == 0
    after = state()
    assert after["payments"] == before["payments"] and after["transactions"] == before["transactions"]
    assert after["imports"] == 1


def test_the_bank_sample_file_is_imported(sent_run, cast):
    from rempart.payments.tests.test_bank_xml import FILES

    result = import_bank_file((FILES / "pain002_v03_bank_sample.xml").read_bytes())
    assert result.summary["returned"][0]["reason_info"] == "COMPTE CLOTURE"
    assert reload(sent_run.shop).status == Payment.Status.RETURNED
    assert reload(sent_run.other).status == Payment.Status.SENT
    assert result.summary["pending"] == {"ACSP": 1}


# --- refusals: nothing changes ---------------------------------------------------------------------------------


def test_the_same_file_twice_is_refused_with_the_date_of_the_first_import(sent_run):
    content = rejecting(sent_run.run, {SHOP: "AC04"})
    import_bank_file(content)
    message = refusal(content)
    assert message.startswith("Fichier déjà importé le ") and "STS-0001" in message and RUN_REF in message


def test_a_transfer_already_returned_is_refused_even_in_another_file(sent_run):
    import_bank_file(rejecting(sent_run.run, {SHOP: "AC04"}))
    message = refusal(rejecting(sent_run.run, {SHOP: "AC04"}, message_id="STS-0002"))
    assert f"{SHOP} a déjà été rejeté le " in message


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda run: rejecting(run, {SHOP: "AC04"}, with_amounts=False).replace(
                RUN_REF.encode() + b"</Orgnl", b"PR-19990101-001</Orgnl"
            ),
            "Aucune campagne de paiement ne porte la référence « PR-19990101-001 »",
        ),  # fmt: skip
        (
            lambda run: rejecting(run, {"PR-20261130-001-XYZ": "AC04"}),
            "aucun virement de Rempart ne porte la référence « PR-20261130-001-XYZ »",
        ),  # fmt: skip
        (
            lambda run: rejecting(run, {f"{OTHER_RUN_REF}-OPT": "AC04"}),
            f"appartient à la campagne {OTHER_RUN_REF}, pas à {RUN_REF}",
        ),  # fmt: skip
        (
            lambda run: pain002(
                RUN_REF,
                [
                    Block(
                        sent_of(run).transfers[SHOP].payment_info_id,
                        "PART",
                        None,
                        [Tx(SHOP, "RJCT", "AC04", 12346)],
                    )
                ],
            ),
            "est de 123,45\u00a0€, le fichier dit 123,46\u00a0€",
        ),  # fmt: skip
        (
            lambda run: pain002(
                RUN_REF,
                [
                    Block(
                        sent_of(run).transfers[SHOP].payment_info_id,
                        "PART",
                        None,
                        [Tx(SHOP, "RJCT", "AC04", 12345, currency="USD")],
                    )
                ],
            ),
            "devise USD",
        ),  # fmt: skip
        (
            lambda run: pain002(RUN_REF, group_status="RJCT", original_count=3),
            "annonce 3 virements",
        ),  # fmt: skip
        (
            lambda run: pain002(RUN_REF, group_status="RJCT", original_control_sum_cents=19135),
            "pour 191,35\u00a0€, nous en avons envoyé 2 pour 191,34\u00a0€",
        ),  # fmt: skip
        (
            lambda run: pain002(RUN_REF, [Block("PR-20261130-001-9", "RJCT")]),
            "le lot « PR-20261130-001-9 » (OrgnlPmtInfId) n'est pas dans le fichier",
        ),  # fmt: skip
        (lambda run: pain002(RUN_REF, group_status="XXXX"), "statut « XXXX » inconnu"),
        (
            lambda run: pain002(RUN_REF, group_status="RJCT", original_name="pain.008.001.02"),
            "pain.008.001.02",
        ),
        (
            lambda run: pain002(
                RUN_REF,
                [
                    Block(
                        sent_of(run).transfers[SHOP].payment_info_id,
                        "PART",
                        None,
                        [Tx(SHOP, "RJCT"), Tx(SHOP, "RJCT")],
                    )
                ],
            ),
            "figure deux fois",
        ),  # fmt: skip
        (
            lambda run: pain002(
                RUN_REF,
                [Block(sent_of(run).transfers[SHOP].payment_info_id, "RJCT", None, [Tx(SHOP, "ACSC", None)])],
            ),
            "dans un lot ou un groupe rejeté",
        ),  # fmt: skip
        (
            lambda run: pain002(
                RUN_REF,
                [Block(sent_of(run).transfers[SHOP].payment_info_id, None, None, [Tx(SHOP, None, None)])],
            ),
            "n'a pas de statut",
        ),  # fmt: skip
    ],
    ids=[
        "unknown-run",
        "unknown-e2e",
        "foreign-e2e",
        "amount",
        "currency",
        "count",
        "control-sum",
        "block",
        "status",
        "not-pain001",
        "twice",
        "contradiction",
        "no-status",
    ],  # fmt: skip
)
def test_a_file_that_does_not_match_what_was_sent_is_refused_whole(cast, sent_run, build, expected):
    set_iban(cast.optician.professional, SHOP_IBAN, "BNPAFRPPXXX")
    approved_run(
        OTHER_RUN_REF, [(cast.optician, SHOP_IBAN, 100, f"{OTHER_RUN_REF}-OPT")], insurer=cast.insurer.insurer
    )
    content = build(sent_run.run)
    assert expected in refusal(content)
    assert books_are_sound()


def test_a_file_rejecting_a_good_and_a_bad_transfer_changes_neither(sent_run):
    content = pain002(
        RUN_REF, [Block(sent_of(sent_run.run).transfers[SHOP].payment_info_id, "PART", None,
                        [Tx(SHOP, "RJCT", "AC04", 12345), Tx(PHARMACY, "RJCT", "AC04", 1)])],
    )  # fmt: skip
    assert "PR-20261130-001-PHA est de 67,89" in refusal(content)


def test_a_held_transfer_was_not_sent_and_cannot_be_rejected(cast, sent_run):
    held = Payment.objects.create(
        run=sent_run.run, organisation=cast.insurer, reference=f"{RUN_REF}-HLD", amount_cents=5,
        status=Payment.Status.HELD, held_reason="no_iban",
    )  # fmt: skip
    message = refusal(rejecting(sent_run.run, {held.reference: "AC04"}, with_amounts=False))
    assert "n'était pas dans le fichier de la campagne" in message and "Retenu" in message


@pytest.mark.parametrize("status", [PaymentRun.Status.PREPARED, PaymentRun.Status.CANCELLED])
def test_a_run_that_was_not_approved_has_nothing_to_return(sent_run, status):
    content = rejecting(sent_run.run, {SHOP: "AC04"})
    PaymentRun.objects.filter(pk=sent_run.run.pk).update(status=status)
    assert "n'est pas approuvée" in refusal(content)


@pytest.mark.parametrize(
    "content",
    [b"not xml", b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.09'/>"],
)
def test_unreadable_files_are_refused_before_anything(sent_run, content):
    assert refusal(content)


def test_an_xml_bomb_is_refused_and_changes_nothing(sent_run):
    from rempart.payments.tests.test_bank_xml import FILES

    assert "DTD" in refusal((FILES / "attack_billion_laughs.xml").read_bytes())
    assert "DTD" in refusal((FILES / "attack_xxe_file.xml").read_bytes())


# --- atomic ----------------------------------------------------------------------------------------------------


def test_a_failure_half_way_leaves_nothing_half_applied(monkeypatch, sent_run):
    calls = []
    real = returns.mark_iban_failed

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(returns, "mark_iban_failed", fail_on_second)
    before = state()
    with pytest.raises(RuntimeError):
        import_bank_file(rejecting(sent_run.run, {SHOP: "AC04", PHARMACY: "AC04"}))
    assert len(calls) == 2 and state() == before
    monkeypatch.setattr(returns, "mark_iban_failed", real)
    assert (
        import_bank_file(rejecting(sent_run.run, {SHOP: "AC04", PHARMACY: "AC04"})).summary["rejected"] == 2
    )
    assert books_are_sound()


def test_a_mail_server_down_does_not_undo_the_import(
    monkeypatch, sent_run, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("smtp")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", down)
    with django_capture_on_commit_callbacks(execute=True):
        import_bank_file(rejecting(sent_run.run, {SHOP: "AC04"}))
    assert reload(sent_run.shop).status == Payment.Status.RETURNED


# --- camt.054 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", bank_xml.CAMT_054_VERSIONS)
def test_a_booked_debit_settles_transfers_and_posts_nothing(sent_run, version):
    before = Transaction.objects.count()
    result = import_bank_file(settling(sent_run.run, version=version))
    for payment in (sent_run.shop, sent_run.other):
        payment = reload(payment)
        assert payment.status == Payment.Status.SETTLED
        assert timezone.localtime(payment.settled_at).date() == dt.date(2026, 12, 4)
    assert Transaction.objects.count() == before
    assert (result.kind, result.summary["settled"], result.summary["settled_cents"]) == ("camt.054", 2, 19134)
    assert books_are_sound()


def test_a_batch_booked_without_details_settles_the_whole_batch(sent_run):
    block = sent_of(sent_run.run).transfers[SHOP].payment_info_id
    content = camt054([NEntry(19134, batch={"message_id": RUN_REF, "payment_info_id": block, "count": 2,
                                            "total_cents": 19134})])  # fmt: skip
    assert import_bank_file(content).summary["settled"] == 2


def test_the_bank_samples_settle(sent_run):
    from rempart.payments.tests.test_bank_xml import FILES

    import_bank_file((FILES / "camt054_v02_bank_sample.xml").read_bytes())
    assert (reload(sent_run.shop).status, reload(sent_run.other).status) == (
        Payment.Status.SETTLED,
        Payment.Status.SENT,
    )
    result = import_bank_file((FILES / "camt054_v08_bank_sample.xml").read_bytes())
    assert (result.summary["settled"], result.summary["already_settled"]) == (1, 1)


def test_pending_entries_change_nothing(sent_run):
    content = camt054([NEntry(12345, [NTx(SHOP, 12345, RUN_REF)], status="PDNG")])
    assert import_bank_file(content).summary["pending"] == {"PDNG": 1}
    assert reload(sent_run.shop).status == Payment.Status.SENT


def test_a_credit_returning_a_settled_transfer_puts_it_back_as_payable(cast, sent_run):
    import_bank_file(settling(sent_run.run))
    content = camt054([NEntry(12345, [NTx(SHOP, 12345, RUN_REF, return_reason="AC04")], credit_debit="CRDT")],
                      message_id="NTF-0002")  # fmt: skip
    result = import_bank_file(content)
    shop = reload(sent_run.shop)
    assert (shop.status, shop.return_reason, result.summary["rejected"]) == (
        Payment.Status.RETURNED,
        "AC04",
        1,
    )
    assert shop.settled_at is not None  # it was debited, then came back
    assert payable(cast.optician) == -12345
    assert books_are_sound()


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([NEntry(500, [NTx(SHOP, 500, RUN_REF)], credit_debit="CRDT")], "crédit sans motif de retour"),
        ([NEntry(12345, [NTx(SHOP, 12345, RUN_REF)], reversal=True)], "écriture d'annulation"),
        ([NEntry(12345, [NTx(SHOP, 12345, RUN_REF)], status="XXXX")], "statut d'écriture « XXXX »"),
        ([NEntry(12345, [NTx(SHOP, 12345, RUN_REF)], currency="CHF")], "devise CHF"),
        ([NEntry(19134, [NTx(SHOP, 12345, RUN_REF), NTx(PHARMACY, 6788, RUN_REF)])], "le fichier dit 67,88"),
        (
            [NEntry(19135, [NTx(SHOP, 12345, RUN_REF), NTx(PHARMACY, 6789, RUN_REF)])],
            "ses virements font 191,34",
        ),
        (
            [NEntry(12345, [NTx(SHOP, 12345, RUN_REF)]), NEntry(100, [NTx(f"{OTHER_RUN_REF}-OPT", 100)])],
            "plusieurs campagnes",
        ),  # fmt: skip
        ([NEntry(12345, [NTx(f"{RUN_REF}-ZZZ", 12345)])], "aucun virement de Rempart"),
        ([NEntry(12345, [NTx(None, 12345)])], "ni EndToEndId ni référence de lot"),
        ([NEntry(12345, [NTx(SHOP, 12345, OTHER_RUN_REF)])], "plusieurs campagnes"),
        ([NEntry(10, batch={"message_id": RUN_REF, "payment_info_id": "NOPE"})], "le lot « NOPE »"),
        ([NEntry(19134, batch={"message_id": RUN_REF, "count": 3})], "annonce 3 virements"),
        ([NEntry(12345)], "ne détaille ni ses virements"),
    ],
    ids=[
        "credit",
        "reversal",
        "status",
        "currency",
        "amount",
        "entry-total",
        "two-runs",
        "unknown",
        "no-ref",
        "foreign-msgid",
        "batch-block",
        "batch-count",
        "no-details",
    ],  # fmt: skip
)
def test_a_notification_that_does_not_match_is_refused_whole(cast, sent_run, entries, expected):
    approved_run(
        OTHER_RUN_REF, [(cast.optician, SHOP_IBAN, 100, f"{OTHER_RUN_REF}-OPT")], insurer=cast.insurer.insurer
    )
    assert expected in refusal(camt054(entries))


def test_a_debit_after_a_rejection_contradicts_it_and_is_refused(sent_run):
    import_bank_file(rejecting(sent_run.run, {SHOP: "AC04"}))
    assert "ne peut plus être réglé" in refusal(settling(sent_run.run, [SHOP]))


# --- the command -----------------------------------------------------------------------------------------------


def test_the_import_status_command_imports_and_refuses(sent_run, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command, get_commands

    if "payments" not in get_commands():
        pytest.skip("the payments command is not there yet")
    path = tmp_path / "sts.xml"
    path.write_bytes(rejecting(sent_run.run, {SHOP: "AC04"}))
    out = StringIO()
    call_command("payments", "import-status", str(path), stdout=out)
    assert reload(sent_run.shop).status == Payment.Status.RETURNED
    with pytest.raises((CommandError, SystemExit)):
        call_command("payments", "import-status", str(path), stdout=StringIO(), stderr=StringIO())
