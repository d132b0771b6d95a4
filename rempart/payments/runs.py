"""Payment runs: prepare at a cut-off, approve with four eyes (the bank file, the postings), or cancel.

Pure service, no HTTP (the console and the command call it). What it guarantees:

- **Each payable transaction is paid at most once.** A preparation takes the payable transactions effective on
  or before the cut-off that no statement line settles yet, in one snapshot (a temporary table), under one lock
  that every change of a run's state takes; ``PaymentItem.transaction`` is unique in the database besides.
- **One open run at a time** (a partial unique constraint): preparing again at the same cut-off returns it.
- **Four eyes.** Only operator treasury staff approve, never the run's preparer (also a CHECK constraint), with a
  fresh second factor when a person's request is at hand. Refusals are security events too.
- **Approval is all or nothing**, in one database transaction: the IBANs are read again (a hold may have begun),
  the pain.001 is written and validated, each transfer is posted, the file is stored with its SHA-256.

Set-based throughout: a run of 50,000 organisations and a million claims is a handful of statements, not a
query per claim (see docs/payments.md, "Performance").
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rempart.accounting.models import Purpose, TransactionKind
from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, Role, User
from rempart.accounts.stepup import second_factor_is_fresh
from rempart.lib.crypto import field_cipher
from rempart.payments import postings, sepa
from rempart.payments.models import FileDownload, Payment, PaymentItem, PaymentRun
from rempart.registry import bank_details
from rempart.registry.models import BankDetailsChange, Professional
from rempart.surveillance import canaries

CONSOLE_ROLES = {Role.TREASURY, Role.ADMIN, Role.SUPPORT}  # see runs, prepare, cancel their own
APPROVER_ROLES = {Role.TREASURY}  # approve, cancel any, download the bank file
_LOCK_KEY = 0x5245_4D50_4159  # "REMPAY": PostgreSQL advisory lock serialising every change of a run's state
HELD_SUSPENDED = "organisation_suspended"


class PaymentRunError(Exception):
    """A refusal with a message for the person (in their language) and a stable code; nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


class ApprovalRefused(PaymentRunError):
    """The approval was refused (recorded as ``payments.approval_refused``); nothing was paid."""


class BankFileTampered(PaymentRunError):
    """The stored bank file no longer matches its SHA-256: it is not served (recorded)."""


# ------------------------------------------------------------------------------------------- who may do what


def can_see_console(user: User) -> bool:
    return user.is_authenticated and roles.is_operator(user, CONSOLE_ROLES)


def can_download(user: User) -> bool:
    return user.is_authenticated and roles.is_operator(user, APPROVER_ROLES)


def approval_refusal(run: PaymentRun, user: User) -> tuple[str, str] | None:
    """Why ``user`` may not approve ``run`` (code, message), or None. The preparer is told it is their own run."""
    if run.status != PaymentRun.Status.PREPARED:
        return "not_open", _("Cette campagne n'attend plus d'approbation (%(status)s).") % {
            "status": run.get_status_display()
        }
    if not roles.is_operator(user, APPROVER_ROLES):
        return "not_treasury", _(
            "Seul un membre de la trésorerie de l'opérateur peut approuver une campagne."
        )
    if run.prepared_by_id is not None and run.prepared_by_id == user.pk:
        return "preparer", _(
            "Vous avez préparé cette campagne : un second membre de la trésorerie doit l'approuver (quatre yeux)."
        )
    return None


def cancel_refusal(run: PaymentRun, user: User) -> tuple[str, str] | None:
    if run.status != PaymentRun.Status.PREPARED:
        return "not_open", _("Seule une campagne en attente d'approbation peut être annulée.")
    own = run.prepared_by_id is not None and run.prepared_by_id == user.pk and can_see_console(user)
    if not (own or roles.is_operator(user, APPROVER_ROLES)):
        return "not_allowed", _("Seuls son auteur ou la trésorerie peuvent annuler une campagne.")
    return None


# ------------------------------------------------------------------------------------------------ preparation


