"""Money received from insurers: camt.054 credit notifications and receipts entered by hand.

Each receipt posts, once, debit ``operator_bank`` / credit the insurer's receivable (kind ``receipt``),
effective on the day the bank booked it, and moves its statement to partly paid or paid.

camt.054 import is all or nothing: the file is refused, with a French message naming the line and the reason,
and nothing changes, when it cannot be read, when the same file (SHA-256) was imported already, when one of
its credits matches no statement or several, was recorded already (same bank reference, or same end-to-end id,
amount and booking date), or is not in euros. Credits are matched to statements by the end-to-end id (a direct
debit of ours carries the statement number); a credit without one that names a collection file (its MsgId or
a PmtInfId: the bank booked the whole pain.008 as one lump sum) settles every statement of that file, one
receipt each, when its amount is the file's (or block's) total — any other amount refuses the file, saying
what was expected; else a credit is matched by a statement number in the remittance information (an insurer's
transfer). Credits not booked yet (PDNG, INFO), reversals and returned transfers of the operator's (a credit
with ``RtrInf``: ``payments/returns.py``'s) are skipped and counted. Debits are the operator's own transfers
and skipped, except a direct debit the insurer's bank returned (``debit_returns.py``), which re-opens the
receivable.

By hand (the console): a fresh second factor (the view's), the treasury role, and above
``REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS`` a second treasury member's approval: the receipt then waits
(no transaction) until another person approves it (the database refuses an approver equal to the recorder),
or until its author or another treasury member discards it (with a reason; it can then never be approved).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.accounting import service as accounting
from rempart.accounting.models import Transaction, TransactionKind
from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Role
from rempart.authorizations.templatetags.money import euros
from rempart.billing import collection as collections
from rempart.billing import debit_returns
from rempart.billing.bank_credit_xml import Credit, read_credits
from rempart.billing.models import CollectionFile, Receipt, Statement
from rempart.billing.receipt_status import ReceiptError, received_cents, refresh_status  # noqa: F401 - re-exported
from rempart.payments.bank_xml import BankFileError

RECORDER_ROLES = {Role.TREASURY}
_TOKENS = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.]*[A-Za-z0-9]")


@dataclass
class ImportResult:
    sha256: str
    receipts: list[Receipt] = field(default_factory=list)
    returns: list[Receipt] = field(default_factory=list)  # direct-debit receipts the insurer's bank took back
    skipped_not_booked: int = 0
    skipped_reversals: int = 0
    skipped_debits: int = 0  # the operator's own transfers (payments' business)
    skipped_transfer_returns: int = 0  # credits returning the operator's transfers (payments' business)

    @property
    def returned_cents(self) -> int:
        return sum(receipt.amount_cents for receipt in self.returns)

    @property
    def total_cents(self) -> int:
        return sum(receipt.amount_cents for receipt in self.receipts)


def can_record(user) -> bool:
    return bool(user and user.is_authenticated and roles.is_operator(user, RECORDER_ROLES))


def four_eyes_threshold() -> int:
    return int(settings.REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS)


# --- posting -----------------------------------------------------------------------------------------------


def _post(receipt: Receipt, key: str) -> None:
    """Debit the bank, credit the insurer's receivable; then the statement's status follows its receipts."""
    amount = receipt.amount_cents
    receipt.transaction = accounting.post(
        TransactionKind.RECEIPT,
        [(accounting.operator_bank(), amount), (accounting.insurer_receivable(receipt.insurer_id), -amount)],
        idempotency_key=key,
        memo=f"Encaissement {receipt.reference}"[:200],
        source=("receipt", str(receipt.pk)),
        effective_date=receipt.received_on,
    )
    receipt.save(update_fields=["transaction", "approved_by"])
    if receipt.statement_id:
        refresh_status(receipt.statement_id)


# --- camt.054 ----------------------------------------------------------------------------------------------


def _identity(credit: Credit) -> str:
    """What makes a credit the same credit in another file: the bank's reference, else its visible facts."""
    if credit.bank_reference:  # the entry's reference may be shared by the transactions of a batch entry
        return f"ref:{credit.bank_reference}|{credit.end_to_end_id}|{credit.amount_cents}"
    return f"tx:{credit.end_to_end_id}|{credit.remittance}|{credit.amount_cents}|{credit.booking_date}"


