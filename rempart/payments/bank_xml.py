"""Reading the bank's ISO 20022 files safely: pain.002 status reports, camt.054 notifications, our own pain.001.

A bank file is untrusted input that reaches the treasury console. It is parsed with lxml with every dangerous
feature off: no DTD (a file that declares one is refused outright, so no entity, internal or external, is ever
expanded), no network, no huge trees, a size limit. The versions differ by namespace; the paths used here are
the same in all of them (``Sts`` and the transaction amount of camt.054 are read in both of their shapes).
What comes out is plain data (amounts in integer cents); matching it to runs and payments is ``returns.py``'s.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from lxml import etree

ISO_NS = "urn:iso:std:iso:20022:tech:xsd:"
PAIN_002_VERSIONS = ("pain.002.001.03", "pain.002.001.09", "pain.002.001.10")
CAMT_054_VERSIONS = ("camt.054.001.02", "camt.054.001.04", "camt.054.001.08")
PAIN_001_VERSIONS = ("pain.001.001.03", "pain.001.001.09", "pain.001.001.10", "pain.001.001.11")
DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # a status report for 50 000 transfers is ~20 MB
MAX_ID_LENGTH = 35  # ISO 20022 Max35Text: every identifier matched here

_AMOUNT = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,5}))?")  # ASCII digits: \d takes any script's
_CODE = re.compile(r"[A-Z0-9]{4}")
_DECLARATION = re.compile(rb"<!(?i:doctype|entity)")


class BankFileError(ValueError):
    """The file cannot be read as a supported bank file; the message says why, in the user's language."""


def max_bytes() -> int:
    return int(getattr(settings, "REMPART_BANK_FILE_MAX_BYTES", DEFAULT_MAX_BYTES))


# --- what the files say ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """An ISO status reason: an external code (``AC04``) or, failing that, a bank's proprietary one."""

    code: str = ""
    proprietary: str = ""
    info: str = ""  # AddtlInf, first line only, shortened: shown to the operator, never mailed


@dataclass(frozen=True)
class TransactionStatus:
    """One ``TxInfAndSts`` of a pain.002."""

    end_to_end_id: str
    status: str  # "" when the transaction inherits its block's or its group's status
    reason: Reason
    amount_cents: int | None  # OrgnlTxRef/Amt/InstdAmt, when the bank repeats it
    currency: str
    line: int


@dataclass(frozen=True)
class PaymentInfoStatus:
    """One ``OrgnlPmtInfAndSts``: a payment block of our pain.001 and the statuses of its transactions."""

    payment_info_id: str
    status: str
    reason: Reason
    count: int | None
    control_sum_cents: int | None
    transactions: tuple[TransactionStatus, ...]
    line: int


@dataclass(frozen=True)
class StatusReport:
    """A pain.002 customer payment status report, answering one pain.001 (``original_message_id``)."""

    version: str
    message_id: str
    created_at: dt.datetime
    original_message_id: str
    original_message_name: str
    original_count: int | None
    original_control_sum_cents: int | None
    group_status: str
    group_reason: Reason
    payment_infos: tuple[PaymentInfoStatus, ...]

    kind = "pain.002"


@dataclass(frozen=True)
class NotifiedTransaction:
    """One transaction of a camt.054 entry (a ``TxDtls``, or a whole batch booked without details)."""

    end_to_end_id: str  # "" for a batch booked without transaction details
    message_id: str  # Refs/MsgId or Btch/MsgId: the pain.001 it came from, when the bank says
    payment_info_id: str
    amount_cents: int | None
    currency: str
    batch_count: int | None  # Btch/NbOfTxs, for a batch without details
    return_reason: Reason | None  # RtrInf: a credit that returns one of our transfers after settlement
    line: int


@dataclass(frozen=True)
class Entry:
    """One ``Ntry`` of a camt.054: a booking on the operator's account."""

    amount_cents: int
    currency: str
    credit_debit: str  # "DBIT" | "CRDT"
    status: str  # BOOK, PDNG, INFO, FUTR
    reversal: bool
    booking_date: dt.date | None
    transactions: tuple[NotifiedTransaction, ...]
    line: int


@dataclass(frozen=True)
class DebitNotification:
    """A camt.054 bank-to-customer debit/credit notification."""

    version: str
    message_id: str
    created_at: dt.datetime
    entries: tuple[Entry, ...]

    kind = "camt.054"


@dataclass(frozen=True)
class SentTransfer:
    end_to_end_id: str
    amount_cents: int
    payment_info_id: str