def next_business_day(day: dt.date) -> dt.date:
    """The next day after ``day`` that is not a Saturday or a Sunday (SEPA transfers execute on TARGET days)."""
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def check_dates(cutoff: dt.date, execution_date: dt.date, *, today: dt.date) -> None:
    if cutoff > today:
        raise PaymentRunError("cutoff_in_future", _("La date d'arrêté ne peut pas être dans le futur."))
    if execution_date < today:
        raise PaymentRunError("execution_date_past", _("La date d'exécution demandée est déjà passée."))
    if execution_date > today + dt.timedelta(days=365):
        raise PaymentRunError("execution_date_far", _("La date d'exécution est à plus d'un an."))
    if execution_date.weekday() >= 5:
        raise PaymentRunError(
            "execution_date_weekend",
            _("La date d'exécution tombe un week-end : les virements SEPA s'exécutent les jours ouvrés."),
        )


def prepare_run(
    cutoff: dt.date,
    *,
    user: User | None = None,
    execution_date: dt.date | None = None,
    request: HttpRequest | None = None,
) -> PaymentRun:
    """Prepare the run paying every professional's unpaid balance at ``cutoff`` (``user`` None: the scheduler).

    Returns the open run if one was already prepared at the same cut-off (a replay); another open run is a
    PaymentRunError (approve or cancel it first), and so is a cut-off with nothing to pay.
    """
    today = timezone.localdate()
    execution_date = execution_date or next_business_day(today)
    if user is not None and not can_see_console(user):
        raise PaymentRunError("not_allowed", _("Seul le personnel de l'opérateur prépare les campagnes."))
    check_dates(cutoff, execution_date, today=today)
    try:
        with transaction.atomic():
            _lock_runs()
            open_run = PaymentRun.objects.filter(status=PaymentRun.Status.PREPARED).first()
            if open_run is not None:
                return replay_or_refuse(open_run, cutoff)
            run = PaymentRun.objects.create(
                reference=_next_reference(cutoff), cutoff=cutoff, execution_date=execution_date,
                prepared_by=user, prepared_at=timezone.now(),
            )  # fmt: skip
            _fill(run)
            if run.transfer_count == 0:
                held = run.payments.count()
                raise PaymentRunError(
                    "nothing_to_pay",
                    _("Rien à payer à cette date d'arrêté : aucun solde dû.")
                    if not held
                    else _("Rien à payer à cette date d'arrêté : les %(n)s organisations à qui un solde est dû sont "
                           "toutes retenues (IBAN manquant, en période de retenue ou rejeté).") % {"n": held},
                )  # fmt: skip
            record_event(
                "payments.run_prepared", request=request, user=user, run=run.reference,
                cutoff=cutoff.isoformat(), execution_date=execution_date.isoformat(),
                transfers=run.transfer_count, total_cents=run.total_cents,
                held=run.payments.filter(status=Payment.Status.HELD).count(),
            )  # fmt: skip
            return run
    except IntegrityError:
        # Another preparation committed its open run first (a database without the advisory lock): use it.
        open_run = PaymentRun.objects.filter(status=PaymentRun.Status.PREPARED).first()
        if open_run is None:
            raise
        return replay_or_refuse(open_run, cutoff)


def replay_or_refuse(open_run: PaymentRun, cutoff: dt.date) -> PaymentRun:
    if open_run.cutoff == cutoff:
        return open_run
    raise PaymentRunError(
        "run_open",
        _(
            "La campagne %(ref)s (arrêté au %(cutoff)s) attend son approbation : approuvez-la ou annulez-la d'abord."
        )
        % {"ref": open_run.reference, "cutoff": open_run.cutoff.strftime("%d/%m/%Y")},
    )


