"""Reading the credits of a camt.054 notification: money received from insurers, as plain data.

The document is parsed by the payments' safe reader (``payments/bank_xml.parse_document``: no DTD, no entity,
no network, a size limit) and read with its namespaced, checked look-ups; what the returns import does not need
and receipts do is read here: each credit's references (end-to-end id, the bank's reference) and the
remittance information (``RmtInf/Ustrd``, where an insurer paying by transfer writes the statement number).
A bank that books a whole collection file as one credit (no per-transaction end-to-end id) names the file
instead: ``Btch/MsgId`` / ``Btch/PmtInfId``, ``Refs/MsgId`` / ``Refs/PmtInfId``, the entry's ``NtryRef``; these
are kept as ``batch_refs`` for the import to find the collection file. Entries not booked (PDNG, INFO) and
reversals are reported so the import can refuse or skip them explicitly.

Debits are read too, leniently (``debits``): most are the operator's own transfers (``payments/returns.py``
reads them); a debit carrying a return reason (``RtrInf``), flagged as a reversal, or naming one of our
statements is a direct debit the insurer's bank took back, which the import records. A credit carrying a
return reason is a returned transfer of the operator's (the payments' business): flagged ``returned``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

from rempart.payments.bank_xml import CAMT_054_VERSIONS, BankFileError, _date_of, _Reader, parse_document


@dataclass(frozen=True)
class Credit:
    """One credit received: a ``TxDtls`` of a CRDT entry (or the entry itself when it has no details)."""

    amount_cents: int
    currency: str
    booking_date: dt.date | None
    status: str  # BOOK, PDNG, INFO, FUTR
    reversal: bool
    end_to_end_id: str
    bank_reference: str  # AcctSvcrRef of the transaction, else of the entry, else NtryRef
    remittance: str  # RmtInf/Ustrd lines joined with a space
    debtor_name: str
    line: int
    side: str = "CRDT"  # CRDT (money in) or DBIT (money out: a returned direct debit, or our transfers)
    returned: bool = False  # the transaction carries RtrInf: it returns an earlier transaction
    return_code: str = ""  # RtrInf/Rsn/Cd (ISO 20022), else ""
    return_proprietary: str = ""  # RtrInf/Rsn/Prtry
    mandate_id: str = ""  # Refs/MndtId: the direct debit's mandate
    batch_refs: tuple[str, ...] = ()  # what names a whole collection file booked as one entry
    per_transaction: bool = True  # False: the entry has no per-transaction end-to-end id (a lump sum)


@dataclass(frozen=True)
class CreditNotification:
    version: str
    message_id: str
    credits: tuple[Credit, ...]
    debits: tuple[Credit, ...] = ()


def read_credits(content: bytes) -> CreditNotification:
    """The credits of a camt.054, or :class:`BankFileError` naming what is wrong (line, element)."""
    version, message = parse_document(content)
    if version not in CAMT_054_VERSIONS:
        raise BankFileError(
            _("Seuls les avis camt.054 s'importent ici (versions acceptées : %(known)s) ; reçu : %(got)s.")
            % {"known": ", ".join(CAMT_054_VERSIONS), "got": version[:40]}
        )
    r = _Reader(message, version)
    from lxml import etree

    if etree.QName(message).localname != "BkToCstmrDbtCdtNtfctn":
        raise BankFileError(_("Un camt.054 contient un BkToCstmrDbtCdtNtfctn."))
    header = r.required(message, "GrpHdr")
    credits, debits = [], []
    for notification in r.all(message, "Ntfctn"):
        for entry in r.all(notification, "Ntry"):
            side = r.text(entry, "CdtDbtInd", required=True)
            if side == "CRDT":
                credits.extend(_credits(r, entry))
            elif side == "DBIT":
                debits.extend(_credits(r, entry, lenient=True))
            else:
                raise BankFileError(
                    _("CdtDbtInd inconnu (ligne %(line)s) : CRDT ou DBIT attendu.")
                    % {"line": entry.sourceline}
                )
    return CreditNotification(
        version=version, message_id=r.identifier(header, "MsgId", required=True), credits=tuple(credits),
        debits=tuple(debits),
    )  # fmt: skip


def _batch_refs(r: _Reader, entry, details: list) -> tuple[str, ...]:
    """Every reference that may name a collection file booked as one entry (the import matches them)."""
    refs = [r.identifier(entry, "NtryRef")]
    for block in r.all(entry, "NtryDtls"):
        batch = r.find(block, "Btch")
        if batch is not None:
            refs += [r.identifier(batch, "MsgId"), r.identifier(batch, "PmtInfId")]
    for tx in details:
        refs += [r.identifier(tx, "Refs/MsgId"), r.identifier(tx, "Refs/PmtInfId")]
    return tuple(dict.fromkeys(ref for ref in refs if ref and ref != "NOTPROVIDED"))


def _credits(r: _Reader, entry, *, lenient: bool = False) -> list[Credit]:
    """The entry's transactions. ``lenient`` (debits): a transaction without an amount of its own in an entry
    that groups several is skipped unless it is a return (our transfers' debits are not ours to judge)."""
    status = r.code(entry, "Sts/Cd") or r.code(entry, "Sts")
    booked = r.date(entry, "BookgDt/Dt") or _date_of(r.datetime(entry, "BookgDt/DtTm", optional=True))
    reversal = r.text(entry, "RvslInd").lower() in ("true", "1")
    entry_ref = r.identifier(entry, "AcctSvcrRef") or r.identifier(entry, "NtryRef")
    side = r.text(entry, "CdtDbtInd", required=True)
    details = [tx for block in r.all(entry, "NtryDtls") for tx in r.all(block, "TxDtls")]
    common = {
        "booking_date": booked,
        "status": status,
        "reversal": reversal,
        "side": side,
        "batch_refs": _batch_refs(r, entry, details),
    }
    if not details:
        return [
            Credit(
                amount_cents=r.amount(entry, "Amt", required=True),
                currency=r.currency(entry, "Amt"),
                end_to_end_id="",
                bank_reference=entry_ref,
                remittance=r.text(entry, "AddtlNtryInf")[:140],  # a lump sum's bank text may name the file
                debtor_name="",
                line=entry.sourceline or 0,
                per_transaction=False,
                **common,
            )
        ]
    credits = []
    lone = len(details) == 1
    for tx in details:
        returned = r.find(tx, "RtrInf")
        path = next(
            (p for p in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt") if r.find(tx, p) is not None),
            None,
        )
        if path is None:
            path = "Amt"
            if not lone and lenient and returned is None:
                continue
            if not lone:
                raise BankFileError(
                    _("Crédit sans montant (ligne %(line)s) dans une écriture qui en regroupe plusieurs.")
                    % {"line": tx.sourceline}
                )
        node = tx if r.find(tx, path) is not None else entry
        e2e = r.identifier(tx, "Refs/EndToEndId")
        reason = r.reason(returned, "Rsn") if returned is not None else None
        e2e = "" if e2e == "NOTPROVIDED" else e2e
        credits.append(
            Credit(
                amount_cents=r.amount(node, path, required=True),
                currency=r.currency(node, path),
                end_to_end_id=e2e,
                bank_reference=r.identifier(tx, "Refs/AcctSvcrRef") or entry_ref,
                remittance=_remittance(r, tx, "RmtInf/Ustrd"),
                debtor_name=r.text(tx, "RltdPties/Dbtr/Nm")[:70] or r.text(tx, "RltdPties/Dbtr/Pty/Nm")[:70],
                line=tx.sourceline or 0,
                returned=returned is not None,
                return_code=reason.code if reason else "",
                return_proprietary=reason.proprietary if reason else "",
                mandate_id=r.identifier(tx, "Refs/MndtId"),
                per_transaction=bool(e2e) or not lone,
                **common,
            )
        )
    return credits


def _remittance(r: _Reader, node, path: str) -> str:
    return " ".join((found.text or "").strip() for found in r.all(node, path))[:140]