def _key(identity: str) -> str:
    return "billing-receipt:camt:" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def _where(credit: Credit) -> str:
    return _("ligne %(line)s, %(amount)s centimes") % {"line": credit.line, "amount": credit.amount_cents}


def _match(credit: Credit) -> Statement:
    where = _where(credit)
    if credit.end_to_end_id:
        found = list(Statement.objects.filter(number=credit.end_to_end_id).select_related("insurer"))
        if found:
            return found[0]
    tokens = set(_TOKENS.findall(credit.remittance))
    found = list(Statement.objects.filter(number__in=tokens).select_related("insurer")) if tokens else []
    if len(found) > 1:
        raise ReceiptError(
            _(
                "Crédit %(where)s : la référence cite plusieurs relevés (%(numbers)s) ; saisissez-le à la main."
            )
            % {"where": where, "numbers": ", ".join(sorted(s.number for s in found))},
            "ambiguous",
        )
    if not found:
        raise ReceiptError(
            _(
                "Crédit %(where)s : aucun relevé ne correspond à sa référence (« %(ref)s ») ; le fichier est "
                "refusé, rien n'a été enregistré. Saisissez ce crédit à la main s'il vient d'un assureur."
            )
            % {"where": where, "ref": (credit.end_to_end_id or credit.remittance or "—")[:60]},
            "unmatched",
        )
    return found[0]


def _match_collection(credit: Credit) -> tuple[CollectionFile, collections.Block] | None:
    """A lump-sum credit naming one of our collection files (MsgId, or a PmtInfId of it), or None.

    Its amount must be the total of what it names: the block when a PmtInfId is named and agrees, else the
    whole file; any other amount refuses the file with the expected and received amounts."""
    if credit.end_to_end_id:
        return None
    refs = [*credit.batch_refs, *_TOKENS.findall(credit.remittance)]
    if not refs:
        return None
    wanted = set(refs) | {ref.rsplit("-", 1)[0] for ref in refs if "-" in ref}
    named: list[tuple[CollectionFile, collections.Block]] = []
    for made in CollectionFile.objects.filter(reference__in=wanted).order_by("pk"):
        file_blocks = collections.blocks(made)
        named += [(made, file_blocks[ref]) for ref in dict.fromkeys(refs) if ref in file_blocks]
    if not named:
        return None
    for made, block in named:
        if block.total_cents == credit.amount_cents:
            return made, block
    specific = [pair for pair in named if pair[1].reference != pair[0].reference]  # a PmtInfId: a block
    made, block = (specific or named)[0]
    raise ReceiptError(
        _(
            "Crédit %(where)s : il désigne le prélèvement %(ref)s, dont le total ne correspond pas (attendu "
            "%(expected)s, reçu %(got)s) ; le fichier est refusé, rien n'a été enregistré."
        )
        % {"where": _where(credit), "ref": block.reference, "expected": euros(block.total_cents),
           "got": euros(credit.amount_cents)},
        "unmatched",
    )  # fmt: skip


def _collected_already(statement: Statement, made: CollectionFile | None) -> bool:
    return (
        bool(made)
        and statement.receipts.filter(
            collection_file=made, transaction__isnull=False, return_transaction__isnull=True
        ).exists()
    )


