"""Matching a bank file to the run it answers, and deciding what it does — before anything is written.

Every check that can refuse a file runs here, so that a refusal changes nothing: the run named by the file
exists and was approved, each EndToEndId is one of the transfers that run's pain.001 sent (not another run's,
not a held one), amounts and counts are those we sent, and each transfer can move to the state the file says
(a transfer is returned once; a settled one is not rejected afterwards). The result is an ordered list of
actions that ``returns.py`` applies in one database transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from rempart.authorizations.templatetags.money import euros
from rempart.payments import bank_xml
from rempart.payments.bank_xml import DebitNotification, Reason, SentFile, StatusReport
from rempart.payments.models import Payment, PaymentRun

REJECTED = frozenset({"RJCT", "CANC"})  # the transfer was not paid: its amount is payable again
SETTLED = frozenset({"ACSC", "ACCC"})  # settlement completed (debtor's account debited / creditor's credited)
PENDING = frozenset(
    {"ACCP", "ACSP", "ACTC", "ACWC", "ACWP", "ACFC", "ACIS", "PDNG", "RCVD", "BLCK", "PATC", "PRES"}
)  # accepted or pending: nothing changes
GROUP_ONLY = frozenset({"PART"})  # some accepted, some not: the transactions say which
BOOKED, NOT_BOOKED = "BOOK", frozenset({"PDNG", "INFO", "FUTR"})


class Refusal(Exception):
    """The file does not match what Rempart sent; nothing was written. The message is for the operator."""


@dataclass(frozen=True)
class Action:
    payment: Payment
    kind: str  # "return" | "settle"
    reason: Reason = Reason()
    at: dt.datetime | None = None  # settled at (booking date)


@dataclass
class Plan:
    run: PaymentRun
    actions: list[Action] = field(default_factory=list)
    already_settled: int = 0
    pending: Counter = field(default_factory=Counter)  # statuses that change nothing, and their counts


# --- the run -----------------------------------------------------------------------------------------------------


def run_of_report(report: StatusReport) -> PaymentRun:
    run = PaymentRun.objects.select_for_update().filter(reference=report.original_message_id).first()
    if run is None:
        raise Refusal(
            _("Aucune campagne de paiement ne porte la référence « %(ref)s » (OrgnlMsgId du compte rendu).")
            % {"ref": report.original_message_id}
        )
    return run


def run_of_notification(notice: DebitNotification) -> PaymentRun:
    """The one run a camt.054 is about, from its EndToEndIds and message ids; one run per file."""
    references = {
        tx.end_to_end_id for entry in notice.entries for tx in entry.transactions if tx.end_to_end_id
    }
    runs = dict(Payment.objects.filter(reference__in=references).values_list("reference", "run__reference"))
    named = {tx.message_id for entry in notice.entries for tx in entry.transactions if tx.message_id}
    for entry in notice.entries:
        if not entry.transactions:
            raise Refusal(
                _(
                    "L'écriture de la ligne %(line)s ne détaille ni ses virements (TxDtls) ni leur lot (Btch) : "
                    "impossible de savoir ce qu'elle règle."
                )
                % {"line": entry.line}
            )
        for tx in entry.transactions:
            if tx.end_to_end_id and tx.end_to_end_id not in runs:
                raise Refusal(_unknown(tx.end_to_end_id, tx.line))
            if not tx.end_to_end_id and not tx.message_id:
                raise Refusal(
                    _("La transaction de la ligne %(line)s n'a ni EndToEndId ni référence de lot (MsgId).")
                    % {"line": tx.line}
                )
    wanted = set(runs.values()) | named
    if len(wanted) > 1:
        raise Refusal(
            _(
                "Ce fichier concerne plusieurs campagnes (%(refs)s) : importez un avis par campagne, "
                "ou demandez à la banque un avis par remise."
            )
            % {"refs": ", ".join(sorted(wanted)[:5])}
        )
    if not wanted:
        raise Refusal(_("Ce fichier ne contient aucune écriture."))
    (reference,) = wanted
    run = PaymentRun.objects.select_for_update().filter(reference=reference).first()
    if run is None:
        raise Refusal(
            _("Aucune campagne de paiement ne porte la référence « %(ref)s » (MsgId).") % {"ref": reference}
        )
    return run


def _unknown(reference: str, line: int) -> str:
    return _("Ligne %(line)s : aucun virement de Rempart ne porte la référence « %(ref)s » (EndToEndId).") % {
        "line": line,
        "ref": reference,
    }


def _sent_file(run: PaymentRun) -> SentFile:
    if run.status != PaymentRun.Status.APPROVED:
        raise Refusal(
            _(
                "La campagne %(ref)s n'est pas approuvée (statut : %(status)s) : aucun fichier n'a été "
                "envoyé à la banque pour elle."
            )
            % {"ref": run.reference, "status": run.get_status_display()}
        )
    if not run.file_content:
        raise Refusal(_("La campagne %(ref)s n'a pas de fichier émis.") % {"ref": run.reference})
    try:
        return bank_xml.read_sent_file(bytes(run.file_content))
    except bank_xml.BankFileError:
        raise Refusal(
            _("Le fichier pain.001 de la campagne %(ref)s est illisible.") % {"ref": run.reference}
        ) from None


class _Ledger:
    """The run's sent transfers and their payments, with the state each reaches as the file is read."""

    def __init__(self, run: PaymentRun) -> None:
        self.run = run
        self.sent = _sent_file(run)
        payments = run.payments.filter(reference__in=list(self.sent.transfers)).select_related(
            "organisation__professional", "transaction"
        )
        self.payments = {p.reference: p for p in payments}
        for reference, transfer in self.sent.transfers.items():
            payment = self.payments.get(reference)
            if payment is None or payment.amount_cents != transfer.amount_cents:
                raise Refusal(
                    _(
                        "La campagne %(ref)s est incohérente : le virement %(e2e)s de son fichier ne correspond "
                        "à aucun virement enregistré de ce montant. Signalez-le à l'équipe technique."
                    )
                    % {"ref": run.reference, "e2e": reference}
                )
        self.state = {reference: p.status for reference, p in self.payments.items()}
        self.plan = Plan(run)

    def transfer(self, reference: str, line: int) -> bank_xml.SentTransfer:
        """One of this run's sent transfers, or a refusal saying whose it is."""
        sent = self.sent.transfers.get(reference)
        if sent is not None:
            return sent
        other = Payment.objects.filter(reference=reference).select_related("run").first()
        if other is None:
            raise Refusal(_unknown(reference, line))
        if other.run_id == self.run.pk:
            raise Refusal(
                _(
                    "Ligne %(line)s : le virement %(e2e)s n'était pas dans le fichier de la campagne %(ref)s "
                    "(statut : %(status)s)."
                )
                % {
                    "line": line,
                    "e2e": reference,
                    "ref": self.run.reference,
                    "status": other.get_status_display(),
                }
            )
        raise Refusal(
            _("Ligne %(line)s : le virement %(e2e)s appartient à la campagne %(other)s, pas à %(ref)s.")
            % {"line": line, "e2e": reference, "other": other.run.reference, "ref": self.run.reference}
        )

    def check_amount(self, reference: str, amount: int | None, currency: str, line: int) -> None:
        sent = self.sent.transfers[reference].amount_cents
        if currency and currency != "EUR":
            raise Refusal(
                _("Ligne %(line)s : devise %(ccy)s, les virements de Rempart sont en euros.")
                % {"line": line, "ccy": currency}
            )
        if amount is not None and amount != sent:
            raise Refusal(
                _("Ligne %(line)s : le virement %(e2e)s est de %(sent)s, le fichier dit %(said)s.")
                % {"line": line, "e2e": reference, "sent": euros(sent), "said": euros(amount)}
            )

    def reject(self, reference: str, reason: Reason, line: int) -> None:
        payment, state = self.payments[reference], self.state[reference]
        if state == Payment.Status.RETURNED:
            when = payment.returned_at
            raise Refusal(
                _("Ligne %(line)s : le virement %(e2e)s a déjà été rejeté%(when)s ; rien n'a été modifié.")
                % {"line": line, "e2e": reference, "when": _on(when)}
            )
        if state not in (Payment.Status.SENT, Payment.Status.SETTLED):
            raise Refusal(
                _("Ligne %(line)s : le virement %(e2e)s ne peut pas être rejeté (statut : %(status)s).")
                % {"line": line, "e2e": reference, "status": Payment.Status(state).label}
            )
        if payment.transaction_id is None:
            raise Refusal(
                _("Le virement %(e2e)s n'a pas d'écriture de paiement : signalez-le à l'équipe technique.")
                % {"e2e": reference}
            )
        self.state[reference] = Payment.Status.RETURNED
        self.plan.actions.append(Action(payment, "return", reason))

    def settle(self, reference: str, at: dt.datetime, line: int) -> None:
        payment, state = self.payments[reference], self.state[reference]
        if state == Payment.Status.SETTLED:
            self.plan.already_settled += 1
            return
        if state != Payment.Status.SENT:
            raise Refusal(
                _(
                    "Ligne %(line)s : le virement %(e2e)s est « %(status)s » : il ne peut plus être réglé "
                    "d'après ce fichier."
                )
                % {"line": line, "e2e": reference, "status": Payment.Status(state).label}
            )
        self.state[reference] = Payment.Status.SETTLED
        self.plan.actions.append(Action(payment, "settle", at=at))


