"""Direct debits the insurer's bank took back: a camt.054 debit re-opens the insurer's receivable.

A SEPA direct debit can be returned after it was credited (insufficient funds, no mandate, refused by the
insurer…): the bank books a *debit* on the operator's account, with the original end-to-end id (our
statement number), often the mandate id and a return reason (``RtrInf/Rsn/Cd``). In the same spirit as the
professionals' returned transfers (``payments/returns.py``):

- the receipt it reverses is found: the direct-debit receipt of the statement named by the end-to-end id,
  for the same amount, not returned yet (the mandate, when the bank gives it, must be the contract's);
- its ``receipt`` transaction is reversed once (kind ``receipt`` too, so "received from insurers" in the trial
  balance and the overdue computation net it; ``reverses`` points at the original; key
  ``billing-receipt:<pk>:returned``): credit the operator's bank, debit the insurer's receivable, effective on
  the bank's booking date;
- the receipt keeps when and why (``returned_on``, ``return_reason``, ``return_reference``); its statement's
  status follows its receipts again (``returned`` when nothing is left received on it: due again); the ageing
  is the ledger's (the re-opened amount is aged from the return's date);
- a security event (``billing.debit_returned``) and an operator alert in the surveillance queue (signal
  ``insurer_debit_returned``, critical when the reason puts the mandate or the account in doubt).

A return that matches no receipt (unknown statement, other mandate, other amount, no direct debit received)
or a receipt already returned refuses the whole file, like every other camt.054 refusal: nothing changes.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

from rempart.accounting import service as accounting
from rempart.accounting.models import TransactionKind
from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation
from rempart.authorizations.templatetags.money import euros
from rempart.billing import debit_return_reasons
from rempart.billing.bank_credit_xml import Credit
from rempart.billing.models import BillingContract, Receipt, Statement
from rempart.billing.receipt_status import ReceiptError, refresh_status
from rempart.surveillance.labels import DEBIT_REOPENED
from rempart.surveillance.models import Alert

SIGNAL = "insurer_debit_returned"


def is_return(debit: Credit) -> bool:
    """A debit of the notification that concerns us: it carries a return reason, is flagged as a reversal, or
    names one of our statements. Any other debit is the operator's own transfer (the payments' business)."""
    if debit.returned or debit.reversal:
        return True
    return bool(debit.end_to_end_id) and Statement.objects.filter(number=debit.end_to_end_id).exists()


def _refused(debit: Credit, why: str, code: str = "unmatched") -> ReceiptError:
    return ReceiptError(
        _(
            "Retour de prélèvement ligne %(line)s (%(amount)s, référence « %(ref)s ») : %(why)s Le fichier est "
            "refusé, rien n'a été enregistré."
        )
        % {"line": debit.line, "amount": euros(debit.amount_cents), "ref": (debit.end_to_end_id or "—")[:35],
           "why": why},
        code,
    )  # fmt: skip


def find_receipt(debit: Credit) -> Receipt:
    """The direct-debit receipt this return reverses (locked), or ReceiptError saying why none is."""
    statement = (
        Statement.objects.filter(number=debit.end_to_end_id).select_related("insurer").first()
        if debit.end_to_end_id
        else None
    )
    if statement is None:
        raise _refused(debit, _("aucun relevé prélevé ne porte cette référence."), "unmatched_return")
    contract = BillingContract.objects.filter(insurer_id=statement.insurer_id).first()
    if debit.mandate_id and contract is not None and debit.mandate_id != contract.mandate_reference:
        raise _refused(
            debit,
            _("le mandat %(mandate)s n'est pas celui du contrat de l'assureur.")
            % {"mandate": debit.mandate_id},
            "unmatched_return",
        )
    collected = list(
        Receipt.objects.select_for_update()
        .filter(statement=statement, source=Receipt.Source.DIRECT_DEBIT, transaction__isnull=False)
        .order_by("pk")
    )
    still_received = [r for r in collected if r.return_transaction_id is None]
    same = [r for r in still_received if r.amount_cents == debit.amount_cents]
    if same:
        return same[0]
    if any(r.amount_cents == debit.amount_cents for r in collected):
        raise _refused(debit, _("ce prélèvement a déjà été contre-passé."), "duplicate_return")
    if still_received:
        raise _refused(
            debit,
            _("le montant ne correspond pas au prélèvement encaissé (attendu %(expected)s, reçu %(got)s).")
            % {"expected": euros(still_received[0].amount_cents), "got": euros(debit.amount_cents)},
            "unmatched_return",
        )
    raise _refused(debit, _("aucun prélèvement encaissé pour ce relevé à contre-passer."), "unmatched_return")


def record_return(receipt: Receipt, debit: Credit, *, sha256: str, user=None) -> Receipt:
    """Reverse the receipt's posting, mark the receipt and its statement, raise the event and the alert."""
    reason = debit_return_reasons.reason(debit.return_code)
    try:
        reversal = accounting.reverse(
            receipt.transaction,
            idempotency_key=f"billing-receipt:{receipt.pk}:returned",
            memo=f"Prélèvement rejeté {receipt.statement.number if receipt.statement_id else ''} "
            f"({debit.return_code or '—'})"[:200],
            kind=TransactionKind.RECEIPT,
            effective_date=debit.booking_date,
        )
    except accounting.LedgerError:  # reversed meanwhile by a concurrent import
        raise _refused(debit, _("ce prélèvement a déjà été contre-passé."), "duplicate_return") from None
    receipt.return_transaction = reversal
    receipt.returned_on = debit.booking_date
    receipt.return_reason = debit.return_code[:4]
    receipt.return_reference = (debit.bank_reference or debit.end_to_end_id)[:140]
    receipt.return_file_sha256 = sha256
    receipt.save(
        update_fields=[
            "return_transaction",
            "returned_on",
            "return_reason",
            "return_reference",
            "return_file_sha256",
        ]
    )
    if receipt.statement_id:
        refresh_status(receipt.statement_id)
    insurer = receipt.insurer
    number = receipt.statement.number if receipt.statement_id else ""
    record_event(
        "billing.debit_returned", user=user, receipt=receipt.pk, statement=number, insurer=insurer.amc_number,
        amount_cents=receipt.amount_cents, reason=debit.return_code, bank_file=sha256[:16],
    )  # fmt: skip
    with translation.override("fr"):  # stored evidence, in the operator's language like the other alerts
        label = debit_return_reasons.label(debit.return_code)
    Alert.objects.create(
        severity=Alert.Severity.CRITICAL if reason.mandate else Alert.Severity.WARNING,
        signal=SIGNAL,
        level=1,
        organisation=Organisation.objects.filter(insurer_id=insurer.pk).first(),
        evidence={
            SIGNAL: {
                "insurer_id": insurer.pk, "amc_number": insurer.amc_number, "name": insurer.name,
                "statement": number, "amount_cents": receipt.amount_cents, "reason": debit.return_code,
                "reason_label": label, "known_reason": debit_return_reasons.known(debit.return_code),
                "returned_on": debit.booking_date.isoformat(), "receipt": receipt.pk,
            }
        },
        response=DEBIT_REOPENED,  # a code, in words when shown (rempart.surveillance.labels)
    )  # fmt: skip
    return receipt