def import_camt054(content: bytes, *, user=None, request=None) -> ImportResult:
    """Record every booked credit of the file as a receipt, or refuse the whole file (ReceiptError)."""
    sha256 = hashlib.sha256(bytes(content) if content else b"").hexdigest()
    try:
        result = _import(content, sha256, user)
    except ReceiptError as exc:
        record_event("billing.receipts_refused", request=request, user=user, sha256=sha256, code=exc.code,
                     reason=exc.message[:300])  # fmt: skip
        raise
    record_event(
        "billing.receipts_imported", request=request, user=user, sha256=sha256,
        receipts=len(result.receipts), total_cents=result.total_cents, returns=len(result.returns),
        returned_cents=result.returned_cents,
    )  # fmt: skip
    return result


def _checked(credit: Credit, result: ImportResult, seen: set[str], what: str) -> str | None:
    """The credit's identity if it is to be recorded; None if skipped (not booked); ReceiptError if refused."""
    if credit.status and credit.status != "BOOK":
        result.skipped_not_booked += 1
        return None
    where = _("ligne %(line)s") % {"line": credit.line}
    if credit.currency and credit.currency != "EUR":
        raise ReceiptError(
            _("%(what)s %(where)s en %(ccy)s : seuls les euros sont acceptés.")
            % {"what": what, "where": where, "ccy": credit.currency},
            "currency",
        )
    if credit.amount_cents <= 0 or credit.booking_date is None:
        raise ReceiptError(
            _("%(what)s %(where)s : montant nul ou date de comptabilisation absente.")
            % {"what": what, "where": where},
            "malformed",
        )
    identity = _identity(credit)
    if identity in seen or Transaction.objects.filter(idempotency_key=_key(identity)).exists():
        raise ReceiptError(
            _("%(what)s %(where)s déjà enregistré (référence %(ref)s) : le fichier est refusé, rien n'a été "
              "enregistré.") % {"what": what, "where": where,
                                "ref": (credit.bank_reference or credit.end_to_end_id)[:40]},
            "duplicate_entry",
        )  # fmt: skip
    seen.add(identity)
    return identity


def _import(content: bytes, sha256: str, user) -> ImportResult:
    try:
        notification = read_credits(content)
    except BankFileError as exc:
        raise ReceiptError(_("Fichier illisible : %(why)s") % {"why": str(exc)}, "malformed") from None
    if Receipt.objects.filter(Q(bank_file_sha256=sha256) | Q(return_file_sha256=sha256)).exists():
        raise ReceiptError(
            _("Ce fichier a déjà été importé (même empreinte SHA-256) : rien n'a été enregistré."),
            "duplicate_file",
        )
    result = ImportResult(sha256)
    with transaction.atomic():
        seen: set[str] = set()
        for credit in notification.credits:
            if credit.reversal:
                result.skipped_reversals += 1
                continue
            if credit.returned:
                result.skipped_transfer_returns += 1
                continue
            identity = _checked(credit, result, seen, _("Crédit"))
            if identity is None:
                continue
            lump = _match_collection(credit)
            if lump is not None:
                result.receipts += _settle_collection(credit, identity, *lump, sha256=sha256, user=user)
                continue
            statement = _match(credit)
            made = (
                statement.collection_files.order_by("-pk").first()
                if credit.end_to_end_id == statement.number
                else None
            )
            if _collected_already(statement, made):
                raise ReceiptError(
                    _("Crédit %(where)s : le prélèvement du relevé %(number)s est déjà encaissé ; le fichier est "
                      "refusé, rien n'a été enregistré.") % {"where": _where(credit), "number": statement.number},
                    "duplicate_entry",
                )  # fmt: skip
            receipt = Receipt.objects.create(
                insurer=statement.insurer,
                statement=statement,
                amount_cents=credit.amount_cents,
                received_on=credit.booking_date,
                source=Receipt.Source.DIRECT_DEBIT if made else Receipt.Source.CAMT_054,
                reference=(credit.bank_reference or credit.end_to_end_id or credit.remittance)[:140],
                bank_file_sha256=sha256,
                recorded_by=user,
                collection_file=made,
            )
            _post(receipt, _key(identity))
            result.receipts.append(receipt)
        for debit in notification.debits:
            if not debit_returns.is_return(debit):
                result.skipped_debits += 1
                continue
            if _checked(debit, result, seen, _("Retour de prélèvement")) is None:
                continue
            receipt = debit_returns.find_receipt(debit)
            result.returns.append(debit_returns.record_return(receipt, debit, sha256=sha256, user=user))
        if not result.receipts and not result.returns:
            raise ReceiptError(
                _("Aucun crédit comptabilisé à enregistrer dans ce fichier : rien n'a été modifié."), "empty"
            )
    return result


