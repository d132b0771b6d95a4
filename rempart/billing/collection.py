"""Collecting issued statements by SEPA direct debit: one pain.008.001.08 file, XSD-valid, written once.

Version .08 (not .02): it is the version of the EPC SEPA Direct Debit rulebooks in force since November 2023
(ISO 20022 2019 messages), the one banks ask for, and the BIC of the debtor's bank is optional in it (an
insurer's mandate may name an IBAN alone). sepaxml builds the document (elements, never strings) and ships
the official XSD, against which lxml validates it before anything is stored, like ``payments/sepa.py`` does
for pain.001; the control sums are checked to the cent.

Who is collected: statements still issued or partly paid, of insurers whose ``BillingContract`` collects by
direct debit, with a mandate (reference and signature date) and an IBAN, not yet in any collection file —
a statement is collected once (checked under a row lock on the statements). The amount is what is still open
on the statement (total less its receipts). The file posts nothing: the money is recorded when the bank's
camt.054 reports the credit (``receipts.py``: the EndToEndId is the statement number), so the ledger only
ever holds money that arrived. The scheme (``LclInstrm/Cd``) is the contract's: CORE by default, B2B when the
insurer signed a business-to-business mandate (no refund right; its bank checks the mandate); a file mixing
both has one payment block per scheme, sequence and date. Sequence FRST for a mandate's first collection,
RCUR after. ``blocks`` reads a stored file back (per MsgId and PmtInfId: the debits and their total), so a
credit the bank books as one lump sum can be matched to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sepaxml
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from lxml import etree
from sepaxml import SepaDD

from rempart.accounts.events import record_event
from rempart.billing.models import BillingContract, CollectionFile, Statement
from rempart.lib.crypto import field_cipher
from rempart.payments.sepa import (
    MAX_TRANSFER_CENTS,
    REMITTANCE_LENGTH,
    BankFileInvalid,
    _parse,
    cents_of,
    is_sepa_id,
    sepa_text,
)

SCHEMA = "pain.008.001.08"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{SCHEMA}"
XSD_PATH = f"{sepaxml.__path__[0]}/schemas/{SCHEMA}.xsd"
OPEN_STATUSES = (Statement.Status.ISSUED, Statement.Status.PARTLY_PAID)


class CollectionError(Exception):
    """Nothing to collect, or a contract that cannot be collected: the message says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Debit:
    """One direct debit: a statement's open amount, from the insurer's account, under its mandate."""

    reference: str  # EndToEndId: the statement number
    amount_cents: int
    debtor_name: str
    iban: str
    bic: str
    mandate_reference: str
    mandate_signed_on: dt.date
    sequence: str  # FRST | RCUR
    remittance: str
    scheme: str = BillingContract.Scheme.CORE  # pain.008 LclInstrm/Cd: CORE | B2B


def open_cents(statement: Statement) -> int:
    """What is still owed on a statement: its total less the receipts posted against it (and not returned)."""
    received = statement.receipts.filter(
        transaction__isnull=False, return_transaction__isnull=True
    ).aggregate(s=Sum("amount_cents", default=0))
    return statement.total_cents - received["s"]


def collectable() -> list[Statement]:
    """Issued statements of direct-debit insurers not yet in a collection file, oldest due first."""
    return list(
        Statement.objects.filter(
            status__in=OPEN_STATUSES,
            insurer__billing_contract__collection=BillingContract.Collection.DIRECT_DEBIT,
            collection_files__isnull=True,
        )
        .select_related("insurer__billing_contract")
        .order_by("due_date", "number")
    )


def _debit(statement: Statement, amount: int, first: bool) -> Debit:
    contract = statement.insurer.billing_contract
    if not (contract.mandate_reference and contract.mandate_signed_on and contract.iban_cipher):
        raise CollectionError(
            _(
                "Relevé %(number)s : le contrat de %(insurer)s n'a pas de mandat complet (référence, date de "
                "signature, IBAN) : impossible de prélever."
            )
            % {"number": statement.number, "insurer": statement.insurer.name}
        )
    if not is_sepa_id(statement.number) or not is_sepa_id(contract.mandate_reference):
        raise CollectionError(
            _("Relevé %(number)s : numéro ou référence de mandat non conforme aux règles SEPA.")
            % {"number": statement.number}
        )
    return Debit(
        reference=statement.number,
        amount_cents=amount,
        debtor_name=statement.insurer.name,
        iban=field_cipher().decrypt("iban", bytes(contract.iban_cipher)),
        bic=contract.bic,
        mandate_reference=contract.mandate_reference,
        mandate_signed_on=contract.mandate_signed_on,
        sequence="FRST" if first else "RCUR",
        remittance=f"Releve {statement.number}",
        scheme=contract.sepa_scheme or BillingContract.Scheme.CORE,
    )


