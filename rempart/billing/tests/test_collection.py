"""pain.008 direct-debit files: XSD-valid at generation, control sums exact, a statement collected once."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone
from lxml import etree

from rempart.accounting.models import Transaction
from rempart.accounts.models import Role, SecurityEvent
from rempart.billing import collection, receipts
from rempart.billing.models import CollectionFile, Receipt
from rempart.payments.sepa import BankFileInvalid
from rempart.testing import make_user

from .receivables_support import INSURER_IBAN, contract, second_insurer, statement

NS = {"p": collection.NAMESPACE}


def _later(days: int = 5) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=days)


@pytest.mark.django_db
def test_file_collects_open_statements_of_direct_debit_insurers_only(cast):
    insurer = cast.insurer.insurer
    contract(insurer)
    other = second_insurer()
    contract(other, direct_debit=False)
    first, second = statement(insurer, 120_050), statement(insurer, 99)
    statement(other, 5_000)  # pays by transfer: never in a direct-debit file
    before = Transaction.objects.count()

    made = collection.make_collection_file(collection_date=_later(), user=cast.admin)

    assert set(made.statements.all()) == {first, second} and made.total_cents == 120_149
    content = bytes(made.file_content)
    assert made.file_sha256 == hashlib.sha256(content).hexdigest()
    document = etree.fromstring(content)
    assert collection._schema().validate(document)  # the official XSD shipped by sepaxml
    assert document.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "1201.49"
    assert document.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert {n.text for n in document.iterfind(".//p:EndToEndId", NS)} == {first.number, second.number}
    assert {n.text for n in document.iterfind(".//p:MndtId", NS)} == {"MDT-123456789"}
    assert document.findtext(".//p:CdtrSchmeId//p:Othr/p:Id", namespaces=NS) == "FR72ZZZ123456"
    assert document.findtext(".//p:SeqTp", namespaces=NS) == "FRST"
    assert INSURER_IBAN in content.decode()  # in clear in the bank file only
    assert Transaction.objects.count() == before  # the file posts nothing: the camt.054 will
    assert SecurityEvent.objects.filter(tag="billing.collection_file").count() == 1


@pytest.mark.django_db
def test_a_statement_is_collected_once(cast):
    insurer = cast.insurer.insurer
    contract(insurer)
    first = statement(insurer, 10_000)
    collection.make_collection_file(collection_date=_later())
    with pytest.raises(collection.CollectionError, match="Aucun relevé à prélever"):
        collection.make_collection_file(collection_date=_later())
    with pytest.raises(collection.CollectionError, match="déjà prélevé"):
        collection.make_collection_file(collection_date=_later(), statements=[first])
    assert CollectionFile.objects.count() == 1
    later = statement(insurer, 2_000)
    again = collection.make_collection_file(collection_date=_later())
    assert list(again.statements.all()) == [later]
    assert b"<SeqTp>RCUR</SeqTp>" in bytes(again.file_content)


@pytest.mark.django_db
def test_only_the_open_amount_is_collected(cast):
    insurer = cast.insurer.insurer
    contract(insurer)
    partly = statement(insurer, 10_000)
    treasurer = make_user("tresor@operator.test", cast.operator, Role.TREASURY)
    receipts.record_manual_receipt(
        insurer=insurer, statement=partly, amount_cents=2_500, received_on=timezone.localdate(),
        reference="VIR 1", user=treasurer,
    )  # fmt: skip
    made = collection.make_collection_file(collection_date=_later())
    assert made.total_cents == 7_500
    assert Receipt.objects.count() == 1


@pytest.mark.django_db
def test_incomplete_mandate_or_past_date_refused_and_nothing_stored(cast):
    insurer = cast.insurer.insurer
    contract(insurer, mandate_reference="")
    statement(insurer, 10_000)
    with pytest.raises(collection.CollectionError, match="mandat complet"):
        collection.make_collection_file(collection_date=_later())
    with pytest.raises(collection.CollectionError, match="postérieure"):
        collection.make_collection_file(collection_date=timezone.localdate())
    assert not CollectionFile.objects.exists()


def test_an_invalid_document_never_passes_the_check():
    with pytest.raises(BankFileInvalid, match="schéma"):
        collection.check_pain008(
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"><CstmrDrctDbtInitn/></Document>',
            expected_count=0,
            expected_total_cents=0,
        )
    with pytest.raises(BankFileInvalid, match="DOCTYPE"):
        collection.check_pain008(
            b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', expected_count=0, expected_total_cents=0
        )


@pytest.mark.django_db
def test_the_contract_chooses_the_sepa_scheme(cast):
    insurer = cast.insurer.insurer
    contract(insurer, sepa_scheme="B2B")
    other = second_insurer()
    contract(other)  # CORE, the default
    b2b, core = statement(insurer, 10_000), statement(other, 2_500)

    made = collection.make_collection_file(collection_date=_later())

    document = etree.fromstring(bytes(made.file_content))
    assert collection._schema().validate(document)  # both schemes in one file, XSD-valid
    by_scheme = {
        block.findtext("p:PmtTpInf/p:LclInstrm/p:Cd", namespaces=NS): [
            n.text for n in block.iterfind(".//p:EndToEndId", NS)
        ]
        for block in document.iterfind(".//p:PmtInf", NS)
    }
    assert by_scheme == {"B2B": [b2b.number], "CORE": [core.number]}
    ids = [n.text for n in document.iterfind(".//p:PmtInfId", NS)]
    assert ids == [f"{made.reference}-1", f"{made.reference}-2"]
    blocks = collection.blocks(made)
    assert blocks[made.reference].total_cents == 12_500
    assert sorted(blocks[i].debits for i in ids) == sorted([((b2b.number, 10_000),), ((core.number, 2_500),)])


@pytest.mark.django_db
def test_a_b2b_only_file_is_valid_and_core_is_the_default(cast):
    from rempart.billing.models import BillingContract

    insurer = cast.insurer.insurer
    assert BillingContract(insurer=insurer).sepa_scheme == "CORE"
    contract(insurer, sepa_scheme=BillingContract.Scheme.B2B)
    statement(insurer, 10_000)
    made = collection.make_collection_file(collection_date=_later())
    document = etree.fromstring(bytes(made.file_content))
    assert collection._schema().validate(document)
    assert [n.text for n in document.iterfind(".//p:LclInstrm/p:Cd", NS)] == ["B2B"]


@pytest.mark.django_db
def test_a_returned_debit_is_open_again(cast):
    """What a file collects is what is still open: a returned direct debit no longer counts as received."""
    from rempart.billing.models import Receipt

    from .bank_credit_support import camt054_returns
    from .receivables_support import camt054_credits

    insurer = cast.insurer.insurer
    contract(insurer)
    bill = statement(insurer, 10_000)
    collection.make_collection_file(collection_date=_later())
    receipts.import_camt054(camt054_credits([{"amount": 10_000, "e2e": bill.number}]))
    assert collection.open_cents(bill) == 0
    receipts.import_camt054(camt054_returns([{"amount": 10_000, "e2e": bill.number}]))
    assert collection.open_cents(bill) == 10_000
    assert Receipt.objects.get().return_transaction is not None
