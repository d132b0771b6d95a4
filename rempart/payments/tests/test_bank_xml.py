"""Reading bank files: every supported version, realistic bank samples, and the files an attacker would send."""

from __future__ import annotations

import datetime as dt
import socket
import time
from pathlib import Path

import pytest

from rempart.payments import bank_xml, sepa
from rempart.payments.bank_xml import BankFileError, DebitNotification, StatusReport
from rempart.payments.tests.bank_files import Block, NEntry, NTx, Tx, camt054, pain002

FILES = Path(__file__).parent / "files"


def read(content: bytes):
    return bank_xml.read_bank_file(content)


def refused(content: bytes) -> str:
    with pytest.raises(BankFileError) as caught:
        read(content)
    return str(caught.value)


@pytest.mark.parametrize("version", bank_xml.PAIN_002_VERSIONS)
def test_a_status_report_is_read_in_every_supported_version(version):
    content = pain002(
        "PR-1",
        [
            Block(
                "PR-1-1",
                "PART",
                None,
                [Tx("PR-1-O1", "RJCT", "AC04", 12345), Tx("PR-1-O2", "ACSC", None, 10)],
            )
        ],
        version=version,
        group_status="PART",
        original_count=2,
        original_control_sum_cents=12355,
    )
    report = read(content)
    assert isinstance(report, StatusReport) and report.version == version
    assert (report.message_id, report.original_message_id, report.group_status) == (
        "STS-0001",
        "PR-1",
        "PART",
    )
    assert (report.original_count, report.original_control_sum_cents) == (2, 12355)
    [block] = report.payment_infos
    rejected, settled = block.transactions
    assert (rejected.end_to_end_id, rejected.status, rejected.reason.code) == ("PR-1-O1", "RJCT", "AC04")
    assert (rejected.amount_cents, rejected.currency) == (12345, "EUR")
    assert (settled.status, settled.reason.code, settled.amount_cents) == ("ACSC", "", 10)
    assert report.created_at == dt.datetime(2026, 12, 3, 9, 30, tzinfo=report.created_at.tzinfo)


@pytest.mark.parametrize("version", bank_xml.CAMT_054_VERSIONS)
def test_a_debit_notification_is_read_in_every_supported_version(version):
    content = camt054(
        [
            NEntry(12345, [NTx("PR-1-O1", 12345, "PR-1", "PR-1-1")]),
            NEntry(500, [NTx("PR-1-O2", 500, return_reason="AC04")], credit_debit="CRDT"),
            NEntry(
                9999,
                batch={"message_id": "PR-1", "payment_info_id": "PR-1-1", "count": 3, "total_cents": 9999},
                status="PDNG",
            ),  # fmt: skip
        ],
        version=version,
    )
    notice = read(content)
    assert isinstance(notice, DebitNotification) and notice.version == version
    debit, credit, batch = notice.entries
    assert (debit.credit_debit, debit.status, debit.amount_cents, debit.booking_date) == (
        "DBIT", "BOOK", 12345, dt.date(2026, 12, 4))  # fmt: skip
    [tx] = debit.transactions
    assert (tx.end_to_end_id, tx.message_id, tx.payment_info_id, tx.amount_cents) == (
        "PR-1-O1",
        "PR-1",
        "PR-1-1",
        12345,
    )
    assert credit.credit_debit == "CRDT" and credit.transactions[0].return_reason.code == "AC04"
    [whole] = batch.transactions
    assert (batch.status, whole.end_to_end_id, whole.message_id, whole.batch_count, whole.amount_cents) == (
        "PDNG", "", "PR-1", 3, 9999)  # fmt: skip


def test_bank_samples_with_the_elements_banks_add_are_read():
    report = read((FILES / "pain002_v03_bank_sample.xml").read_bytes())
    assert report.original_message_id == "PR-20261130-001"
    [block] = report.payment_infos
    tx, accepted = block.transactions
    assert (accepted.end_to_end_id, accepted.status) == ("PR-20261130-001-PHA", "ACSP")
    assert (tx.end_to_end_id, tx.status, tx.reason.code, tx.amount_cents) == (
        "PR-20261130-001-OPT",
        "RJCT",
        "AC04",
        12345,
    )
    assert tx.reason.info == "COMPTE CLOTURE"
    notice = read((FILES / "camt054_v08_bank_sample.xml").read_bytes())
    [entry] = notice.entries
    assert [t.end_to_end_id for t in entry.transactions] == ["PR-20261130-001-OPT", "PR-20261130-001-PHA"]
    assert entry.amount_cents == 12345 + 6789
    notice = read((FILES / "camt054_v02_bank_sample.xml").read_bytes())
    assert [t.amount_cents for t in notice.entries[0].transactions] == [12345]


def test_our_own_pain001_is_read_back():
    transfers = [
        sepa.Transfer("PR-9-O1", 12345, "Optique", "FR7630004000010001234567830", "BNPAFRPPXXX", "x"),
        sepa.Transfer("PR-9-O2", 1, "Pharmacie", "FR7630006000011234567890189", "AGRIFRPPXXX", "y"),
    ]
    content = sepa.write_pain001(
        message_id="PR-9", created_at=dt.datetime(2026, 12, 1, 10), execution_date=dt.date(2026, 12, 2),
        debtor=sepa.Debtor("Rempart", "FR7630006000011234567890189", "AGRIFRPPXXX"), transfers=transfers,
    )  # fmt: skip
    sent = bank_xml.read_sent_file(content)
    assert (sent.message_id, sent.count, sent.control_sum_cents) == ("PR-9", 2, 12346)
    assert {e2e: t.amount_cents for e2e, t in sent.transfers.items()} == {"PR-9-O1": 12345, "PR-9-O2": 1}
    with pytest.raises(BankFileError, match="pain.001"):
        read(content)  # what we send is not what we import