def make_collection_file(
    *, collection_date: dt.date, user=None, statements: list[Statement] | None = None, request=None
) -> CollectionFile:
    """Write, validate and store the pain.008 collecting these (default: every collectable) statements.

    Atomic: any refusal (nothing to collect, an incomplete mandate, an invalid file) stores nothing."""
    if collection_date <= timezone.localdate():
        raise CollectionError(_("La date d'échéance du prélèvement doit être postérieure à aujourd'hui."))
    with transaction.atomic():
        wanted = [s.pk for s in (statements if statements is not None else collectable())]
        locked = list(
            Statement.objects.select_for_update(of=("self",))
            .filter(pk__in=wanted)
            .select_related("insurer__billing_contract")
            .order_by("due_date", "number")
        )
        already = set(
            CollectionFile.statements.through.objects.filter(statement_id__in=wanted).values_list(
                "statement_id", flat=True
            )
        )
        debits, chosen = [], []
        for statement in locked:
            contract = getattr(statement.insurer, "billing_contract", None)
            if statement.pk in already:
                raise CollectionError(
                    _("Relevé %(number)s : déjà prélevé (un relevé ne se prélève qu'une fois).")
                    % {"number": statement.number}
                )
            if contract is None or contract.collection != BillingContract.Collection.DIRECT_DEBIT:
                raise CollectionError(
                    _("Relevé %(number)s : l'assureur ne règle pas par prélèvement.")
                    % {"number": statement.number}
                )
            if statement.status not in OPEN_STATUSES:
                continue
            amount = open_cents(statement)
            if amount <= 0:
                continue
            first = not CollectionFile.objects.filter(statements__insurer_id=statement.insurer_id).exists()
            debits.append(_debit(statement, amount, first))
            chosen.append(statement)
        if not debits:
            raise CollectionError(_("Aucun relevé à prélever."))
        now = timezone.now()
        reference = f"PRLV-{timezone.localtime(now):%Y%m%d%H%M%S}-{len(debits)}"
        suffix = 1
        while CollectionFile.objects.filter(reference=reference).exists():
            suffix += 1
            reference = f"PRLV-{timezone.localtime(now):%Y%m%d%H%M%S}-{len(debits)}-{suffix}"
        content = write_pain008(
            message_id=reference, created_at=now, collection_date=collection_date, debits=debits
        )
        collection = CollectionFile.objects.create(
            reference=reference,
            collection_date=collection_date,
            total_cents=sum(d.amount_cents for d in debits),
            file_content=content,
            file_sha256=hashlib.sha256(content).hexdigest(),
            created_by=user,
        )
        collection.statements.set(chosen)
        record_event(
            "billing.collection_file",
            request=request,
            user=user,
            reference=reference,
            statements=len(chosen),
            total_cents=collection.total_cents,
            sha256=collection.file_sha256,
        )
    return collection


class _Pain008(SepaDD):
    """sepaxml's direct debit with our ids and clock (it would draw random ones and read the clock)."""

    def __init__(self, config: dict, *, message_id: str, created_at: dt.datetime) -> None:
        super().__init__(config, schema=SCHEMA, clean=False)
        header = self._xml.find("CstmrDrctDbtInitn").find("GrpHdr")
        header.find("MsgId").text = message_id
        header.find("CreDtTm").text = (
            timezone.localtime(created_at).replace(microsecond=0, tzinfo=None).isoformat()
        )
        self._message_id = message_id

    def _add_to_batch_list(self, TX, payment) -> None:  # noqa: N803 (sepaxml's name)
        """One payment block per sequence, date *and scheme* (sepaxml knows one scheme per document)."""
        scheme = payment["scheme"]
        payment = {**payment, "collection_date": f"{payment['collection_date']}::{scheme}"}
        super()._add_to_batch_list(TX, payment)

    def _finalize_batch(self) -> None:
        super()._finalize_batch()
        root = self._xml.find("CstmrDrctDbtInitn")
        for number, (block, key) in enumerate(
            zip(root.findall("PmtInf"), self._batches, strict=True), start=1
        ):
            block.find("PmtInfId").text = f"{self._message_id}-{number}"
            block.find("PmtTpInf/LclInstrm/Cd").text = key.split("::")[2]


