"""The bank file of a payment run: a SEPA credit transfer initiation, ISO 20022 pain.001.001.09.

Built with sepaxml (elements, never string formatting) and validated against the official XSD that sepaxml
ships, with lxml, before anyone stores it: a file that the schema refuses, or whose control sums differ
from the transfers by a single cent, raises :class:`BankFileInvalid` and is never written. Texts are reduced
to the SEPA Latin character set (EPC guidelines), because banks reject, or silently mangle, anything else.
Nothing here reads the database; the IBANs in clear come from the caller and never reach an error message.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sepaxml
from django.utils import timezone
from django.utils.translation import gettext as _
from lxml import etree
from sepaxml import SepaTransfer
from text_unidecode import unidecode

SCHEMA = "pain.001.001.09"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{SCHEMA}"
XSD_PATH = Path(sepaxml.__file__).parent / "schemas" / f"{SCHEMA}.xsd"
NAME_LENGTH = 70  # EPC: names are at most 70 characters (the XSD allows 140)
REMITTANCE_LENGTH = 140  # unstructured remittance information
MAX_TRANSFER_CENTS = 99_999_999_999  # EPC: at most 999 999 999,99 € per transfer
# The SEPA Latin character set (EPC217-08): letters, digits, space and / - ? : ( ) . , ' +
_NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")
_SPACES = re.compile(r"\s+")
_SEPA_ID = re.compile(r"^[A-Za-z0-9/\-?:().,'+]{1,35}$")
_QUOTED_VALUE = re.compile(r"The value '[^']*'")  # libxml2 quotes the refused value: never repeat it
_NS_NAME = re.compile(r"\{(?:urn|https?):[^}]*\}")


class BankFileInvalid(Exception):
    """The file would be refused by the bank (schema, control sums, a field): the message says where and why,
    without any account number."""


@dataclass(frozen=True)
class Debtor:
    """The operator's own account, from which the transfers leave (settings.REMPART_PAYMENTS_DEBTOR)."""

    name: str
    iban: str
    bic: str


@dataclass(frozen=True)
class Transfer:
    """One credit transfer: the payment reference is the EndToEndId the bank reports back (pain.002)."""

    reference: str
    amount_cents: int
    creditor_name: str
    iban: str
    bic: str
    remittance: str


def sepa_text(value: str, max_length: int = NAME_LENGTH) -> str:
    """Reduce a text to the SEPA Latin character set: accents dropped (é → e, Œ → OE), & → +, anything else
    outside the set becomes a space; spaces collapsed; cut to ``max_length``."""
    text = unidecode(value or "").replace("&", "+").replace("_", "-")
    text = _SPACES.sub(" ", _NOT_SEPA.sub(" ", text)).strip()
    return text[:max_length].rstrip()


def is_sepa_id(value: str) -> bool:
    """An identifier the bank accepts as MsgId / PmtInfId / EndToEndId: ≤ 35 SEPA characters, no space,
    neither starting nor ending with '/' and without '//' (EPC rules for references)."""
    return (
        bool(_SEPA_ID.match(value))
        and not value.startswith("/")
        and not value.endswith("/")
        and "//" not in value
    )


def cents_text(cents: int) -> str:
    """12345 → "123.45": the XSD's decimal, from integer cents, without a float."""
    return f"{cents // 100}.{cents % 100:02d}"


def cents_of(text: str) -> int:
    """ "123.45" → 12345, exactly (the reverse of :func:`cents_text`; at most two decimals)."""
    whole, _dot, decimals = text.strip().partition(".")
    if not whole.isdigit() or len(decimals) > 2 or (decimals and not decimals.isdigit()):
        raise BankFileInvalid(_("Montant illisible dans le fichier : %(text)s") % {"text": text[:20]})
    return int(whole) * 100 + int(decimals.ljust(2, "0") or "0")


