"""A small builder of the bank's answers for tests: a pain.002 or a camt.054 answering a given run.

Synthetic, built with lxml in each supported version (the namespaces differ, the paths are alike; camt.054
.08 puts the transaction amount and the entry status in their newer shapes). Element order follows the XSDs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from rempart.payments import bank_xml

ISO = "urn:iso:std:iso:20022:tech:xsd:"


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class _Doc:
    def __init__(self, version: str, message: str) -> None:
        self.ns = ISO + version
        self.root = etree.Element(f"{{{self.ns}}}Document", nsmap={None: self.ns})
        self.message = self.add(self.root, message)

    def add(self, parent, tag: str, text: str | None = None, **attrs):
        node = etree.SubElement(parent, f"{{{self.ns}}}{tag}", **attrs)
        if text is not None:
            node.text = text
        return node

    def path(self, parent, path: str, text: str | None = None, **attrs):
        *steps, last = path.split("/")
        for step in steps:
            parent = self.add(parent, step)
        return self.add(parent, last, text, **attrs)

    def bytes(self) -> bytes:
        return etree.tostring(self.root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- pain.002 ----------------------------------------------------------------------------------------------------


@dataclass
class Tx:
    end_to_end_id: str
    status: str | None = "RJCT"
    reason: str | None = "AC04"
    amount_cents: int | None = None
    currency: str = "EUR"
    info: str | None = None


@dataclass
class Block:
    payment_info_id: str
    status: str | None = "PART"
    reason: str | None = None
    transactions: list[Tx] = field(default_factory=list)
    count: int | None = None
    control_sum_cents: int | None = None


def _reason(
    doc: _Doc, parent, code: str | None, info: str | None = None, *, proprietary: bool = False
) -> None:
    if not code and not info:
        return
    holder = doc.add(parent, "StsRsnInf")
    doc.path(holder, "Orgtr/Nm", "BANQUE DE TEST")
    if code:
        doc.path(holder, "Rsn/Prtry" if proprietary else "Rsn/Cd", code)
    if info:
        doc.add(holder, "AddtlInf", info)


def pain002(
    original_message_id: str,
    blocks: list[Block] = (),
    *,
    version: str = "pain.002.001.03",
    message_id: str = "STS-0001",
    created_at: str = "2026-12-03T09:30:00",
    group_status: str | None = None,
    group_reason: str | None = None,
    original_count: int | None = None,
    original_control_sum_cents: int | None = None,
    original_name: str = "pain.001.001.09",
) -> bytes:
    doc = _Doc(version, "CstmrPmtStsRpt")
    header = doc.add(doc.message, "GrpHdr")
    doc.add(header, "MsgId", message_id)
    doc.add(header, "CreDtTm", created_at)
    doc.path(header, "InitgPty/Nm", "BANQUE DE TEST")
    doc.path(
        header, "DbtrAgt/FinInstnId/" + ("BICFI" if version != "pain.002.001.03" else "BIC"), "AGRIFRPPXXX"
    )
    group = doc.add(doc.message, "OrgnlGrpInfAndSts")
    doc.add(group, "OrgnlMsgId", original_message_id)
    doc.add(group, "OrgnlMsgNmId", original_name)
    if original_count is not None:
        doc.add(group, "OrgnlNbOfTxs", str(original_count))
    if original_control_sum_cents is not None:
        doc.add(group, "OrgnlCtrlSum", money(original_control_sum_cents))
    if group_status:
        doc.add(group, "GrpSts", group_status)
    _reason(doc, group, group_reason)
    for block in blocks:
        node = doc.add(doc.message, "OrgnlPmtInfAndSts")
        doc.add(node, "OrgnlPmtInfId", block.payment_info_id)
        if block.count is not None:
            doc.add(node, "OrgnlNbOfTxs", str(block.count))
        if block.control_sum_cents is not None:
            doc.add(node, "OrgnlCtrlSum", money(block.control_sum_cents))
        if block.status:
            doc.add(node, "PmtInfSts", block.status)
        _reason(doc, node, block.reason)
        for number, tx in enumerate(block.transactions, start=1):
            item = doc.add(node, "TxInfAndSts")
            doc.add(item, "StsId", f"{message_id}-{number}")
            doc.add(item, "OrgnlEndToEndId", tx.end_to_end_id)
            if tx.status:
                doc.add(item, "TxSts", tx.status)
            _reason(doc, item, tx.reason if tx.status in ("RJCT", "CANC", None) else None, tx.info)
            if tx.amount_cents is not None:
                ref = doc.add(item, "OrgnlTxRef")
                doc.path(ref, "Amt/InstdAmt", money(tx.amount_cents), Ccy=tx.currency)
                if version == "pain.002.001.03":
                    doc.add(ref, "ReqdExctnDt", "2026-12-02")
                else:
                    doc.path(ref, "ReqdExctnDt/Dt", "2026-12-02")
    return doc.bytes()


def sent_of(run) -> bank_xml.SentFile:
    return bank_xml.read_sent_file(bytes(run.file_content))


def rejecting(run, reasons: dict[str, str | None], *, with_amounts: bool = True, **options) -> bytes:
    """A pain.002 (group PART) rejecting these transfers of ``run`` (EndToEndId → reason code), the others
    unlisted; ``with_amounts`` repeats each rejected transfer's amount as banks usually do."""
    sent = sent_of(run)
    blocks: dict[str, Block] = {}
    for e2e, code in reasons.items():
        transfer = sent.transfers.get(e2e)
        block_id = (
            transfer.payment_info_id if transfer else next(iter(sent.transfers.values())).payment_info_id
        )
        block = blocks.setdefault(block_id, Block(block_id))
        amount = transfer.amount_cents if (transfer and with_amounts) else None
        block.transactions.append(Tx(e2e, "RJCT", code, amount))
    options.setdefault("group_status", "PART")
    return pain002(run.reference, list(blocks.values()), **options)


