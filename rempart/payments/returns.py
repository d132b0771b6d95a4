"""Bank returns: importing the bank's pain.002 status reports and camt.054 notifications, all or nothing.

A rejected transfer (pain.002 ``RJCT``, or a camt.054 credit returning it after settlement) is marked
``returned`` with its ISO reason; the ``payment`` transaction is reversed (``payment_returned``: the payable is
credited again, so the next run pays the amount), the professional's IBAN is marked failed when the reason is
about their account, the organisation's owners are emailed (masked IBAN, never the IBAN) and a security event
is recorded. A settled transfer (camt.054 booked debit, pain.002 ``ACSC``) gets ``settled_at``; nothing is posted
for it, the operator's bank account was credited at approval. A file is refused with a specific message and
changes nothing when it does not parse, is not a supported pain.002/camt.054, does not match a run, or was
already imported (same SHA-256). Matching and every refusal are in ``return_matching.py``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from rempart.accounting import service as accounting
from rempart.accounts.events import record_event
from rempart.accounts.models import Membership, Role
from rempart.authorizations.templatetags.money import euros
from rempart.lib.crypto import field_cipher
from rempart.payments import bank_xml, return_matching, return_reasons
from rempart.payments.models import BankFileImport, Payment
from rempart.registry.bank_details import mark_iban_failed

logger = logging.getLogger(__name__)


class BankFileRefused(Exception):
    """The file was refused as a whole; nothing was changed. ``message`` says why, in the user's language."""

    def __init__(self, message: str) -> None:
        self.message = str(message)
        super().__init__(self.message)


@dataclass(frozen=True)
class ImportResult:
    bank_file: BankFileImport
    summary: dict

    @property
    def kind(self) -> str:
        return self.bank_file.kind


def import_bank_file(content: bytes, *, user=None) -> ImportResult:
    """Import one pain.002 or camt.054 (told apart by its namespace); raise :class:`BankFileRefused` otherwise."""
    content = bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    _refuse_if_imported(digest)
    try:
        document = bank_xml.read_bank_file(content)
    except bank_xml.BankFileError as exc:
        raise BankFileRefused(str(exc)) from None
    try:
        with transaction.atomic():
            result = _import(document, digest, user)
    except return_matching.Refusal as exc:
        raise BankFileRefused(str(exc)) from None
    except IntegrityError:
        _refuse_if_imported(digest)  # the same file, imported at the same moment by someone else
        raise
    logger.info("bank file imported: %s %s, run %s", document.kind, digest[:12], result.summary["run"])
    return result


def summary_line(summary: dict) -> str:
    """One line for the command's output and logs: counts and amounts, no IBAN (not even masked), no names."""
    pending = ", ".join(f"{status} {count}" for status, count in sorted(summary.get("pending", {}).items()))
    return (
        f"{summary['kind']} {summary['message_id']} for run {summary['run']}: "
        f"{summary['rejected']} rejected ({euros(summary['rejected_cents'])}, "
        f"{summary['iban_failed']} IBAN marked failed), {summary['settled']} settled "
        f"({euros(summary['settled_cents'])}), {summary['already_settled']} already settled"
        + (f", unchanged: {pending}" if pending else "")
    )


def _refuse_if_imported(digest: str) -> None:
    earlier = BankFileImport.objects.filter(sha256=digest).select_related("run").first()
    if earlier is not None:
        raise BankFileRefused(
            _("Fichier déjà importé le %(date)s (%(kind)s %(id)s, campagne %(run)s) : rien n'a été modifié.")
            % {
                "date": date_format(timezone.localtime(earlier.imported_at), "SHORT_DATETIME_FORMAT"),
                "kind": earlier.kind,
                "id": earlier.message_id,
                "run": earlier.run.reference,
            }
        )


def _import(document, digest: str, user) -> ImportResult:
    if isinstance(document, bank_xml.StatusReport):
        run = return_matching.run_of_report(document)  # locked: imports for one run are one at a time
        _refuse_if_imported(digest)
        plan = return_matching.plan_status_report(document, run)
    else:
        run = return_matching.run_of_notification(document)
        _refuse_if_imported(digest)
        plan = return_matching.plan_notification(document, run)
    bank_file = BankFileImport.objects.create(
        kind=document.kind, sha256=digest, message_id=document.message_id, run=run, imported_by=user
    )  # first: a concurrent import of the same file waits on the unique digest, then fails
    now = timezone.now()
    returned = [_return(action, bank_file, user, now) for action in plan.actions if action.kind == "return"]
    settled = [action for action in plan.actions if action.kind == "settle"]
    _settle(settled)
    summary = {
        "kind": document.kind,
        "version": document.version,
        "message_id": document.message_id,
        "run": run.reference,
        "group_status": getattr(document, "group_status", ""),
        "rejected": len(returned),
        "rejected_cents": sum(item["amount_cents"] for item in returned),
        "iban_failed": sum(1 for item in returned if item["iban_failed"]),
        "settled": len(settled),
        "settled_cents": sum(action.payment.amount_cents for action in settled),
        "already_settled": plan.already_settled,
        "pending": dict(plan.pending),
        "returned": returned,
    }
    bank_file.summary = summary
    bank_file.save(update_fields=["summary"])
    record_event(
        "payments.bank_file_imported",
        user=user,
        kind=document.kind,
        message_id=document.message_id,
        run=run.reference,
        sha256=digest,
        rejected=summary["rejected"],
        rejected_cents=summary["rejected_cents"],
        settled=summary["settled"],
    )
    transaction.on_commit(
        lambda: _tell_owners(bank_file.pk, returned), robust=True
    )  # mail down ≠ import failed
    return ImportResult(bank_file, summary)