def _lock_runs() -> None:
    """Serialise preparations, approvals and cancellations (SQLite: writers are serialised already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _next_reference(cutoff: dt.date) -> str:
    prefix = f"PR-{cutoff:%Y%m%d}-"
    taken = PaymentRun.objects.filter(reference__startswith=prefix).values_list("reference", flat=True)
    number = 1 + max((int(ref[len(prefix) :]) for ref in taken if ref[len(prefix) :].isdigit()), default=0)
    return f"{prefix}{number:03d}"


def payment_reference(run: PaymentRun, organisation_id: int) -> str:
    """Unique, ≤ 35 SEPA characters: the EndToEndId of the transfer and the reference printed on the relevé."""
    return f"{run.reference}-O{organisation_id}"


_CREATE_CANDIDATES = """
CREATE TEMPORARY TABLE payments_candidate (
    organisation_id bigint NOT NULL, transaction_id bigint NOT NULL, tx_kind varchar(30) NOT NULL,
    claim_id bigint NULL, amount_cents bigint NOT NULL
)"""
# The unpaid payable transactions at the cut-off, in one snapshot: everything after derives from it, so that
# postings committed meanwhile (claims keep arriving) wait for the next run instead of unbalancing this one.
_FILL_CANDIDATES = """
INSERT INTO payments_candidate (organisation_id, transaction_id, tx_kind, claim_id, amount_cents)
SELECT a.organisation_id, p.transaction_id, t.kind,
       CASE WHEN t.source_type = 'claim' THEN CAST(t.source_id AS BIGINT) END, SUM(p.amount_cents)
  FROM accounting_posting p
  JOIN accounting_account a ON a.id = p.account_id
  JOIN accounting_transaction t ON t.id = p.transaction_id
 WHERE a.purpose = %s AND p.effective_date <= %s AND t.kind <> %s
   AND NOT EXISTS (SELECT 1 FROM payments_paymentitem i WHERE i.transaction_id = p.transaction_id)
 GROUP BY a.organisation_id, p.transaction_id, t.kind, t.source_type, t.source_id
"""
_OWED = """
SELECT organisation_id, -SUM(amount_cents), COUNT(*) FROM payments_candidate
 GROUP BY organisation_id HAVING SUM(amount_cents) < 0
"""
# The payable is credited (−) when the professional is owed: a statement line is the opposite sign (+ owed).
# A credit on a claim is a credit note, unless a review rejected the claim. In transaction order: the unique
# index grows at its end instead of everywhere at once.
_INSERT_ITEMS = """
INSERT INTO payments_paymentitem (payment_id, kind, transaction_id, claim_id, amount_cents)
SELECT pay.id,
       CASE c.tx_kind WHEN 'claim_accepted' THEN 'claim'
                      WHEN 'payment_returned' THEN 'return'
                      WHEN 'claim_reversed' THEN CASE WHEN EXISTS (
                           SELECT 1 FROM claims_claim cl WHERE cl.id = c.claim_id AND cl.status = 'rejected'
                      ) THEN 'review' ELSE 'credit_note' END
                      ELSE 'review' END,
       c.transaction_id, c.claim_id, -c.amount_cents
  FROM payments_candidate c
  JOIN payments_payment pay ON pay.organisation_id = c.organisation_id
 WHERE pay.run_id = %s AND pay.status = 'prepared'
 ORDER BY c.transaction_id
"""
# Invoices rejected (at submission or by a review) that no statement has listed yet: a line with no money,
# so that the relevé shows them with their reasons.
_INSERT_REJECTED = """
INSERT INTO payments_paymentitem (payment_id, kind, transaction_id, claim_id, amount_cents)
SELECT pay.id, 'rejected', NULL, cl.id, 0
  FROM claims_claim cl
  JOIN payments_payment pay ON pay.organisation_id = cl.organisation_id
 WHERE pay.run_id = %s AND pay.status = 'prepared' AND cl.status = 'rejected'
   AND COALESCE(cl.reviewed_at, cl.created_at) < %s
   AND NOT EXISTS (SELECT 1 FROM payments_paymentitem i WHERE i.claim_id = cl.id AND i.kind = 'rejected')
