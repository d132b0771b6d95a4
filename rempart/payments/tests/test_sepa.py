"""The pain.001.001.09 writer: valid against the official XSD, exact control sums, SEPA characters only; and the
validator catches a broken file (without ever repeating an account number)."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from rempart.payments import sepa

DEBTOR = sepa.Debtor("Rempart Tiers Payant", "FR7630006000011234567890189", "AGRIFRPPXXX")
NS = {"p": sepa.NAMESPACE}
WHEN = dt.datetime(2026, 11, 30, 9, 15, 42)


def transfer(n: int, cents: int, *, name: str = "Optique du Test", iban: str = "FR1420041010050500013M02606",
             bic: str = "") -> sepa.Transfer:  # fmt: skip
    return sepa.Transfer(f"PR-20261130-001-O{n}", cents, name, iban, bic, f"Rempart PR-20261130-001-O{n}")


def write(transfers) -> bytes:
    return sepa.write_pain001(
        message_id="PR-20261130-001", created_at=WHEN, execution_date=dt.date(2026, 12, 1), debtor=DEBTOR,
        transfers=transfers,
    )  # fmt: skip


def test_a_file_validates_and_its_control_sums_are_exact_to_the_cent():
    amounts = [1, 5, 99, 100, 4_250, 123_456_789, 99_999_999_999]
    content = write(
        [transfer(n, cents, bic="AGRIFRPPXXX" if n % 2 else "") for n, cents in enumerate(amounts)]
    )
    document = sepa.validate_pain001(content)
    header = document.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.findtext("p:MsgId", namespaces=NS) == "PR-20261130-001"
    assert header.findtext("p:CreDtTm", namespaces=NS) == "2026-11-30T09:15:42"
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "7"
    assert header.findtext("p:CtrlSum", namespaces=NS) == sepa.cents_text(sum(amounts)) == "1001234612.43"
    texts = [node.text for node in document.iterfind(".//p:InstdAmt", NS)]
    assert texts == ["0.01", "0.05", "0.99", "1.00", "42.50", "1234567.89", "999999999.99"]
    assert [sepa.cents_of(text) for text in texts] == amounts
    batch = document.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert batch.findtext("p:PmtInfId", namespaces=NS) == "PR-20261130-001-1"
    assert batch.findtext("p:ReqdExctnDt/p:Dt", namespaces=NS) == "2026-12-01"
    assert batch.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == DEBTOR.iban
    assert sepa.end_to_end_ids(content) == [f"PR-20261130-001-O{n}" for n in range(7)]
    assert len(document.findall(".//p:CdtrAgt", NS)) == 3  # a BIC only where there is one


def test_names_and_texts_are_reduced_to_the_sepa_character_set():
    assert sepa.sepa_text("Optique Élégance & Fils — Œil_Vif") == "Optique Elegance + Fils -- OEil-Vif"
    assert sepa.sepa_text("Pharmacie Müller @ Straße   ñ") == "Pharmacie Muller Strasse n"
    assert sepa.sepa_text("Ça coûte 3€ ; « ok » !") == "Ca coute 3EUR ok"
    assert sepa.sepa_text("x" * 100) == "x" * 70 and sepa.sepa_text("   ") == ""
    content = write([transfer(1, 100, name="Opticien·ne d'Évry & Cie <script>")])
    name = sepa.validate_pain001(content).findtext(".//p:Cdtr/p:Nm", namespaces=NS)
    assert name == "Opticien ne d'Evry + Cie script"
    assert all(ch.isascii() for ch in content.decode())


def test_identifiers_follow_the_epc_rules():
    assert sepa.is_sepa_id("PR-20261130-001-O42")
    for bad in ("", "a" * 36, "/PR-1", "PR-1/", "PR//1", "PR 1", "PR-é"):
        assert not sepa.is_sepa_id(bad), bad


@pytest.mark.parametrize(
    ("transfers", "why"),
    [
        ([], "Aucun virement"),
        ([transfer(1, 0)], "montant"),
        ([transfer(1, -5)], "montant"),
        ([transfer(1, 100_000_000_000)], "montant"),
        ([transfer(1, 100), transfer(1, 200)], "en double"),
        ([sepa.Transfer("PR 1", 100, "X", "FR1420041010050500013M02606", "", "")], "référence"),
        ([transfer(1, 100, iban="")], "IBAN"),
    ],
)
def test_a_transfer_the_bank_would_refuse_is_refused_before_writing(transfers, why):
    with pytest.raises(sepa.BankFileInvalid, match=why):
        write(transfers)


def test_amounts_must_be_integer_cents():
    with pytest.raises(sepa.BankFileInvalid):
        write([sepa.Transfer("PR-1", 12.5, "X", "FR1420041010050500013M02606", "", "")])


def _edited(content: bytes, edit) -> bytes:
    document = etree.fromstring(content)
    edit(document)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def test_a_deliberately_broken_file_is_caught_by_the_validator():
    content = write([transfer(1, 4_250), transfer(2, 1_000)])
    sepa.check_pain001(content, expected_count=2, expected_total_cents=5_250)

    def drop_amount(document):
        node = document.find(".//p:CdtTrfTxInf/p:Amt", NS)
        node.getparent().remove(node)

    def bad_iban(document):
        document.find(".//p:CdtrAcct/p:Id/p:IBAN", NS).text = "fr14 secret 0500013M02606"

    def currency(document):
        document.find(".//p:InstdAmt", NS).set("Ccy", "euro")

    def long_reference(document):
        document.find(".//p:EndToEndId", NS).text = "R" * 36

    for edit, element in ((drop_amount, "Amt"), (bad_iban, "IBAN"), (currency, "Ccy"),
                          (long_reference, "EndToEndId")):  # fmt: skip
        broken = _edited(content, edit)
        with pytest.raises(sepa.BankFileInvalid) as caught:
            sepa.validate_pain001(broken)
        assert "schéma ISO 20022" in str(caught.value) and element in str(caught.value)
        assert "secret" not in str(caught.value)  # the refused value (an IBAN) is never repeated


def test_wrong_control_sums_are_caught_though_the_schema_accepts_them():
    content = write([transfer(1, 4_250), transfer(2, 1_000)])

    def header_sum(document):
        document.find(".//p:GrpHdr/p:CtrlSum", NS).text = "52.51"

    def batch_count(document):
        document.find(".//p:PmtInf/p:NbOfTxs", NS).text = "3"

    def three_decimals(document):  # the XSD allows 5 decimals, SEPA 2
        document.find(".//p:InstdAmt", NS).text = "42.505"

    def no_creditor(document):  # optional for the XSD, required by the EPC rulebook
        node = document.find(".//p:CdtTrfTxInf/p:Cdtr", NS)
        node.getparent().remove(node)

    for edit in (header_sum, batch_count, three_decimals, no_creditor):
        broken = _edited(content, edit)
        sepa.validate_pain001(broken)  # valid for the XSD…
        with pytest.raises(sepa.BankFileInvalid, match="Sommes de contrôle|Montant illisible|Cdtr/Nm manque"):
            sepa.check_pain001(broken, expected_count=2, expected_total_cents=5_250)  # …but not for the bank
    with pytest.raises(sepa.BankFileInvalid, match="Sommes de contrôle"):  # and what the caller expected
        sepa.check_pain001(content, expected_count=2, expected_total_cents=5_251)


def test_what_is_not_xml_or_carries_entities_is_refused():
    with pytest.raises(sepa.BankFileInvalid, match="XML"):
        sepa.validate_pain001(b"PR-20261130-001;4250;FR14...")
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">&e;</Document>'
    )
    with pytest.raises(sepa.BankFileInvalid, match="DOCTYPE") as caught:
        sepa.validate_pain001(bomb)
    assert "root:" not in str(caught.value)