def _return(action: return_matching.Action, bank_file: BankFileImport, user, now) -> dict:
    """One rejected transfer: the payment reversed (its amount payable again), the IBAN marked, the event."""
    payment = action.payment
    code = action.reason.code
    try:
        reversal = accounting.reverse(
            payment.transaction,
            idempotency_key=f"payment:{payment.pk}:returned",
            memo=f"virement {payment.reference} rejeté par la banque" + (f" ({code})" if code else ""),
        )
    except accounting.LedgerError as exc:  # e.g. its payment transaction was already reversed by hand
        raise return_matching.Refusal(
            _(
                "Le virement %(e2e)s ne peut pas être contre-passé (%(why)s) : signalez-le à l'équipe technique."
            )
            % {"e2e": payment.reference, "why": type(exc).__name__}
        ) from None
    payment.status = Payment.Status.RETURNED
    payment.return_reason = code
    payment.returned_at = now
    payment.return_transaction = reversal
    payment.save(update_fields=["status", "return_reason", "returned_at", "return_transaction"])
    professional = payment.organisation.professional
    iban_failed = False
    if professional is not None and return_reasons.reason(code).account:
        iban_failed = mark_iban_failed(professional, reason_code=code, at=now, iban=_iban_paid(payment))
    record_event(
        "payments.transfer_returned",
        user=user,
        organisation=payment.organisation,
        reference=payment.reference,
        run=bank_file.run.reference,
        amount_cents=payment.amount_cents,
        reason=code,
        iban=payment.iban_masked,
        iban_failed=iban_failed,
        bank_file=bank_file.sha256[:16],
    )
    return {
        "payment_id": payment.pk,
        "reference": payment.reference,
        "organisation_id": payment.organisation_id,
        "organisation": payment.organisation.name,
        "amount_cents": payment.amount_cents,
        "iban_masked": payment.iban_masked,
        "reason": code,
        "reason_proprietary": action.reason.proprietary,
        "reason_info": action.reason.info,
        "iban_failed": iban_failed,
    }


def _iban_paid(payment: Payment) -> str | None:
    """The IBAN the rejected transfer went to, decrypted in memory only for the registry to compare it with
    the organisation's current one (a new IBAN given since the run is not marked failed for the old one's
    fault). Never logged, stored or shown."""
    if not payment.iban_cipher:
        return None
    return field_cipher().decrypt("iban", bytes(payment.iban_cipher))


def _settle(actions: list[return_matching.Action]) -> None:
    payments = []
    for action in actions:
        payment = action.payment
        payment.status = Payment.Status.SETTLED
        payment.settled_at = action.at or timezone.now()
        payments.append(payment)
    Payment.objects.bulk_update(payments, ["status", "settled_at"], batch_size=1000)


def _tell_owners(bank_file_id: int, returned: list[dict]) -> None:
    """After commit: each organisation's owners learn which transfer failed and why (masked IBAN only)."""
    if not returned:
        return
    by_organisation: dict[int, list[dict]] = {}
    for item in returned:
        by_organisation.setdefault(item["organisation_id"], []).append(item)
    owners: dict[int, list[str]] = {}
    for organisation_id, email in Membership.objects.filter(
        organisation_id__in=by_organisation,
        role=Role.OWNER,
        user__is_active=True,
        user__suspended_at__isnull=True,
    ).values_list("organisation_id", "user__email"):
        owners.setdefault(organisation_id, []).append(email)
    messages = []
    with translation.override("fr"):  # the owners' emails are written in French, like the others
        for organisation_id, items in by_organisation.items():
            if not owners.get(organisation_id):
                continue
            transfers = [
                {
                    **item,
                    "amount": euros(item["amount_cents"]),
                    "reason_label": return_reasons.label(item["reason"]),
                }
                for item in items
            ]
            body = render_to_string(
                "payments/returns/email_returned.txt",
                {"organisation": items[0]["organisation"], "transfers": transfers,
                 "iban_failed": any(item["iban_failed"] for item in items)},
            )  # fmt: skip
            messages.append(
                mail.EmailMessage(
                    "Rempart — un virement n'a pas pu vous être versé",
                    body,
                    settings.DEFAULT_FROM_EMAIL,
                    owners[organisation_id],
                )
            )
    if messages:
        mail.get_connection().send_messages(messages)
    logger.info("bank file %s: %s owners' notices sent", bank_file_id, len(messages))