"""


def _fill(run: PaymentRun) -> None:
    """Payments (one per organisation owed something) and their statement lines, from one snapshot."""
    ops = connection.ops
    cutoff_end = timezone.make_aware(dt.datetime.combine(run.cutoff + dt.timedelta(days=1), dt.time.min))
    parameters = [
        Purpose.PROFESSIONAL_PAYABLE.value,
        ops.adapt_datefield_value(run.cutoff),
        TransactionKind.PAYMENT.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS payments_candidate")
        cursor.execute(_CREATE_CANDIDATES)
        cursor.execute(_FILL_CANDIDATES, parameters)
        _hold_canary_invoices(cursor)
        if connection.vendor == "postgresql":
            cursor.execute(
                "ANALYZE payments_candidate"
            )  # a plan for its real size (a million rows), not a guess
        cursor.execute(_OWED)
        owed = {organisation: (int(cents), lines) for organisation, cents, lines in cursor.fetchall()}
        payments = _payments_for(run, {organisation: cents for organisation, (cents, _n) in owed.items()})
        _insert(payments)
        cursor.execute(_INSERT_ITEMS, [run.pk])
        inserted = cursor.rowcount
        cursor.execute(_INSERT_REJECTED, [run.pk, ops.adapt_datetimefield_value(cutoff_end)])
        cursor.execute("DROP TABLE payments_candidate")
    paid = [p for p in payments if p.status == Payment.Status.PREPARED]
    if inserted != sum(
        owed[p.organisation_id][1] for p in paid
    ):  # cannot happen: one snapshot, one statement
        raise PaymentRunError(
            "inconsistent", _("Préparation incohérente : les lignes ne font pas les virements.")
        )
    run.transfer_count, run.total_cents = len(paid), sum(p.amount_cents for p in paid)
    run.save(update_fields=["transfer_count", "total_cents"])


_CANDIDATE_PEOPLE = """
SELECT DISTINCT cl.beneficiary_id FROM payments_candidate c JOIN claims_claim cl ON cl.id = c.claim_id
"""


def _hold_canary_invoices(cursor) -> None:
    """An invoice for a canary is owed like any other when it is judged (its sender must not tell), and
    never paid: its transactions stay out of every run, in the payable, until the security team settles
    the incident (credit note or reversal). Nothing on the run says why, beyond the amount that waits."""
    if not canaries.any_live():
        return
    cursor.execute(_CANDIDATE_PEOPLE)
    held = canaries.canary_beneficiaries(person for (person,) in cursor.fetchall())
    if not held:
        return
    people = list(held)
    marks = ", ".join(["%s"] * len(people))
    cursor.execute(
        "DELETE FROM payments_candidate WHERE claim_id IN ("  # noqa: S608 - placeholders only
        f"SELECT id FROM claims_claim WHERE beneficiary_id IN ({marks}))",
        people,
    )


def _insert(payments: list[Payment]) -> None:
    """Insert the payments: on PostgreSQL one statement over arrays (the ORM's bulk insert binds 13 parameters
    a row, which costs seconds at 50,000 rows); elsewhere the ORM's bulk_create."""
    if connection.vendor != "postgresql" or not payments:
        Payment.objects.bulk_create(payments, batch_size=2000)
        return
    fields = [f for f in Payment._meta.concrete_fields if not f.primary_key]
    for payment in payments:
        for field in fields:
            field.pre_save(payment, add=True)  # auto_now_add
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    values = [[f.get_db_prep_save(getattr(p, f.attname), connection) for p in payments] for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO payments_payment ({columns}) SELECT * FROM unnest({arrays})",  # noqa: S608 - model's own columns
            values,
        )