def write_pain008(
    *, message_id: str, created_at: dt.datetime, collection_date: dt.date, debits: list[Debit]
) -> bytes:
    """The pain.008.001.08 for these debits, validated (XSD, control sums) — or BankFileInvalid."""
    creditor = settings.REMPART_PAYMENTS_DEBTOR  # the operator's own account receives the debits
    creditor_id = settings.REMPART_BILLING_CREDITOR_ID
    if not (creditor.get("name") and creditor.get("iban") and creditor_id):
        raise BankFileInvalid(
            _("Le compte créancier de l'opérateur ou son identifiant créancier SEPA est incomplet.")
        )
    config = {
        "name": sepa_text(creditor["name"]),
        "IBAN": creditor["iban"].replace(" ", "").upper(),
        "BIC": (creditor.get("bic") or "").upper(),
        "batch": True,
        "creditor_id": creditor_id,
        "currency": "EUR",
    }
    document = _Pain008(config, message_id=message_id, created_at=created_at)
    for debit in debits:
        if not 0 < debit.amount_cents <= MAX_TRANSFER_CENTS:
            raise BankFileInvalid(_("Prélèvement %(ref)s : montant hors limites.") % {"ref": debit.reference})
        payment = {
            "name": sepa_text(debit.debtor_name) or "ASSUREUR",
            "IBAN": debit.iban.replace(" ", "").upper(),
            "amount": debit.amount_cents,
            "type": debit.sequence,
            "collection_date": collection_date,
            "mandate_id": debit.mandate_reference,
            "mandate_date": debit.mandate_signed_on,
            "description": sepa_text(debit.remittance, REMITTANCE_LENGTH),
            "endtoend_id": debit.reference,
            "scheme": debit.scheme,
        }
        if debit.bic:
            payment["BIC"] = debit.bic.upper()
        document.add_payment(payment)
    content = document.export(validate=False)
    check_pain008(
        content, expected_count=len(debits), expected_total_cents=sum(d.amount_cents for d in debits)
    )
    return content


_schema_cache: list[etree.XMLSchema] = []


def _schema() -> etree.XMLSchema:
    if not _schema_cache:
        _schema_cache.append(etree.XMLSchema(etree.parse(XSD_PATH)))
    return _schema_cache[0]


def check_pain008(content: bytes, *, expected_count: int, expected_total_cents: int) -> None:
    """Valid against the official XSD, and the header's count and sum equal the debits and what was expected."""
    document = _parse(content)
    schema = _schema()
    if not schema.validate(document):
        first = next(iter(schema.error_log), None)
        raise BankFileInvalid(
            _("Le fichier pain.008 n'est pas conforme au schéma ISO 20022 (ligne %(line)s).")
            % {"line": first.line if first else 0}
        )
    ns = {"p": NAMESPACE}
    amounts = [cents_of(n.text) for n in document.iterfind(".//p:DrctDbtTxInf/p:InstdAmt", ns)]
    header = document.find("p:CstmrDrctDbtInitn/p:GrpHdr", ns)
    declared = (
        int(header.findtext("p:NbOfTxs", namespaces=ns)),
        cents_of(header.findtext("p:CtrlSum", namespaces=ns)),
    )
    if declared != (len(amounts), sum(amounts)) or declared != (expected_count, expected_total_cents):
        raise BankFileInvalid(_("Sommes de contrôle fausses dans le fichier de prélèvements."))


@dataclass(frozen=True)
class Block:
    """What a stored collection file asked the bank to collect, under one reference (MsgId or PmtInfId)."""

    reference: str
    debits: tuple[tuple[str, int], ...]  # (EndToEndId = statement number, amount in cents)

    @property
    def total_cents(self) -> int:
        return sum(amount for _number, amount in self.debits)


def blocks(made: CollectionFile) -> dict[str, Block]:
    """The file read back from its stored bytes: the whole file under its MsgId, each PmtInf under its PmtInfId."""
    document = _parse(bytes(made.file_content))
    ns = {"p": NAMESPACE}
    found, everything = {}, []
    for block in document.iterfind(".//p:PmtInf", ns):
        debits = tuple(
            (
                tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns),
                cents_of(tx.findtext("p:InstdAmt", namespaces=ns)),
            )
            for tx in block.iterfind("p:DrctDbtTxInf", ns)
        )
        reference = block.findtext("p:PmtInfId", namespaces=ns)
        found[reference] = Block(reference, debits)
        everything.extend(debits)
    found[made.reference] = Block(made.reference, tuple(everything))
    return found