@dataclass(frozen=True)
class SentFile:
    """Our own pain.001, read back: the ground truth of what a run asked the bank to pay."""

    message_id: str
    count: int
    control_sum_cents: int
    transfers: dict[str, SentTransfer] = field(default_factory=dict)  # by EndToEndId

    def block(self, payment_info_id: str) -> list[SentTransfer]:
        return [t for t in self.transfers.values() if t.payment_info_id == payment_info_id]


# --- parsing -----------------------------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_document(content: bytes, *, limit: int | None = -1) -> tuple[str, etree._Element]:
    """(message name and version, e.g. "pain.002.001.03"; the Document's child), or :class:`BankFileError`.

    ``limit``: the size refused (default: the setting; None for our own files, whatever their size)."""
    if not isinstance(content, bytes | bytearray | memoryview):
        raise BankFileError(_("Le fichier doit être lu en binaire."))
    content = bytes(content)
    limit = max_bytes() if limit == -1 else limit
    if limit is not None and len(content) > limit:
        raise BankFileError(
            _("Fichier trop volumineux : %(size)s octets, %(limit)s au plus.")
            % {"size": len(content), "limit": limit}
        )
    if not content.strip():
        raise BankFileError(_("Le fichier est vide."))
    if _DECLARATION.search(content):
        raise BankFileError(_dtd_refusal())
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        raise BankFileError(
            _("Le fichier n'est pas un XML bien formé (ligne %(line)s) : %(why)s")
            % {"line": line, "why": str(exc.msg)[:120]}
        ) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # e.g. a UTF-16 file the scan missed
        raise BankFileError(_dtd_refusal())
    qname = etree.QName(root)
    if qname.localname != "Document" or not (qname.namespace or "").startswith(ISO_NS):
        raise BankFileError(
            _(
                "Ce n'est pas un fichier ISO 20022 : l'élément racine doit être Document dans un espace de noms "
                "urn:iso:std:iso:20022:tech:xsd:… (pain.002 ou camt.054)."
            )
        )
    version = qname.namespace[len(ISO_NS) :]
    children = [child for child in root if isinstance(child.tag, str)]
    if len(children) != 1:
        raise BankFileError(_("Le Document doit contenir exactement un message."))
    return version, children[0]


def _dtd_refusal() -> str:
    return _(
        "Le fichier déclare une DTD ou des entités (<!DOCTYPE>, <!ENTITY>) : refusé, un fichier bancaire "
        "n'en contient jamais."
    )


def read_bank_file(content: bytes) -> StatusReport | DebitNotification:
    """A pain.002 or a camt.054, told apart by its namespace; any other message or version is refused."""
    version, message = parse_document(content)
    family = version.rsplit(".", 2)[0] if version.count(".") >= 3 else version
    if version in PAIN_002_VERSIONS:
        return _status_report(version, _Reader(message, version))
    if version in CAMT_054_VERSIONS:
        return _notification(version, _Reader(message, version))
    if family in ("pain.002", "camt.054"):
        raise BankFileError(
            _("Version %(version)s non prise en charge (versions acceptées : %(known)s).")
            % {"version": version[:40], "known": ", ".join(PAIN_002_VERSIONS + CAMT_054_VERSIONS)}
        )
    raise BankFileError(
        _(
            "Message %(version)s : seuls les comptes rendus pain.002 et les avis camt.054 s'importent ici "
            "(un pain.001 est un fichier que nous émettons)."
        )
        % {"version": version[:40]}
    )


def read_sent_file(content: bytes) -> SentFile:
    """Our pain.001 (a run's ``file_content``): what each EndToEndId asked the bank to pay."""
    version, message = parse_document(content, limit=None)  # written and validated by us (sepa.py)
    if version not in PAIN_001_VERSIONS:
        raise BankFileError(_("Le fichier émis par la campagne n'est pas un pain.001 lisible."))
    reader = _Reader(message, version)
    header = reader.required(message, "GrpHdr")
    sent = SentFile(
        message_id=reader.identifier(header, "MsgId", required=True),
        count=reader.integer(header, "NbOfTxs") or 0,
        control_sum_cents=reader.amount(header, "CtrlSum") or 0,
    )
    for block in reader.all(message, "PmtInf"):
        block_id = reader.identifier(block, "PmtInfId", required=True)
        for tx in reader.all(block, "CdtTrfTxInf"):
            e2e = reader.identifier(tx, "PmtId/EndToEndId", required=True)
            sent.transfers[e2e] = SentTransfer(
                e2e, reader.amount(tx, "Amt/InstdAmt", required=True), block_id
            )
    return sent


