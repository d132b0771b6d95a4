"""camt.054 builders for the money the bank books on the operator's account for insurers: direct debits it took
back (a DBIT entry with RtrInf, or flagged as a reversal) and whole collection files booked as one lump sum.

Synthetic, camt.054.001.08, element order as in the XSD (Ntry: Amt, CdtDbtInd, RvslInd, Sts, BookgDt,
AcctSvcrRef, BkTxCd, NtryDtls, AddtlNtryInf; TxDtls: Refs, Amt, …, RltdPties, RmtInf, RtrInf).
"""

from __future__ import annotations

from rempart.payments.tests.bank_files import _Doc, money


def _document(message_id: str):
    doc = _Doc("camt.054.001.08", "BkToCstmrDbtCdtNtfctn")
    header = doc.add(doc.message, "GrpHdr")
    doc.add(header, "MsgId", message_id)
    doc.add(header, "CreDtTm", "2026-12-01T18:00:00")
    notification = doc.add(doc.message, "Ntfctn")
    doc.add(notification, "Id", f"{message_id}-1")
    doc.path(notification, "Acct/Id/IBAN", "FR7630006000011234567890189")
    return doc, notification


def _entry(doc, notification, amount: int, side: str, *, ref: str, date: str, reversal: bool = False,
           ccy: str = "EUR"):  # fmt: skip
    entry = doc.add(notification, "Ntry")
    doc.add(entry, "Amt", money(amount), Ccy=ccy)
    doc.add(entry, "CdtDbtInd", side)
    if reversal:
        doc.add(entry, "RvslInd", "true")
    doc.path(entry, "Sts/Cd", "BOOK")
    doc.path(entry, "BookgDt/Dt", date)
    doc.add(entry, "AcctSvcrRef", ref)
    return entry


def camt054_returns(returns: list[dict], *, message_id: str = "NTF-RT-1") -> bytes:
    """One booked DBIT entry per returned direct debit: keys amount, e2e, reason (RtrInf/Rsn/Cd; None: no
    RtrInf), proprietary, mandate, ref, date, reversal, ccy."""
    doc, notification = _document(message_id)
    for number, item in enumerate(returns, start=1):
        entry = _entry(
            doc, notification, item["amount"], "DBIT", ref=item.get("ref", f"{message_id}-R{number}"),
            date=item.get("date", "2026-12-01"), reversal=item.get("reversal", False), ccy=item.get("ccy", "EUR"),
        )  # fmt: skip
        tx = doc.add(doc.add(entry, "NtryDtls"), "TxDtls")
        refs = doc.add(tx, "Refs")
        doc.add(refs, "EndToEndId", item.get("e2e", "NOTPROVIDED"))
        if item.get("mandate"):
            doc.add(refs, "MndtId", item["mandate"])
        doc.add(tx, "Amt", money(item["amount"]), Ccy=item.get("ccy", "EUR"))
        if item.get("reason", "AM04") is not None or item.get("proprietary"):
            holder = doc.add(tx, "RtrInf")
            if item.get("proprietary"):
                doc.path(holder, "Rsn/Prtry", item["proprietary"])
            else:
                doc.path(holder, "Rsn/Cd", item.get("reason", "AM04"))
    return doc.bytes()


def camt054_lump_sum(amount: int, *, message_id: str = "NTF-LS-1", batch_msg_id: str = "",
                     batch_block_id: str = "", ntry_ref: str = "", info: str = "", ref: str = "LUMP-1",
                     date: str = "2026-12-01", as_transaction: bool = False) -> bytes:  # fmt: skip
    """One booked CRDT entry for a whole collection file: named by Btch/MsgId, Btch/PmtInfId (or, with
    ``as_transaction``, one TxDtls with Refs/MsgId and Refs/PmtInfId and no end-to-end id), NtryRef or
    AddtlNtryInf."""
    doc, notification = _document(message_id)
    entry = doc.add(notification, "Ntry")
    if ntry_ref:
        doc.add(entry, "NtryRef", ntry_ref)
    doc.add(entry, "Amt", money(amount), Ccy="EUR")
    doc.add(entry, "CdtDbtInd", "CRDT")
    doc.path(entry, "Sts/Cd", "BOOK")
    doc.path(entry, "BookgDt/Dt", date)
    doc.add(entry, "AcctSvcrRef", ref)
    if batch_msg_id or batch_block_id:
        details = doc.add(entry, "NtryDtls")
        if as_transaction:
            refs = doc.add(doc.add(details, "TxDtls"), "Refs")
            if batch_msg_id:
                doc.add(refs, "MsgId", batch_msg_id)
            if batch_block_id:
                doc.add(refs, "PmtInfId", batch_block_id)
        else:
            batch = doc.add(details, "Btch")
            if batch_msg_id:
                doc.add(batch, "MsgId", batch_msg_id)
            if batch_block_id:
                doc.add(batch, "PmtInfId", batch_block_id)
    if info:
        doc.add(entry, "AddtlNtryInf", info)
    return doc.bytes()