class _Pain001(SepaTransfer):
    """sepaxml's transfer with our identifiers: the run's reference as MsgId and PmtInfId, our creation time
    (sepaxml would draw random ids and read the clock itself)."""

    def __init__(self, config: dict, *, message_id: str, created_at: dt.datetime) -> None:
        super().__init__(config, schema=SCHEMA, clean=False)
        header = self._xml.find("CstmrCdtTrfInitn").find("GrpHdr")
        header.find("MsgId").text = message_id
        if timezone.is_aware(created_at):
            created_at = timezone.localtime(created_at)
        header.find("CreDtTm").text = created_at.replace(microsecond=0, tzinfo=None).isoformat()
        self._payment_info_id = message_id

    def _finalize_batch(self) -> None:
        super()._finalize_batch()
        for number, node in enumerate(self._xml.find("CstmrCdtTrfInitn").iter("PmtInfId"), start=1):
            node.text = f"{self._payment_info_id}-{number}"


def write_pain001(
    *,
    message_id: str,
    created_at: dt.datetime,
    execution_date: dt.date,
    debtor: Debtor,
    transfers: Sequence[Transfer],
) -> bytes:
    """The pain.001.001.09 document for these transfers, validated (XSD and control sums) — or BankFileInvalid."""
    if not transfers:
        raise BankFileInvalid(
            _("Aucun virement à émettre : un fichier de virements en contient au moins un.")
        )
    if not is_sepa_id(message_id):
        raise BankFileInvalid(
            _("Référence de message invalide pour la banque : %(ref)s") % {"ref": message_id}
        )
    debtor_name = sepa_text(debtor.name)
    if not (debtor_name and debtor.iban and debtor.bic):
        raise BankFileInvalid(
            _("Le compte de l'opérateur (nom, IBAN, BIC : REMPART_PAYMENTS_DEBTOR) est incomplet.")
        )
    config = {"name": debtor_name, "IBAN": debtor.iban.replace(" ", "").upper(), "BIC": debtor.bic.upper(),
              "batch": True, "currency": "EUR"}  # fmt: skip
    document = _Pain001(config, message_id=message_id, created_at=created_at)
    seen: set[str] = set()
    for transfer in transfers:
        _check_transfer(transfer, seen)
        payment = {
            "name": sepa_text(transfer.creditor_name) or "PROFESSIONNEL DE SANTE",
            "IBAN": transfer.iban.replace(" ", "").upper(),
            "amount": transfer.amount_cents,
            "execution_date": execution_date,
            "description": sepa_text(transfer.remittance, REMITTANCE_LENGTH) or transfer.reference,
            "endtoend_id": transfer.reference,
        }
        if transfer.bic:
            payment["BIC"] = transfer.bic.upper()
        document.add_payment(payment)
    content = document.export(validate=False)  # validated below, with lxml, against the same XSD
    check_pain001(
        content,
        expected_count=len(transfers),
        expected_total_cents=sum(transfer.amount_cents for transfer in transfers),
    )
    return content


def _check_transfer(transfer: Transfer, seen: set[str]) -> None:
    if type(transfer.amount_cents) is not int or not 0 < transfer.amount_cents <= MAX_TRANSFER_CENTS:
        raise BankFileInvalid(
            _("Virement %(ref)s : le montant doit être positif et d'au plus 999 999 999,99 €.")
            % {"ref": transfer.reference}
        )
    if not is_sepa_id(transfer.reference) or transfer.reference in seen:
        raise BankFileInvalid(
            _("Virement %(ref)s : référence de bout en bout invalide ou en double.")
            % {"ref": transfer.reference}
        )
    seen.add(transfer.reference)
    if not transfer.iban:
        raise BankFileInvalid(_("Virement %(ref)s : aucun IBAN.") % {"ref": transfer.reference})


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