def _status_report(version: str, r: _Reader) -> StatusReport:
    message = r.root
    if etree.QName(message).localname != "CstmrPmtStsRpt":
        raise BankFileError(_("Un pain.002 contient un CstmrPmtStsRpt."))
    header = r.required(message, "GrpHdr")
    group = r.required(message, "OrgnlGrpInfAndSts")
    blocks = []
    for block in r.all(message, "OrgnlPmtInfAndSts"):
        transactions = tuple(
            TransactionStatus(
                end_to_end_id=r.identifier(tx, "OrgnlEndToEndId", required=True),
                status=r.code(tx, "TxSts"),
                reason=r.reason(tx),
                amount_cents=r.amount(tx, "OrgnlTxRef/Amt/InstdAmt"),
                currency=r.currency(tx, "OrgnlTxRef/Amt/InstdAmt"),
                line=tx.sourceline or 0,
            )
            for tx in r.all(block, "TxInfAndSts")
        )
        blocks.append(
            PaymentInfoStatus(
                payment_info_id=r.identifier(block, "OrgnlPmtInfId", required=True),
                status=r.code(block, "PmtInfSts"),
                reason=r.reason(block),
                count=r.integer(block, "OrgnlNbOfTxs"),
                control_sum_cents=r.amount(block, "OrgnlCtrlSum"),
                transactions=transactions,
                line=block.sourceline or 0,
            )
        )
    return StatusReport(
        version=version,
        message_id=r.identifier(header, "MsgId", required=True),
        created_at=r.datetime(header, "CreDtTm"),
        original_message_id=r.identifier(group, "OrgnlMsgId", required=True),
        original_message_name=r.text(group, "OrgnlMsgNmId"),
        original_count=r.integer(group, "OrgnlNbOfTxs"),
        original_control_sum_cents=r.amount(group, "OrgnlCtrlSum"),
        group_status=r.code(group, "GrpSts"),
        group_reason=r.reason(group),
        payment_infos=tuple(blocks),
    )


def _notification(version: str, r: _Reader) -> DebitNotification:
    message = r.root
    if etree.QName(message).localname != "BkToCstmrDbtCdtNtfctn":
        raise BankFileError(_("Un camt.054 contient un BkToCstmrDbtCdtNtfctn."))
    header = r.required(message, "GrpHdr")
    entries = []
    for notification in r.all(message, "Ntfctn"):
        for node in r.all(notification, "Ntry"):
            entries.append(_entry(r, node))
    return DebitNotification(
        version=version,
        message_id=r.identifier(header, "MsgId", required=True),
        created_at=r.datetime(header, "CreDtTm"),
        entries=tuple(entries),
    )


def _entry(r: _Reader, node) -> Entry:
    status = r.code(node, "Sts/Cd") or r.code(node, "Sts")  # a code (.02, .04) or a choice (.08)
    transactions = []
    for details in r.all(node, "NtryDtls"):
        batch = r.find(details, "Btch")
        batch_message = r.identifier(batch, "MsgId") if batch is not None else ""
        batch_block = r.identifier(batch, "PmtInfId") if batch is not None else ""
        items = r.all(details, "TxDtls")
        if not items and batch is not None:
            transactions.append(
                NotifiedTransaction(
                    end_to_end_id="",
                    message_id=batch_message,
                    payment_info_id=batch_block,
                    amount_cents=r.amount(batch, "TtlAmt"),
                    currency=r.currency(batch, "TtlAmt"),
                    batch_count=r.integer(batch, "NbOfTxs"),
                    return_reason=None,
                    line=batch.sourceline or 0,
                )
            )
        for tx in items:
            amount_path = next(
                (
                    p
                    for p in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt")
                    if r.find(tx, p) is not None
                ),
                None,
            )
            returned = r.find(tx, "RtrInf")
            transactions.append(
                NotifiedTransaction(
                    end_to_end_id=r.identifier(tx, "Refs/EndToEndId"),
                    message_id=r.identifier(tx, "Refs/MsgId") or batch_message,
                    payment_info_id=r.identifier(tx, "Refs/PmtInfId") or batch_block,
                    amount_cents=r.amount(tx, amount_path) if amount_path else None,
                    currency=r.currency(tx, amount_path) if amount_path else "",
                    batch_count=None,
                    return_reason=r.reason(returned, "Rsn") if returned is not None else None,
                    line=tx.sourceline or 0,
                )
            )
    reversal = r.text(node, "RvslInd").lower()
    return Entry(
        amount_cents=r.amount(node, "Amt", required=True),
        currency=r.currency(node, "Amt"),
        credit_debit=r.text(node, "CdtDbtInd", required=True),
        status=status,
        reversal=reversal in ("true", "1"),
        booking_date=r.date(node, "BookgDt/Dt") or _date_of(r.datetime(node, "BookgDt/DtTm", optional=True)),
        transactions=tuple(transactions),
        line=node.sourceline or 0,
    )