def _settle_collection(
    credit: Credit, identity: str, made: CollectionFile, block: collections.Block, *, sha256: str, user
) -> list[Receipt]:
    """One receipt per statement the lump sum collected (the amounts the file asked for), or ReceiptError."""
    statements = {s.number: s for s in made.statements.select_related("insurer")}
    created = []
    for number, amount in block.debits:
        statement = statements.get(number)
        if statement is None:
            raise ReceiptError(
                _("Le prélèvement %(ref)s cite un relevé qu'il ne collecte pas (%(number)s).")
                % {"ref": block.reference, "number": number},
                "unmatched",
            )
        if _collected_already(statement, made):
            raise ReceiptError(
                _("Crédit %(where)s : le prélèvement %(ref)s est déjà encaissé (relevé %(number)s) ; le fichier "
                  "est refusé, rien n'a été enregistré.") % {"where": _where(credit), "ref": block.reference,
                                                             "number": number},
                "duplicate_entry",
            )  # fmt: skip
        receipt = Receipt.objects.create(
            insurer=statement.insurer, statement=statement, amount_cents=amount, received_on=credit.booking_date,
            source=Receipt.Source.DIRECT_DEBIT, reference=(credit.bank_reference or block.reference)[:140],
            bank_file_sha256=sha256, recorded_by=user, collection_file=made,
        )  # fmt: skip
        _post(receipt, _key(f"{identity}|{number}"))
        created.append(receipt)
    return created


# --- by hand ---------------------------------------------------------------------------------------------------


def record_manual_receipt(
    *,
    insurer,
    amount_cents: int,
    received_on: dt.date,
    reference: str,
    user,
    statement: Statement | None = None,
    request=None,
) -> Receipt:
    """A receipt entered by a treasury member: posted now, or (above the threshold) waiting for a second one."""
    if not can_record(user):
        raise ReceiptError(_("Seule la trésorerie de l'opérateur enregistre des encaissements."), "forbidden")
    reference = (reference or "").strip()
    if type(amount_cents) is not int or amount_cents <= 0:
        raise ReceiptError(_("Le montant doit être un nombre positif de centimes."), "amount")
    if received_on > timezone.localdate():
        raise ReceiptError(_("La date de réception ne peut pas être dans le futur."), "date")
    if not reference:
        raise ReceiptError(_("Indiquez la référence du virement reçu (relevé bancaire)."), "reference")
    if statement is not None and statement.insurer_id != insurer.pk:
        raise ReceiptError(_("Ce relevé n'est pas celui de cet assureur."), "statement")
    identity = (
        f"manual:{insurer.pk}:{statement.pk if statement else ''}:{amount_cents}:{received_on}:{reference}"
    )
    key = "billing-receipt:" + hashlib.sha256(identity.encode()).hexdigest()[:40]
    with transaction.atomic():
        if Receipt.objects.filter(
            insurer=insurer, source=Receipt.Source.MANUAL, amount_cents=amount_cents, received_on=received_on,
            reference=reference[:140], statement=statement, discarded_at__isnull=True,
        ).exists():  # fmt: skip
            raise ReceiptError(
                _(
                    "Cet encaissement est déjà enregistré (même assureur, relevé, montant, date et référence)."
                ),
                "duplicate_entry",
            )
        receipt = Receipt.objects.create(
            insurer=insurer, statement=statement, amount_cents=amount_cents, received_on=received_on,
            source=Receipt.Source.MANUAL, reference=reference[:140], recorded_by=user,
        )  # fmt: skip
        if amount_cents <= four_eyes_threshold():
            _post(receipt, key)
    record_event(
        "billing.receipt_recorded", request=request, user=user, receipt=receipt.pk, insurer=insurer.amc_number,
        amount_cents=amount_cents, waiting_for_approval=receipt.transaction_id is None,
    )  # fmt: skip
    return receipt