@pytest.mark.parametrize(
    ("text", "cents"), [("12.3", 1230), ("12.30", 1230), ("0.01", 1), ("12.30000", 1230), ("7", 700)]
)
def test_amounts_become_integer_cents_exactly(text, cents):
    content = pain002("PR-1", [Block("B", "PART", None, [Tx("E", "RJCT", "AC04", 1)])]).replace(
        b'<InstdAmt Ccy="EUR">0.01</InstdAmt>', f'<InstdAmt Ccy="EUR">{text}</InstdAmt>'.encode()
    )
    assert read(content).payment_infos[0].transactions[0].amount_cents == cents


@pytest.mark.parametrize("text", ["1.005", "1e3", "-5.00", "12,30", "", "٣.00", "1.2.3"])
def test_unreadable_amounts_are_refused_with_their_line(text):
    content = pain002("PR-1", [Block("B", "PART", None, [Tx("E", "RJCT", "AC04", 1)])]).replace(
        b'<InstdAmt Ccy="EUR">0.01</InstdAmt>', f'<InstdAmt Ccy="EUR">{text}</InstdAmt>'.encode()
    )
    message = refused(content)
    assert ("Montant" in message or "vide" in message) and "ligne" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "vide"),
        (b"PK\x03\x04 not xml at all", "XML bien form"),
        (b"<?xml version='1.0'?><Document><x/>", "XML bien form"),
        (b"<Document xmlns='urn:example'><CstmrPmtStsRpt/></Document>", "ISO 20022"),
        (b"<Root/>", "ISO 20022"),
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.02'><CstmrPmtStsRpt/></Document>",
            "pain.002.001.02 non prise en charge",
        ),  # fmt: skip
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstmrStmt/></Document>",
            "seuls les comptes rendus pain.002",
        ),  # fmt: skip
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.03'><A/><B/></Document>",
            "exactement un",
        ),
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.03'><CstmrPmtStsRpt/></Document>",
            "GrpHdr manquant",
        ),  # fmt: skip
    ],
)
def test_files_that_are_not_supported_bank_files_are_refused_clearly(content, expected):
    assert expected in refused(content)


def test_a_missing_required_identifier_names_the_element():
    content = pain002("PR-1", [Block("B", "PART", None, [Tx("E", "RJCT", "AC04")])]).replace(
        b"<OrgnlEndToEndId>E</OrgnlEndToEndId>", b"<OrgnlEndToEndId> </OrgnlEndToEndId>"
    )
    assert "OrgnlEndToEndId vide" in refused(content)


def test_overlong_identifiers_and_malformed_codes_are_refused():
    long_id = pain002("PR-1", [Block("B", "PART", None, [Tx("E" * 36, "RJCT", "AC04")])])
    assert "OrgnlEndToEndId trop long" in refused(long_id)
    lower = pain002("PR-1", [Block("B", "PART", None, [Tx("E", "rjct", "AC04")])])
    assert "TxSts n'est pas un code ISO" in refused(lower)
    script = pain002("PR-1", [Block("B", "PART", None, [Tx("E", "RJCT", "<b>x")])])
    assert "Cd n'est pas un code ISO" in refused(script)


# --- attacks -------------------------------------------------------------------------------------------------------


def test_a_billion_laughs_is_refused_at_once_without_expanding_anything():
    started = time.monotonic()
    assert "DTD" in refused((FILES / "attack_billion_laughs.xml").read_bytes())
    assert time.monotonic() - started < 1


def test_external_entities_are_never_read(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the parser tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name in ("attack_xxe_file.xml", "attack_xxe_network.xml", "attack_external_dtd.xml"):
        message = refused((FILES / name).read_bytes())
        assert "DTD" in message
        assert "root:" not in message and "passwd" not in message


def test_a_doctype_hidden_in_utf16_is_refused_after_parsing():
    text = (
        (FILES / "attack_xxe_file.xml")
        .read_text(encoding="utf-8")
        .replace('encoding="UTF-8"', 'encoding="UTF-16"')
    )
    content = text.encode("utf-16")
    assert b"<!DOCTYPE" not in content  # the byte scan cannot see it: the parsed tree's doctype is checked
    assert "DTD" in refused(content)


def test_an_entity_reference_without_declaration_is_not_expanded():
    content = pain002("PR-1", [Block("B", "PART", None, [Tx("E", "RJCT", "AC04")])]).replace(
        b"<MsgId>STS-0001</MsgId>", b"<MsgId>&xxe;</MsgId>"
    )
    assert "XML bien form" in refused(content)


def test_oversized_files_are_refused_before_parsing(settings):
    settings.REMPART_BANK_FILE_MAX_BYTES = 1000
    content = pain002("PR-1", [Block("B", "PART", None, [Tx(f"E{n}", "RJCT", "AC04") for n in range(20)])])
    assert len(content) > 1000
    assert "trop volumineux" in refused(content)


def test_a_deeply_nested_file_is_refused():
    content = b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.03'>" + b"<a>" * 300_000
    assert "XML bien form" in refused(content)