def _payments_for(run: PaymentRun, owed: dict[int, int]) -> list[Payment]:
    """A Payment for each organisation owed money: ``prepared`` if it can be paid, else ``held`` with why.

    A held payment carries no statement line: its transactions stay unpaid and wait for the next run; the row
    says, in this run, who waits, how much and why (no usable IBAN, suspended organisation)."""
    owing = RawSQL("SELECT organisation_id FROM payments_candidate GROUP BY organisation_id", [])
    organisations = [
        org
        for org in Organisation.objects.filter(pk__in=owing).select_related("professional")
        if org.pk in owed
    ]
    now = timezone.now()
    destinations = accounts_to_pay([org.professional for org in organisations if org.professional], now)
    payments = []
    for organisation in organisations:
        professional = organisation.professional
        pay_to = destinations.get(professional.pk) if professional else None
        pay_to = pay_to or bank_details.PayTo(None, "", "", "no_iban")
        held_reason = pay_to.held_reason if pay_to.iban is None else ""
        if organisation.status == Organisation.Status.SUSPENDED:
            held_reason = HELD_SUSPENDED
        payments.append(
            Payment(
                run=run, organisation=organisation, reference=payment_reference(run, organisation.pk),
                amount_cents=int(owed[organisation.pk]),
                status=Payment.Status.HELD if held_reason else Payment.Status.PREPARED,
                creditor_name=sepa.sepa_text(professional.name if professional else organisation.name),
                iban_masked=pay_to.masked, bic=pay_to.bic, held_reason=held_reason,
            )
        )  # fmt: skip
    return payments


def accounts_to_pay(professionals: list[Professional], at: dt.datetime) -> dict[int, bank_details.PayTo]:
    """Where each professional is paid now, as rempart.registry.bank_details decides (the IBAN hold)."""
    _prefetch_bank_changes(professionals)
    return {professional.pk: bank_details.account_to_pay(professional, at) for professional in professionals}


def _prefetch_bank_changes(professionals: list[Professional]) -> None:
    """What ``prefetch_related("bank_changes")`` would do (the hold's rule reads them), at the cost of one query
    for the few professionals with a change and none for the others: Django's prefetch of 50,000 empty sets
    costs seconds. The others get one shared, already evaluated empty set."""
    changed = set(BankDetailsChange.objects.order_by().values_list("professional_id", flat=True).distinct())
    with_changes = [professional for professional in professionals if professional.pk in changed]
    for start in range(0, len(with_changes), _CHUNK):
        prefetch_related_objects(with_changes[start : start + _CHUNK], "bank_changes")
    nothing = BankDetailsChange.objects.none()
    list(nothing)  # evaluated: iterating it never queries
    for professional in professionals:
        if professional.pk not in changed:
            professional.__dict__.setdefault("_prefetched_objects_cache", {})["bank_changes"] = nothing


_CHUNK = 2000  # professionals per prefetch: well under SQLite's limit of bound variables


# --------------------------------------------------------------------------------------------------- approval


def approve_run(run: PaymentRun, *, user: User, request: HttpRequest | None = None) -> PaymentRun:
    """The second pair of eyes: pay the run. Approving an approved run again returns it unchanged.

    ``request`` (the console) must carry a fresh second factor. Everything happens in one transaction; a
    refusal (who, what, a bank file that does not validate) changes nothing and is recorded."""
    try:
        with transaction.atomic():
            _lock_runs()
            run = PaymentRun.objects.select_for_update().get(pk=run.pk)
            if run.status == PaymentRun.Status.APPROVED and roles.is_operator(user, APPROVER_ROLES):
                return run  # a double click, a retried request: paid once
            refusal = approval_refusal(run, user)
            if refusal is None and request is not None and not second_factor_is_fresh(request):
                refusal = ("step_up", _("Confirmez d'abord votre second facteur pour approuver."))
            if refusal is None and run.execution_date < timezone.localdate():
                refusal = ("execution_date_past", _(
                    "La date d'exécution demandée est passée : annulez cette campagne et préparez-en une autre."
                ))  # fmt: skip
            if refusal is not None:
                raise ApprovalRefused(*refusal)
            _pay(run, user)
            record_event(
                "payments.run_approved", request=request, user=user, run=run.reference,
                transfers=run.transfer_count, total_cents=run.total_cents, sha256=run.file_sha256,
                held=run.payments.filter(status=Payment.Status.HELD).count(),
            )  # fmt: skip
            return run
    except sepa.BankFileInvalid as exc:
        refused = ApprovalRefused(
            "bank_file_invalid", _("Fichier de virements refusé : %(why)s") % {"why": exc}
        )
        _record_refusal(run, user, request, refused)
        raise refused from None
    except ApprovalRefused as refused:
        _record_refusal(run, user, request, refused)
        raise