def _on(when: dt.datetime | None) -> str:
    return (
        _(" le %(date)s") % {"date": date_format(timezone.localtime(when), "SHORT_DATETIME_FORMAT")}
        if when
        else ""
    )


# --- pain.002 ----------------------------------------------------------------------------------------------------


def plan_status_report(report: StatusReport, run: PaymentRun) -> Plan:
    """What a status report does to its run: each transfer's status is its own, else its block's, else its
    group's; a rejected group or block rejects every transfer in it."""
    book = _Ledger(run)
    if report.original_message_name and not report.original_message_name.startswith("pain.001"):
        raise Refusal(
            _("Ce compte rendu répond à un message %(name)s, pas à un virement pain.001.")
            % {"name": report.original_message_name[:35]}
        )
    _check_status(report.group_status, 0, group=True)
    _check_totals(report.original_count, report.original_control_sum_cents, book.sent.count,
                  book.sent.control_sum_cents, _("du groupe"))  # fmt: skip
    statuses: dict[str, tuple[str, Reason, int]] = {}
    blocks = {t.payment_info_id for t in book.sent.transfers.values()}
    block_status: dict[str, tuple[str, Reason]] = {}
    for block in report.payment_infos:
        if block.payment_info_id not in blocks:
            raise Refusal(
                _(
                    "Ligne %(line)s : le lot « %(id)s » (OrgnlPmtInfId) n'est pas dans le fichier de la campagne %(ref)s."
                )
                % {"line": block.line, "id": block.payment_info_id, "ref": run.reference}
            )
        _check_status(block.status, block.line, group=True)
        sent_block = book.sent.block(block.payment_info_id)
        _check_totals(block.count, block.control_sum_cents, len(sent_block),
                      sum(t.amount_cents for t in sent_block), _("du lot %s") % block.payment_info_id)  # fmt: skip
        block_status[block.payment_info_id] = (block.status, block.reason)
        for tx in block.transactions:
            sent = book.transfer(tx.end_to_end_id, tx.line)
            if sent.payment_info_id != block.payment_info_id:
                raise Refusal(
                    _("Ligne %(line)s : le virement %(e2e)s est dans le lot %(real)s, pas dans %(said)s.")
                    % {
                        "line": tx.line,
                        "e2e": tx.end_to_end_id,
                        "real": sent.payment_info_id,
                        "said": block.payment_info_id,
                    }  # fmt: skip
                )
            if tx.end_to_end_id in statuses:
                raise Refusal(
                    _("Ligne %(line)s : le virement %(e2e)s figure deux fois dans le fichier.")
                    % {"line": tx.line, "e2e": tx.end_to_end_id}
                )
            book.check_amount(tx.end_to_end_id, tx.amount_cents, tx.currency, tx.line)
            _check_status(tx.status, tx.line, group=False)
            status = _inherited(tx.status, block.status, report.group_status)
            if not status:
                raise Refusal(
                    _(
                        "Ligne %(line)s : le virement %(e2e)s n'a pas de statut (TxSts), ni son lot ni le groupe."
                    )
                    % {"line": tx.line, "e2e": tx.end_to_end_id}
                )
            if (block.status in REJECTED or report.group_status in REJECTED) and status not in REJECTED:
                raise Refusal(
                    _(
                        "Ligne %(line)s : le virement %(e2e)s est « %(status)s » dans un lot ou un groupe rejeté."
                    )
                    % {"line": tx.line, "e2e": tx.end_to_end_id, "status": status}
                )
            reason = next(
                (r for r in (tx.reason, block.reason, report.group_reason) if r.code or r.proprietary),
                tx.reason,
            )
            statuses[tx.end_to_end_id] = (status, reason, tx.line)
    for reference, sent in book.sent.transfers.items():  # transfers the file does not list one by one
        if reference in statuses:
            continue
        own_status, own_reason = block_status.get(sent.payment_info_id, ("", Reason()))
        status = _inherited("", own_status, report.group_status)
        if status:
            reason = own_reason if (own_reason.code or own_reason.proprietary) else report.group_reason
            statuses[reference] = (status, reason, 0)
    at = report.created_at
    for reference, (status, reason, line) in statuses.items():
        if status in REJECTED:
            book.reject(reference, reason, line)
        elif status in SETTLED:
            book.settle(reference, at, line)
        else:
            book.plan.pending[status] += 1
    return book.plan