def pending_manual_receipts():
    return Receipt.objects.filter(
        source=Receipt.Source.MANUAL, transaction__isnull=True, discarded_at__isnull=True
    ).select_related("insurer", "statement", "recorded_by")


def approve_manual_receipt(receipt: Receipt, *, user, request=None) -> Receipt:
    """The second person posts a receipt waiting for approval (never the one who entered it)."""
    if not can_record(user):
        raise ReceiptError(_("Seule la trésorerie de l'opérateur approuve des encaissements."), "forbidden")
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().get(pk=receipt.pk)
        if receipt.discarded_at is not None:
            raise ReceiptError(
                _("Cet encaissement a été écarté : il ne peut plus être approuvé."), "discarded"
            )
        if receipt.transaction_id is not None or receipt.source != Receipt.Source.MANUAL:
            raise ReceiptError(_("Cet encaissement n'attend pas d'approbation."), "not_pending")
        if receipt.recorded_by_id == user.pk:
            raise ReceiptError(
                _(
                    "Vous avez saisi cet encaissement : une seconde personne de la trésorerie doit l'approuver."
                ),
                "same_person",
            )
        receipt.approved_by = user
        identity = (
            f"manual:{receipt.insurer_id}:{receipt.statement_id or ''}:{receipt.amount_cents}:"
            f"{receipt.received_on}:{receipt.reference}"
        )
        _post(receipt, "billing-receipt:" + hashlib.sha256(identity.encode()).hexdigest()[:40])
    record_event(
        "billing.receipt_approved", request=request, user=user, receipt=receipt.pk,
        amount_cents=receipt.amount_cents, recorded_by=receipt.recorded_by.email if receipt.recorded_by else "",
    )  # fmt: skip
    return receipt


def discard_manual_receipt(receipt: Receipt, *, user, reason: str, request=None) -> Receipt:
    """Its author or another treasury member discards a receipt waiting for approval: never posted, never
    approvable afterwards (a mistyped amount, a transfer the bank did not credit in the end). Nothing moves."""
    if not can_record(user):
        raise ReceiptError(_("Seule la trésorerie de l'opérateur écarte des encaissements."), "forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise ReceiptError(_("Indiquez pourquoi cet encaissement est écarté."), "reason")
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().get(pk=receipt.pk)
        if receipt.discarded_at is not None:
            raise ReceiptError(_("Cet encaissement est déjà écarté."), "discarded")
        if receipt.transaction_id is not None or receipt.source != Receipt.Source.MANUAL:
            raise ReceiptError(
                _("Seul un encaissement saisi à la main et en attente d'approbation peut être écarté."),
                "not_pending",
            )
        receipt.discarded_at = timezone.now()
        receipt.discarded_by = user
        receipt.discard_reason = reason[:300]
        receipt.save(update_fields=["discarded_at", "discarded_by", "discard_reason"])
    record_event(
        "billing.receipt_discarded", request=request, user=user, receipt=receipt.pk,
        insurer=receipt.insurer.amc_number, amount_cents=receipt.amount_cents,
        recorded_by=receipt.recorded_by.email if receipt.recorded_by else "", reason=reason[:300],
    )  # fmt: skip
    return receipt


def record_receipt(insurer, amount_cents: int, *, received_on: dt.date, user, reference: str, statement=None,
                   request=None) -> Receipt:  # fmt: skip
    """Positional-friendly form of :func:`record_manual_receipt` (used by the money property tests)."""
    return record_manual_receipt(
        insurer=insurer, amount_cents=amount_cents, received_on=received_on, reference=reference, user=user,
        statement=statement, request=request,
    )  # fmt: skip