def _record_refusal(
    run: PaymentRun, user: User, request: HttpRequest | None, refused: ApprovalRefused
) -> None:
    record_event(
        "payments.approval_refused", request=request, user=user, run=run.reference, reason=refused.code
    )


def _pay(run: PaymentRun, approver: User) -> None:
    """Inside the approval's transaction: re-read each IBAN, write and validate the file, post, mark sent."""
    now = timezone.now()
    payments = list(
        run.payments.filter(status=Payment.Status.PREPARED)
        .select_related("organisation__professional")
        .order_by("pk")
    )
    destinations = accounts_to_pay(
        [p.organisation.professional for p in payments if p.organisation.professional], now
    )
    sent, held = [], []
    for payment in payments:
        professional = payment.organisation.professional
        pay_to = destinations.get(professional.pk) if professional else None
        if (
            pay_to is None
            or pay_to.iban is None
            or payment.organisation.status == Organisation.Status.SUSPENDED
        ):
            payment.status = Payment.Status.HELD
            payment.held_reason = (
                HELD_SUSPENDED if pay_to and pay_to.iban else (pay_to.held_reason if pay_to else "no_iban")
            )
            payment.iban_masked, payment.bic = (pay_to.masked, pay_to.bic) if pay_to else ("", "")
            held.append(payment)
        else:
            sent.append((payment, pay_to))
    if not sent:
        raise ApprovalRefused(
            "nothing_to_send", _("Aucun virement ne peut partir (tous retenus) : annulez la campagne.")
        )
    if held:  # a hold began since preparation: their transactions are payable again next run
        PaymentItem.objects.filter(payment__in=held).delete()
        Payment.objects.bulk_update(held, ["status", "held_reason", "iban_masked", "bic"])
    debtor = sepa.Debtor(
        **{key: settings.REMPART_PAYMENTS_DEBTOR.get(key, "") for key in ("name", "iban", "bic")}
    )
    remittance = _("Rempart %(ref)s releve au %(cutoff)s")
    transfers = [
        sepa.Transfer(
            reference=payment.reference, amount_cents=payment.amount_cents, creditor_name=payment.creditor_name,
            iban=pay_to.iban, bic=pay_to.bic,
            remittance=remittance % {"ref": payment.reference, "cutoff": run.cutoff.strftime("%d/%m/%Y")},
        )
        for payment, pay_to in sent
    ]  # fmt: skip
    content = sepa.write_pain001(
        message_id=run.reference, created_at=now, execution_date=run.execution_date, debtor=debtor,
        transfers=transfers,
    )  # fmt: skip
    payments_sent = [payment for payment, _pay_to in sent]
    txs = postings.post_payments(
        payments_sent, payables=postings.payables_of_run(run.pk), effective_date=timezone.localdate()
    )
    cipher = field_cipher()
    _mark_sent(
        [(payment.pk, tx.pk, cipher.encrypt("iban", pay_to.iban), pay_to.masked, pay_to.bic)
         for (payment, pay_to), tx in zip(sent, txs, strict=True)]
    )  # fmt: skip
    run.status, run.approved_by, run.approved_at = PaymentRun.Status.APPROVED, approver, now
    run.transfer_count, run.total_cents = len(payments_sent), sum(p.amount_cents for p in payments_sent)
    run.file_name = f"{run.reference}.{sepa.SCHEMA}.xml"
    run.file_content, run.file_sha256, run.file_written_at = content, hashlib.sha256(content).hexdigest(), now
    run.save()