def _inherited(own: str, block: str, group: str) -> str:
    for status in (own, block, group):
        if status and status not in GROUP_ONLY:
            return status
    return ""


def _check_status(status: str, line: int, *, group: bool) -> None:
    known = REJECTED | SETTLED | PENDING | (GROUP_ONLY if group else frozenset())
    if status and status not in known:
        raise Refusal(
            _("Ligne %(line)s : statut « %(status)s » inconnu ; rien n'a été modifié, voyez avec la banque.")
            % {"line": line, "status": status}
        )


def _check_totals(count, total, sent_count, sent_total, where) -> None:
    if (count is not None and count != sent_count) or (total is not None and total != sent_total):
        raise Refusal(
            _(
                "Les totaux %(where)s ne sont pas ceux envoyés : le fichier annonce %(count)s virements pour "
                "%(total)s, nous en avons envoyé %(sent_count)s pour %(sent_total)s."
            )  # fmt: skip
            % {
                "where": where,
                "count": count if count is not None else "?",
                "total": euros(total) if total is not None else "?",
                "sent_count": sent_count,
                "sent_total": euros(sent_total),
            }  # fmt: skip
        )


# --- camt.054 ----------------------------------------------------------------------------------------------------


def plan_notification(notice: DebitNotification, run: PaymentRun) -> Plan:
    """Booked debits settle transfers; a booked credit carrying return information (RtrInf) is a transfer
    returned after settlement. Pending entries change nothing; any other credit is not ours to import here."""
    book = _Ledger(run)
    for entry in notice.entries:
        if entry.currency and entry.currency != "EUR":
            raise Refusal(
                _("Ligne %(line)s : devise %(ccy)s, les virements de Rempart sont en euros.")
                % {"line": entry.line, "ccy": entry.currency}
            )
        if entry.status != BOOKED and entry.status not in NOT_BOOKED:
            raise Refusal(
                _("Ligne %(line)s : statut d'écriture « %(status)s » inconnu (BOOK, PDNG ou INFO attendu).")
                % {"line": entry.line, "status": entry.status or "—"}
            )
        if entry.reversal:
            raise Refusal(
                _(
                    "Ligne %(line)s : écriture d'annulation (RvslInd) : la banque corrige une écriture "
                    "précédente ; rien n'a été modifié, traitez-la avec la banque (voir le guide des retours)."
                )
                % {"line": entry.line}
            )
        if entry.credit_debit not in ("DBIT", "CRDT"):
            raise Refusal(_("Ligne %(line)s : CdtDbtInd doit valoir DBIT ou CRDT.") % {"line": entry.line})
        references = _entry_transfers(book, entry)
        if entry.status != BOOKED:
            book.plan.pending[entry.status] += len(references)
            continue
        at = _booking_time(entry.booking_date) or notice.created_at
        for reference, reason, line in references:
            if entry.credit_debit == "DBIT":
                book.settle(reference, at, line)
            else:
                book.reject(reference, reason, line)
    return book.plan