def _date_of(value: dt.datetime | None) -> dt.date | None:
    return timezone.localdate(value) if value is not None else None


class _Reader:
    """Namespaced look-ups with the checks every field needs, each failure naming the element and its line."""

    def __init__(self, root, version: str) -> None:
        self.root = root
        self.ns = ISO_NS + version

    def _path(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{step}" for step in path.split("/"))

    def find(self, node, path: str):
        return node.find(self._path(path))

    def all(self, node, path: str) -> list:
        return node.findall(self._path(path))

    def required(self, node, path: str):
        found = self.find(node, path)
        if found is None:
            raise BankFileError(
                _("Élément %(path)s manquant (ligne %(line)s).") % {"path": path, "line": node.sourceline}
            )
        return found

    def text(self, node, path: str, *, required: bool = False) -> str:
        found = self.required(node, path) if required else self.find(node, path)
        value = (found.text or "").strip() if found is not None else ""
        if required and not value:
            raise BankFileError(
                _("Élément %(path)s vide (ligne %(line)s).") % {"path": path, "line": found.sourceline}
            )
        return value

    def identifier(self, node, path: str, *, required: bool = False) -> str:
        value = self.text(node, path, required=required)
        if len(value) > MAX_ID_LENGTH:
            line = self.find(node, path).sourceline
            raise BankFileError(
                _("%(path)s trop long (ligne %(line)s) : %(max)s caractères au plus.")
                % {"path": path, "line": line, "max": MAX_ID_LENGTH}
            )
        return value

    def code(self, node, path: str) -> str:
        value = self.text(node, path)
        if value and not _CODE.fullmatch(value):
            line = self.find(node, path).sourceline
            raise BankFileError(
                _("%(path)s n'est pas un code ISO de 4 caractères (ligne %(line)s).")
                % {"path": path, "line": line}
            )
        return value

    def reason(self, node, path: str = "StsRsnInf/Rsn") -> Reason:
        """The first status reason (``StsRsnInf``; ``RtrInf/Rsn`` for returns): its code, else proprietary."""
        reason = self.find(node, path)
        base = path.rsplit("/", 1)[0] if "/" in path else ""
        holder = self.find(node, base) if base else node
        info = self.text(holder, "AddtlInf")[:140] if holder is not None else ""
        if reason is None:
            return Reason(info=info)
        code = self.code(reason, "Cd")
        proprietary = self.text(reason, "Prtry")[:35]
        return Reason(code=code, proprietary=proprietary, info=info)

    def integer(self, node, path: str) -> int | None:
        value = self.text(node, path)
        if not value:
            return None
        if not value.isascii() or not value.isdigit() or len(value) > 15:
            line = self.find(node, path).sourceline
            raise BankFileError(
                _("%(path)s n'est pas un nombre entier (ligne %(line)s).") % {"path": path, "line": line}
            )
        return int(value)

    def amount(self, node, path: str, *, required: bool = False) -> int | None:
        """An ISO decimal amount ("1234.5") in integer cents, without a float; more than 2 decimals refused."""
        found = self.find(node, path)
        if found is None and not required:
            return None
        value = self.text(node, path, required=True)
        match = _AMOUNT.fullmatch(value)
        if not match or (match.group(2) or "").rstrip("0")[2:]:
            line = self.find(node, path).sourceline
            raise BankFileError(
                _("Montant %(path)s illisible (ligne %(line)s) : un nombre comme 1234.56 est attendu.")
                % {"path": path, "line": line}
            )
        whole, fraction = match.groups()
        return int(whole) * 100 + int((fraction or "")[:2].ljust(2, "0"))

    def currency(self, node, path: str | None) -> str:
        found = self.find(node, path) if path else None
        return (found.get("Ccy") or "").strip()[:3] if found is not None else ""

    def datetime(self, node, path: str, *, optional: bool = False) -> dt.datetime | None:
        value = self.text(node, path, required=not optional)
        if not value:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            line = self.find(node, path).sourceline
            raise BankFileError(
                _("Date et heure %(path)s illisibles (ligne %(line)s).") % {"path": path, "line": line}
            ) from None
        return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed

    def date(self, node, path: str) -> dt.date | None:
        value = self.text(node, path)
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            line = self.find(node, path).sourceline
            raise BankFileError(
                _("Date %(path)s illisible (ligne %(line)s).") % {"path": path, "line": line}
            ) from None