def _mark_sent(rows: list[tuple[int, int, bytes, str, str]]) -> None:
    """Mark the sent payments in one statement on PostgreSQL (arrays), a prepared loop on SQLite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(
                "UPDATE payments_payment p SET status = 'sent', transaction_id = v.tx, iban_cipher = v.cipher,"
                " iban_masked = v.masked, bic = v.bic"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::bytea[], %s::text[], %s::text[])"
                " AS v(id, tx, cipher, masked, bic) WHERE p.id = v.id",
                columns,
            )
        else:
            cursor.executemany(
                "UPDATE payments_payment SET status = 'sent', transaction_id = %s, iban_cipher = %s,"
                " iban_masked = %s, bic = %s WHERE id = %s",
                [(tx, cipher, masked, bic, pk) for pk, tx, cipher, masked, bic in rows],
            )


# ------------------------------------------------------------------------------------------------ cancellation


def cancel_run(run: PaymentRun, *, user: User, reason: str, request: HttpRequest | None = None) -> PaymentRun:
    """Cancel a run before approval: its lines are released (their transactions are payable again next run)."""
    reason = (reason or "").strip()
    if not reason:
        raise PaymentRunError("reason_required", _("Indiquez pourquoi vous annulez cette campagne."))
    if len(reason) > 200:
        raise PaymentRunError("reason_too_long", _("Le motif d'annulation tient en 200 caractères au plus."))
    with transaction.atomic():
        _lock_runs()
        run = PaymentRun.objects.select_for_update().get(pk=run.pk)
        refusal = cancel_refusal(run, user)
        if refusal is not None:
            raise PaymentRunError(*refusal)
        PaymentItem.objects.filter(payment__run=run).delete()
        run.payments.update(status=Payment.Status.CANCELLED)
        run.status, run.cancelled_by, run.cancelled_at = PaymentRun.Status.CANCELLED, user, timezone.now()
        run.cancel_reason = reason
        run.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancel_reason"])
        record_event("payments.run_cancelled", request=request, user=user, run=run.reference, reason=reason)
    return run


# ------------------------------------------------------------------------------------------------- the bank file


@dataclass(frozen=True)
class BankFile:
    name: str
    content: bytes
    sha256: str


def bank_file(run: PaymentRun, *, user: User, request: HttpRequest | None = None) -> BankFile:
    """The approved run's file, exactly as written: its digest is checked first; each download is recorded."""
    if not can_download(user):
        raise PaymentRunError(
            "not_allowed", _("Seule la trésorerie de l'opérateur télécharge les fichiers de virements.")
        )
    if run.status != PaymentRun.Status.APPROVED or run.file_content is None:
        raise PaymentRunError("no_file", _("Seule une campagne approuvée a un fichier de virements."))
    content = bytes(run.file_content)
    digest = hashlib.sha256(content).hexdigest()
    if digest != run.file_sha256:
        record_event("payments.file_tampered", request=request, user=user, run=run.reference)
        raise BankFileTampered(
            "tampered",
            _(
                "Le fichier stocké ne correspond plus à son empreinte SHA-256 : il n'est pas servi. Alertez la sécurité."
            ),
        )
    with transaction.atomic():
        FileDownload.objects.create(run=run, user=user, sha256=digest)
        record_event("payments.file_downloaded", request=request, user=user, run=run.reference, sha256=digest)
    return BankFile(run.file_name, content, digest)


# ------------------------------------------------------------------------------------------------- summaries


def held_payments(run: PaymentRun):
    return (
        run.payments.filter(status=Payment.Status.HELD)
        .select_related("organisation__professional")
        .order_by("pk")
    )


HELD_REASONS = {
    "no_iban": gettext_lazy("Aucun IBAN enregistré"),
    "iban_on_hold": gettext_lazy("Nouvel IBAN en période de retenue"),
    "iban_failed": gettext_lazy("IBAN rejeté par la banque"),
    HELD_SUSPENDED: gettext_lazy("Organisation suspendue"),
}


def held_reason_label(code: str) -> str:
    """What a held reason means, in the person's language (unknown codes, from a newer hold rule, as they are)."""
    return str(HELD_REASONS.get(code, code))
