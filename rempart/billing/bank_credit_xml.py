"""Reading the credits of a camt.054 notification: money received from insurers, as plain data.

The document is parsed by the payments' safe reader (``payments/bank_xml.parse_document``: no DTD, no entity,
no network, a size limit) and read with its namespaced, checked look-ups; what the returns import does not need
and receipts do is read here: each credit's references (end-to-end id, the bank's reference) and the
remittance information (``RmtInf/Ustrd``, where an insurer paying by transfer writes the statement number).
Debits (our transfers, read by ``payments/returns.py``) are skipped; entries not booked (PDNG, INFO) and
reversals are reported so the import can refuse or skip them explicitly.
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


@dataclass(frozen=True)
class CreditNotification:
    version: str
    message_id: str
    credits: tuple[Credit, ...]


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
    credits = []
    for notification in r.all(message, "Ntfctn"):
        for entry in r.all(notification, "Ntry"):
            if r.text(entry, "CdtDbtInd", required=True) != "CRDT":
                continue
            credits.extend(_credits(r, entry))
    return CreditNotification(
        version=version, message_id=r.identifier(header, "MsgId", required=True), credits=tuple(credits)
    )


def _credits(r: _Reader, entry) -> list[Credit]:
    status = r.code(entry, "Sts/Cd") or r.code(entry, "Sts")
    booked = r.date(entry, "BookgDt/Dt") or _date_of(r.datetime(entry, "BookgDt/DtTm", optional=True))
    reversal = r.text(entry, "RvslInd").lower() in ("true", "1")
    entry_ref = r.identifier(entry, "AcctSvcrRef") or r.identifier(entry, "NtryRef")
    common = {
        "booking_date": booked,
        "status": status,
        "reversal": reversal,
    }
    details = [tx for block in r.all(entry, "NtryDtls") for tx in r.all(block, "TxDtls")]
    if not details:
        return [
            Credit(
                amount_cents=r.amount(entry, "Amt", required=True),
                currency=r.currency(entry, "Amt"),
                end_to_end_id="",
                bank_reference=entry_ref,
                remittance=_remittance(r, entry, "NtryDtls/TxDtls/RmtInf/Ustrd"),
                debtor_name="",
                line=entry.sourceline or 0,
                **common,
            )
        ]
    credits = []
    for tx in details:
        path = next(
            (p for p in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt") if r.find(tx, p) is not None),
            None,
        )
        if path is None:
            path = "Amt"
            if len(details) > 1:
                raise BankFileError(
                    _("Crédit sans montant (ligne %(line)s) dans une écriture qui en regroupe plusieurs.")
                    % {"line": tx.sourceline}
                )
        node = tx if r.find(tx, path) is not None else entry
        e2e = r.identifier(tx, "Refs/EndToEndId")
        credits.append(
            Credit(
                amount_cents=r.amount(node, path, required=True),
                currency=r.currency(node, path),
                end_to_end_id="" if e2e == "NOTPROVIDED" else e2e,
                bank_reference=r.identifier(tx, "Refs/AcctSvcrRef") or entry_ref,
                remittance=_remittance(r, tx, "RmtInf/Ustrd"),
                debtor_name=r.text(tx, "RltdPties/Dbtr/Nm")[:70] or r.text(tx, "RltdPties/Dbtr/Pty/Nm")[:70],
                line=tx.sourceline or 0,
                **common,
            )
        )
    return credits


def _remittance(r: _Reader, node, path: str) -> str:
    return " ".join((found.text or "").strip() for found in r.all(node, path))[:140]