def _parse(content: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    try:
        document = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise BankFileInvalid(
            _("Le fichier n'est pas un document XML lisible (ligne %(line)s).") % {"line": exc.lineno}
        ) from None
    if document.getroottree().docinfo.doctype:  # a bank file has no DTD: entities are a way in, never needed
        raise BankFileInvalid(_("Le fichier contient une déclaration DOCTYPE : refusé."))
    return document


def validate_pain001(content: bytes) -> etree._Element:
    """Validate against the official pain.001.001.09 XSD; return the parsed document, or BankFileInvalid with the
    first error's line, element and rule (never the refused value: it may be an IBAN)."""
    document = _parse(content)
    schema = _schema()
    try:
        valid = schema.validate(document)
    except etree.XMLSchemaValidateError:
        valid = False
    if not valid:
        first = next(iter(schema.error_log), None)
        if first is None:
            raise BankFileInvalid(_("Le fichier pain.001 n'est pas conforme au schéma ISO 20022."))
        message = _NS_NAME.sub("", _QUOTED_VALUE.sub("The value", first.message))
        raise BankFileInvalid(
            _("Le fichier pain.001 n'est pas conforme au schéma ISO 20022 (ligne %(line)s) : %(message)s")
            % {"line": first.line, "message": message}
        )
    return document


def check_pain001(content: bytes, *, expected_count: int, expected_total_cents: int) -> None:
    """XSD validity, then the control sums: the group header's and each batch's count and sum equal the
    transfers they hold, and the whole equals what the caller expected, to the cent."""
    document = validate_pain001(content)
    ns = {"p": NAMESPACE}
    amounts = [cents_of(node.text) for node in document.iterfind(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns)]
    header = document.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    declared = (
        int(header.findtext("p:NbOfTxs", namespaces=ns)),
        cents_of(header.findtext("p:CtrlSum", namespaces=ns)),
    )
    if declared != (len(amounts), sum(amounts)) or declared != (expected_count, expected_total_cents):
        raise BankFileInvalid(
            _("Sommes de contrôle fausses : l'en-tête annonce %(n)s virements pour %(sum)s centimes, le fichier "
              "en contient %(count)s pour %(total)s, %(expected_n)s pour %(expected)s étaient attendus.")
            % {"n": declared[0], "sum": declared[1], "count": len(amounts), "total": sum(amounts),
               "expected_n": expected_count, "expected": expected_total_cents}
        )  # fmt: skip
    for number, tx in enumerate(document.iterfind(".//p:CdtTrfTxInf", ns), start=1):
        # Optional for the XSD, required by the EPC rulebook: who is paid, on which account, under what reference.
        for path in ("p:Cdtr/p:Nm", "p:CdtrAcct/p:Id/p:IBAN", "p:PmtId/p:EndToEndId"):
            if not (tx.findtext(path, namespaces=ns) or "").strip():
                raise BankFileInvalid(
                    _("Virement n° %(n)s : %(element)s manque (obligatoire pour un virement SEPA).")
                    % {"n": number, "element": path.replace("p:", "")}
                )
    for batch in document.iterfind("p:CstmrCdtTrfInitn/p:PmtInf", ns):
        batch_amounts = [cents_of(node.text) for node in batch.iterfind("p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns)]
        batch_declared = (
            int(batch.findtext("p:NbOfTxs", namespaces=ns)),
            cents_of(batch.findtext("p:CtrlSum", namespaces=ns)),
        )
        if batch_declared != (len(batch_amounts), sum(batch_amounts)):
            raise BankFileInvalid(
                _("Sommes de contrôle fausses dans le lot %(id)s.") % {"id": batch.findtext("p:PmtInfId", namespaces=ns)}
            )  # fmt: skip


def end_to_end_ids(content: bytes) -> list[str]:
    """The EndToEndIds of a pain.001 (the payment references), in file order."""
    document = _parse(content)
    return [node.text for node in document.iterfind(f".//{{{NAMESPACE}}}EndToEndId")]