def _entry_transfers(book: _Ledger, entry: bank_xml.Entry) -> list[tuple[str, Reason, int]]:
    """The transfers one entry books, each checked against what we sent; the entry's total must be theirs."""
    found: list[tuple[str, Reason, int]] = []
    total = 0
    for tx in entry.transactions:
        if tx.message_id and tx.message_id != book.run.reference:
            raise Refusal(
                _(
                    "Ligne %(line)s : la référence de remise « %(said)s » n'est pas celle de la campagne %(ref)s."
                )
                % {"line": tx.line, "said": tx.message_id, "ref": book.run.reference}
            )
        if entry.credit_debit == "CRDT" and tx.return_reason is None:
            raise Refusal(
                _(
                    "Ligne %(line)s : crédit sans motif de retour (RtrInf) : ce n'est pas le retour d'un de nos "
                    "virements. Les encaissements ne s'importent pas ici."
                )
                % {"line": tx.line}
            )
        if tx.end_to_end_id:
            book.transfer(tx.end_to_end_id, tx.line)
            amount = tx.amount_cents
            if amount is None and len(entry.transactions) == 1:
                amount = entry.amount_cents
            book.check_amount(tx.end_to_end_id, amount, tx.currency, tx.line)
            found.append((tx.end_to_end_id, tx.return_reason or Reason(), tx.line))
            total += book.sent.transfers[tx.end_to_end_id].amount_cents
            continue
        batch = [
            t
            for t in book.sent.transfers.values()
            if not tx.payment_info_id or t.payment_info_id == tx.payment_info_id
        ]
        if not batch:
            raise Refusal(
                _("Ligne %(line)s : le lot « %(id)s » n'est pas dans le fichier de la campagne %(ref)s.")
                % {"line": tx.line, "id": tx.payment_info_id, "ref": book.run.reference}
            )
        batch_total = sum(t.amount_cents for t in batch)
        _check_totals(tx.batch_count, tx.amount_cents, len(batch), batch_total, _("du lot"))
        found.extend((t.end_to_end_id, Reason(), tx.line) for t in batch)
        total += batch_total
    if total != entry.amount_cents:
        raise Refusal(
            _("Ligne %(line)s : l'écriture est de %(amount)s, ses virements font %(total)s.")
            % {"line": entry.line, "amount": euros(entry.amount_cents), "total": euros(total)}
        )
    references = [reference for reference, _reason, _line in found]
    if len(set(references)) != len(references):
        raise Refusal(
            _("Ligne %(line)s : un virement figure deux fois dans l'écriture.") % {"line": entry.line}
        )
    return found


def _booking_time(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)))