def group_rejection(run, reason: str = "FF01", **options) -> bytes:
    sent = sent_of(run)
    return pain002(
        run.reference,
        group_status="RJCT",
        group_reason=reason,
        original_count=sent.count,
        original_control_sum_cents=sent.control_sum_cents,
        **options,
    )


# --- camt.054 ----------------------------------------------------------------------------------------------------


@dataclass
class NTx:
    end_to_end_id: str | None
    amount_cents: int | None = None
    message_id: str | None = None
    payment_info_id: str | None = None
    return_reason: str | None = None


@dataclass
class NEntry:
    amount_cents: int
    transactions: list[NTx] = field(default_factory=list)
    credit_debit: str = "DBIT"
    status: str = "BOOK"
    booking_date: str = "2026-12-04"
    reversal: bool = False
    batch: dict | None = None  # {"message_id", "payment_info_id", "count", "total_cents"}: a batch booking
    currency: str = "EUR"


def camt054(
    entries: list[NEntry],
    *,
    version: str = "camt.054.001.08",
    message_id: str = "NTF-0001",
    created_at: str = "2026-12-04T18:00:00",
    account_iban: str = "FR7630006000011234567890189",
) -> bytes:
    modern = version == "camt.054.001.08"
    doc = _Doc(version, "BkToCstmrDbtCdtNtfctn")
    header = doc.add(doc.message, "GrpHdr")
    doc.add(header, "MsgId", message_id)
    doc.add(header, "CreDtTm", created_at)
    notification = doc.add(doc.message, "Ntfctn")
    doc.add(notification, "Id", f"{message_id}-1")
    doc.add(notification, "CreDtTm", created_at)
    doc.path(notification, "Acct/Id/IBAN", account_iban)
    for number, item in enumerate(entries, start=1):
        entry = doc.add(notification, "Ntry")
        doc.add(entry, "NtryRef", str(number))
        doc.add(entry, "Amt", money(item.amount_cents), Ccy=item.currency)
        doc.add(entry, "CdtDbtInd", item.credit_debit)
        if item.reversal:
            doc.add(entry, "RvslInd", "true")
        if modern:
            doc.path(entry, "Sts/Cd", item.status)
        else:
            doc.add(entry, "Sts", item.status)
        doc.path(entry, "BookgDt/Dt", item.booking_date)
        doc.path(entry, "ValDt/Dt", item.booking_date)
        doc.add(entry, "AcctSvcrRef", f"BANKREF{number:06d}")
        code = doc.add(entry, "BkTxCd")
        domain = doc.add(code, "Domn")
        doc.add(domain, "Cd", "PMNT")
        family = doc.add(domain, "Fmly")
        doc.add(family, "Cd", "ICDT" if item.credit_debit == "DBIT" else "RCDT")
        doc.add(family, "SubFmlyCd", "ESCT" if item.credit_debit == "DBIT" else "RRTN")
        details = doc.add(entry, "NtryDtls")
        if item.batch is not None:
            batch = doc.add(details, "Btch")
            if item.batch.get("message_id"):
                doc.add(batch, "MsgId", item.batch["message_id"])
            if item.batch.get("payment_info_id"):
                doc.add(batch, "PmtInfId", item.batch["payment_info_id"])
            if item.batch.get("count") is not None:
                doc.add(batch, "NbOfTxs", str(item.batch["count"]))
            if item.batch.get("total_cents") is not None:
                doc.add(batch, "TtlAmt", money(item.batch["total_cents"]), Ccy="EUR")
        for tx in item.transactions:
            node = doc.add(details, "TxDtls")
            refs = doc.add(node, "Refs")
            if tx.message_id:
                doc.add(refs, "MsgId", tx.message_id)
            doc.add(refs, "AcctSvcrRef", "TXREF")
            if tx.payment_info_id:
                doc.add(refs, "PmtInfId", tx.payment_info_id)
            if tx.end_to_end_id:
                doc.add(refs, "EndToEndId", tx.end_to_end_id)
            if tx.amount_cents is not None:
                if modern:
                    doc.add(node, "Amt", money(tx.amount_cents), Ccy="EUR")
                    doc.add(node, "CdtDbtInd", item.credit_debit)
                else:
                    doc.path(node, "AmtDtls/TxAmt/Amt", money(tx.amount_cents), Ccy="EUR")
            doc.path(node, "RltdPties/Cdtr/" + ("Pty/Nm" if modern else "Nm"), "OPTIQUE DU TEST")
            if tx.return_reason:
                ret = doc.add(node, "RtrInf")
                doc.path(ret, "Rsn/Cd", tx.return_reason)
                doc.add(ret, "AddtlInf", "RETOUR DE VIREMENT")
    return doc.bytes()


def settling(run, references: list[str] | None = None, **options) -> bytes:
    """A camt.054 booking the debit of these transfers of ``run`` (all by default), one entry each."""
    sent = sent_of(run)
    chosen = references if references is not None else list(sent.transfers)
    entries = [
        NEntry(
            sent.transfers[e2e].amount_cents,
            [NTx(e2e, sent.transfers[e2e].amount_cents, run.reference, sent.transfers[e2e].payment_info_id)],
        )
        for e2e in chosen
    ]
    return camt054(entries, **options)
