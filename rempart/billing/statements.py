"""Insurer statements: what an insurer is billed for a period, its fees (posted), its number; corrections.

**What a statement bills.** For one insurer and one period ending on day E: every money-ledger transaction of
a claim (``source_type = "claim"``: acceptance, review, credit note, reversal) that posts to the insurer's
receivable, is effective on or before E, is not billed yet (``StatementItem.transaction`` is unique), and whose
claim **was paid to the professional** on or before E — a ``PaymentItem`` naming the claim in a payment sent
(or later settled or returned) by a run approved on or before E. So a claim is billed by the statement of the
period its payment run was approved in; a transaction posted later on a claim already paid (a credit note, a
review) is billed by the next statement issued after it is posted, or by a correction of its own period
(:func:`issue_correction`). Claims not paid yet wait: the insurer is billed only what was advanced.

**One regular statement per insurer and period** (database constraint): preparing a period again returns the
statements already issued and bills nothing. Each is issued at once and immutable: number
``REL-<AMC>-<YYYYMMDD of the period end>-<n>``, due ``due_days`` after the period end (a correction: after the
day it is issued), PDF written and its SHA-256 kept. The fees (rempart.billing.fees) are posted once per
statement (kind ``fee``: insurer receivable debit, operator revenue credit, key ``billing:<number>:fee``).

Set-based: the items are one ``INSERT … SELECT`` per statement, the totals one ``GROUP BY``; nothing is read
row by row into Python (5,000,000 lines a month must bill in minutes).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.accounting import service as accounting
from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, User
from rempart.billing import fees as fee_rules
from rempart.billing import periods
from rempart.billing.batch_db import LARGE_BATCH, batch_memory, fresh_statistics
from rempart.billing.models import BillingContract, Statement, StatementItem
from rempart.registry.models import Insurer

# Rights checks that count as billable: the insurer's data answered (covered or not). A card that matched no
# one, an exposure listing, a request refused before any look-up or rejected as invalid costs no fee.
BILLABLE_RIGHTS_OUTCOMES = ("covered", "not_covered")
# PECs billed: those granted in full or in part (a refused PEC costs no fee); cancelled later still count.
BILLABLE_PEC_STATUSES = ("accepted", "partially_accepted")
# Payments whose items count as "paid to the professional": in the bank file (a return does not un-pay the
# claim: the returned amount is payable again and paid by a later run).
PAID_PAYMENT_STATUSES = ("sent", "settled", "returned")


class StatementError(Exception):
    """A statement could not be prepared; ``code`` is stable, the message is in the user's language."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _end_of(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` in the operator's time zone (runs approved before it count)."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# ------------------------------------------------------------------------------------------------ preparation


def prepare_statements(
    period_start: dt.date,
    period_end: dt.date,
    *,
    insurer: Insurer | None = None,
    user: User | None = None,
    as_of: dt.date | None = None,
) -> list[Statement]:
    """Issue the regular statement of the period for each insurer whose contract has its periodicity.

    ``insurer`` limits it to one (refused if it has no contract or another periodicity). A period that is not
    over at ``as_of`` (default today) is refused. Statements already issued for the period are returned as
    they are (a replay bills nothing); an insurer with nothing to bill (no item, no fee) gets no statement.
    Insurers without a billing contract are not billed (``insurers_without_contract`` lists them).
    """
    kind = periods.kind_of(period_start, period_end)
    as_of = as_of or timezone.localdate()
    if period_end >= as_of:
        raise StatementError(
            "period_not_over",
            _("La période se termine le %(end)s : elle ne peut être facturée qu'à partir du lendemain.")
            % {"end": period_end.strftime("%d/%m/%Y")},
        )
    contracts = BillingContract.objects.select_related("insurer").order_by("insurer__amc_number")
    if insurer is not None:
        contract = contracts.filter(insurer=insurer).first()
        if contract is None:
            raise StatementError(
                "no_contract",
                _("L'assureur %(amc)s n'a pas de contrat de facturation : créez-le avant de le facturer.")
                % {"amc": insurer.amc_number},
            )
        if contract.period != kind:
            raise StatementError(
                "wrong_period",
                _("Le contrat de l'assureur %(amc)s est à périodicité %(theirs)s, pas %(asked)s.")
                % {"amc": insurer.amc_number, "theirs": contract.get_period_display(), "asked": kind},
            )
        contracts = [contract]
    else:
        contracts = list(contracts.filter(period=kind))
    return _prepare_all(list(contracts), period_start, period_end, user=user)


def insurers_without_contract():
    """Insurers that cannot be billed until they have a billing contract (the command says so)."""
    return Insurer.objects.filter(billing_contract__isnull=True).order_by("amc_number")


def _prepare_all(
    contracts: list[BillingContract], start: dt.date, end: dt.date, *, user: User | None
) -> list[Statement]:
    """Every insurer of the period in one transaction and a few set-wise statements (not one pass each)."""
    with transaction.atomic():
        batch_memory()
        ids = [c.pk for c in contracts]
        list(BillingContract.objects.select_for_update().filter(pk__in=ids).order_by("pk"))  # one writer
        existing = {
            s.insurer_id: s
            for s in Statement.objects.select_related("insurer").filter(
                insurer_id__in=[c.insurer_id for c in contracts], period_start=start, period_end=end,
                kind=Statement.Kind.REGULAR,
            )
        }  # fmt: skip
        new = [
            _new_statement(contract, start, end, kind=Statement.Kind.REGULAR, user=user)
            for contract in contracts
            if contract.insurer_id not in existing  # a replay: nothing billed twice
        ]
        if _bill_items(new, end) > LARGE_BATCH:
            fresh_statistics("billing_statementitem")
        by_statement = _aggregate(new)
        fees = _period_fees(new, start, end, by_statement)
        issued, empty = [], []
        for statement, contract in zip(
            new, [c for c in contracts if c.insurer_id not in existing], strict=True
        ):
            lines = by_statement.get(statement.pk)
            its_fees = fees[statement.pk]
            if not lines and its_fees.total_cents == 0:
                empty.append(statement.pk)  # nothing to bill: no statement
                continue
            issued.append(
                _finish(statement, contract, its_fees, its_fees.total_cents, lines or [], user=user)
            )
        Statement.objects.filter(pk__in=empty).delete()
    by_insurer = {s.insurer_id: s for s in [*existing.values(), *issued]}
    return [by_insurer[c.insurer_id] for c in contracts if c.insurer_id in by_insurer]


def issue_correction(statement: Statement, *, user: User | None, reason: str) -> Statement:
    """A new statement (kind ``correction``) billing what ``statement``'s period missed: transactions of that
    period not billed yet (posted late), and the difference between the period's fees recomputed over
    everything now billed for it and the fees already billed (may be negative: a fee credit). Never an edit."""
    reason = (reason or "").strip()
    if not reason:
        raise StatementError("reason_required", _("Indiquez le motif du relevé rectificatif."))
    original = statement.corrects or statement
    contract = (
        BillingContract.objects.select_related("insurer").filter(insurer_id=original.insurer_id).first()
    )
    if contract is None:
        raise StatementError("no_contract", _("Cet assureur n'a plus de contrat de facturation."))
    start, end = original.period_start, original.period_end
    with transaction.atomic():
        BillingContract.objects.select_for_update().filter(pk=contract.pk).first()
        family = [original, *original.corrections.order_by("pk")]
        billed_fees = sum((s.fees_cents for s in family), start=0)
        correction = _new_statement(
            contract, start, end, kind=Statement.Kind.CORRECTION, user=user, corrects=original
        )
        _bill_items([correction], end)
        rows = _aggregate([*family, correction])
        everything = [row for rows_of in rows.values() for row in rows_of]
        activity = _activity([contract.insurer_id], start, end).get(contract.insurer_id, {})
        fees = _fees(contract.insurer_id, start, end, everything, activity)
        delta = fees.total_cents - billed_fees
        mine = rows.get(correction.pk, [])
        if not mine and delta == 0:
            raise StatementError(
                "nothing_to_correct",
                _("Rien à rectifier : tout ce que la période %(n)s devait facturer l'a été.")
                % {"n": original.number},
            )
        correction.summary["reason"] = reason[:500]
        return _finish(correction, contract, fees, delta, mine, user=user)


def _new_statement(
    contract: BillingContract, start: dt.date, end: dt.date, *, kind: str, user: User | None,
    corrects: Statement | None = None,
) -> Statement:  # fmt: skip
    """The statement row, numbered, so its items can be inserted (the caller's transaction holds the lock)."""
    prefix = f"REL-{contract.insurer.amc_number}-{end:%Y%m%d}-"
    n = Statement.objects.filter(number__startswith=prefix).count() + 1
    today = timezone.localdate()
    due_from = end if kind == Statement.Kind.REGULAR else max(end, today)
    return Statement.objects.create(
        number=f"{prefix}{n}", insurer_id=contract.insurer_id, kind=kind, corrects=corrects,
        period_start=start, period_end=end, due_date=due_from + dt.timedelta(days=contract.due_days),
        issued_at=timezone.now(), issued_by=user,
    )  # fmt: skip


# A claim's transaction posts one leg to a given receivable (claims.postings, and reverse() of it): one item
# per posting. Were one to post two, the unique index on the item's transaction would refuse the whole period.
# Two steps: the transactions to bill are chosen into a temporary table, then inserted. In one statement the
# choice (an anti-join on the items) would be interleaved with the insert and rescan the rows being inserted.
_CHOOSE = """
CREATE TEMPORARY TABLE billing_to_bill {on_commit} AS
SELECT p.account_id, p.transaction_id, CAST(t.source_id AS {int}) AS claim_id, p.amount_cents
  FROM accounting_posting p
  JOIN accounting_transaction t ON t.id = p.transaction_id
 WHERE p.account_id IN ({accounts})
   AND p.effective_date <= %s
   AND t.source_type = 'claim'
   AND NOT EXISTS (SELECT 1 FROM billing_statementitem b WHERE b.transaction_id = p.transaction_id)
   AND EXISTS (
       SELECT 1
         FROM payments_paymentitem i
         JOIN payments_payment pay ON pay.id = i.payment_id
         JOIN payments_paymentrun r ON r.id = pay.run_id
        WHERE i.claim_id = CAST(t.source_id AS {int})
          AND pay.status IN ('sent', 'settled', 'returned')
          AND r.status = 'approved' AND r.approved_at < %s)
"""
_INSERT = """
WITH m(account_id, statement_id) AS (VALUES {pairs})
INSERT INTO billing_statementitem (statement_id, transaction_id, claim_id, amount_cents)
SELECT m.statement_id, c.transaction_id, c.claim_id, c.amount_cents
  FROM billing_to_bill c JOIN m ON m.account_id = c.account_id
"""


def _bill_items(statements: list[Statement], end: dt.date) -> int:
    """Insert the items of these statements (all insurers at once: one pass over the ledger); how many."""
    if not statements:
        return 0
    accounts = [accounting.insurer_receivable(s.insurer_id).pk for s in statements]
    pairs = [value for account, s in zip(accounts, statements, strict=True) for value in (account, s.pk)]
    ops, postgres = connection.ops, connection.vendor == "postgresql"
    choose = _CHOOSE.format(
        on_commit="ON COMMIT DROP" if postgres else "",
        accounts=", ".join(["%s"] * len(accounts)),
        int="bigint" if postgres else "integer",
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS billing_to_bill")
        cursor.execute(
            choose, [*accounts, ops.adapt_datefield_value(end), ops.adapt_datetimefield_value(_end_of(end))]
        )
        cursor.execute(_INSERT.format(pairs=", ".join(["(%s, %s)"] * len(statements))), pairs)
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE billing_to_bill")
        return inserted


# (day, transaction kind, domain, professional category, lines, debits, credits) per statement, in one statement.
# The category of each organisation comes from a temporary table filled just before: grouped in SQL, a month of
# millions of items comes back as a few thousand rows (by organisation, it was millions, all in memory).
_AGGREGATE = """
SELECT s.statement_id, t.effective_date, t.kind, c.domain, COALESCE(cat.category, '—'), COUNT(*),
       SUM(CASE WHEN s.amount_cents > 0 THEN s.amount_cents ELSE 0 END),
       SUM(CASE WHEN s.amount_cents < 0 THEN s.amount_cents ELSE 0 END)
  FROM billing_statementitem s
  JOIN accounting_transaction t ON t.id = s.transaction_id
  JOIN claims_claim c ON c.id = s.claim_id
  LEFT JOIN billing_org_category cat ON cat.organisation_id = c.organisation_id
 WHERE s.statement_id IN ({marks})
 GROUP BY s.statement_id, t.effective_date, t.kind, c.domain, COALESCE(cat.category, '—')
"""


def _categories() -> list[tuple[int, str]]:
    """Each professional organisation's category: its domains, sorted, joined by « + » (« — » if none)."""
    return [
        (org_id, "+".join(sorted(domains or [])) or "—")
        for org_id, domains in Organisation.objects.filter(kind=Organisation.Kind.PROFESSIONAL).values_list(
            "pk", "professional__domains"
        )
    ]


def _aggregate(statements: list[Statement]) -> dict[int, list[tuple]]:
    """Per statement: [(day, kind, domain, category, lines, debits, credits)], from its items."""
    if not statements:
        return {}
    rows: dict[int, list[tuple]] = {}
    temporary = "ON COMMIT DROP" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS billing_org_category")
        cursor.execute(
            f"CREATE TEMPORARY TABLE billing_org_category (organisation_id bigint PRIMARY KEY, "
            f"category varchar(200)) {temporary}"
        )
        categories = _categories()
        for start in range(0, len(categories), 5000):
            cursor.executemany(
                "INSERT INTO billing_org_category (organisation_id, category) VALUES (%s, %s)",
                categories[start : start + 5000],
            )
        cursor.execute(
            _AGGREGATE.format(marks=", ".join(["%s"] * len(statements))), [s.pk for s in statements]
        )
        for statement_id, day, kind, domain, category, n, plus, minus in cursor.fetchall():
            rows.setdefault(statement_id, []).append(
                (_as_date(day), kind, domain, category, int(n), int(plus or 0), int(minus or 0))
            )
        cursor.execute("DROP TABLE billing_org_category")
    return rows


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _activity(insurer_ids: list[int], start: dt.date, end: dt.date) -> dict[int, dict[dt.date, list[int]]]:
    """Per insurer and day: [billable rights checks, billable PECs] (operator's time zone), two statements."""
    from rempart.authorizations.models import Pec
    from rempart.ledger.models import Disclosure

    window = {
        "created_at__gte": _start_of(start),
        "created_at__lt": _end_of(end),
        "insurer_id__in": insurer_ids,
    }
    found: dict[int, dict[dt.date, list[int]]] = {}
    queries = (
        (
            0,
            Disclosure.objects.filter(purpose="rights_check", outcome__in=BILLABLE_RIGHTS_OUTCOMES, **window),
        ),
        (1, Pec.objects.filter(status__in=BILLABLE_PEC_STATUSES, **window)),
    )
    for slot, rows in queries:
        grouped = (
            rows.annotate(day=TruncDate("created_at"))
            .values("insurer_id", "day")
            .annotate(n=Count("id"))
            .values_list("insurer_id", "day", "n")
        )
        for insurer_id, day, n in grouped:
            found.setdefault(insurer_id, {}).setdefault(_as_date(day), [0, 0])[slot] += n
    return found


def _fees(
    insurer_id: int, start: dt.date, end: dt.date, rows: list[tuple], activity: dict[dt.date, list[int]]
) -> fee_rules.Fees:
    """Fees of the period over these aggregated items, each day at that day's schedule.

    An item counts on its transaction's effective date, brought into the period (an item of a claim accepted
    before the period start and paid in it counts on the first day); rights checks and PECs on the day they
    were made."""
    counts = {day: fee_rules.DayCounts() for day in periods.days(start, end)}
    for day, (checks, pecs) in activity.items():
        counts[day].rights_checks += checks
        counts[day].pecs += pecs
    for day, kind, _domain, _category, n, plus, minus in rows:
        day = min(max(day, start), end)
        if kind == accounting.Kind.CLAIM_ACCEPTED:
            counts[day].invoices += n
        counts[day].net_paid_cents += plus + minus
    return fee_rules.compute(counts, fee_rules.schedules_by_day(insurer_id, counts))


def _period_fees(
    statements: list[Statement], start: dt.date, end: dt.date, rows: dict[int, list[tuple]]
) -> dict[int, fee_rules.Fees]:
    activity = _activity([s.insurer_id for s in statements], start, end) if statements else {}
    return {
        s.pk: _fees(s.insurer_id, start, end, rows.get(s.pk, []), activity.get(s.insurer_id, {}))
        for s in statements
    }


def _totals(rows: list[tuple]) -> tuple[int, int, int, dict, dict]:
    """(lines, paid, reversals, by domain, by professional category) of a statement's aggregated items."""
    by_domain: dict[str, dict] = {}
    by_category: dict[str, dict] = {}
    lines = paid = reversals = 0
    for _day, _kind, domain, category, n, plus, minus in rows:
        lines, paid, reversals = lines + n, paid + plus, reversals + minus
        for bucket, key in ((by_domain, domain), (by_category, category)):
            entry = bucket.setdefault(key, {"lines": 0, "paid_cents": 0, "reversals_cents": 0})
            entry["lines"] += n
            entry["paid_cents"] += plus
            entry["reversals_cents"] += minus
    return lines, paid, reversals, dict(sorted(by_domain.items())), dict(sorted(by_category.items()))


def _finish(
    statement: Statement, contract: BillingContract, fees: fee_rules.Fees, fee_cents: int, rows: list[tuple],
    *, user: User | None,
) -> Statement:  # fmt: skip
    """Totals, the fee posting, the PDF and its digest, the security event: the statement is issued."""
    from rempart.billing import statement_pdf

    lines, paid, reversals, by_domain, by_category = _totals(rows)
    statement.paid_cents, statement.reversals_cents, statement.fees_cents = paid, reversals, fee_cents
    statement.total_cents = paid + reversals + fee_cents
    statement.detail_rows = lines
    statement.summary = {
        **statement.summary, "lines": lines, "by_domain": by_domain, "by_category": by_category,
        "fees": fees.as_summary(), "due_days": contract.due_days,
    }  # fmt: skip
    if fee_cents:
        statement.fee_transaction = accounting.post(
            accounting.Kind.FEE,
            [(accounting.insurer_receivable(statement.insurer_id), fee_cents),
             (accounting.operator_revenue(), -fee_cents)],
            idempotency_key=f"billing:{statement.number}:fee", memo=f"frais {statement.number}",
            source=("statement", str(statement.pk)), effective_date=statement.period_end,
        )  # fmt: skip
    statement_pdf.render_all(statement)  # the PDF in French and in English, each with its SHA-256
    statement.save()
    record_event(
        "billing.statement_issued", user=user, statement=statement.number, kind=statement.kind,
        insurer=contract.insurer.amc_number, lines=lines, total_cents=statement.total_cents,
        fees_cents=fee_cents, sha256=statement.pdf_sha256,
    )  # fmt: skip
    return statement


# ------------------------------------------------------------------------------------------------ reading


class StatementTampered(StatementError):
    """The stored PDF no longer matches its SHA-256: it is not served (recorded)."""


def verified_pdf(statement: Statement, *, user: User | None = None, request=None) -> bytes:
    """The statement's PDF, after checking it against the SHA-256 kept at issue (recorded either way)."""
    content = bytes(statement.pdf_content or b"")
    if not content or hashlib.sha256(content).hexdigest() != statement.pdf_sha256:
        record_event("billing.statement_tampered", request=request, user=user, statement=statement.number)
        raise StatementTampered(
            "pdf_tampered",
            _("Le PDF du relevé %(n)s ne correspond plus à son empreinte : il n'est pas servi.")
            % {"n": statement.number},
        )
    record_event("billing.statement_downloaded", request=request, user=user, statement=statement.number)
    return content


def verified_pdf_for(
    statement: Statement, language: str, *, user=None, request=None
) -> tuple[bytes, str, str]:
    """(content, SHA-256, language served) of the statement's PDF in ``language``, digest checked first.

    French goes through :func:`verified_pdf`; English is checked the same way and records the same
    events (with ``language="en"``). A statement issued before English PDFs existed has none: French is
    served. Raises ``StatementTampered`` (recorded) when the bytes no longer match their digest.
    """
    if language != "en" or not statement.pdf_en_sha256:
        return verified_pdf(statement, user=user, request=request), statement.pdf_sha256, "fr"
    content = bytes(statement.pdf_en_content or b"")
    if hashlib.sha256(content).hexdigest() != statement.pdf_en_sha256:
        record_event(
            "billing.statement_tampered",
            request=request,
            user=user,
            statement=statement.number,
            language="en",
        )
        raise StatementTampered(
            "pdf_tampered",
            _("Le PDF du relevé %(n)s ne correspond plus à son empreinte : il n'est pas servi.")
            % {"n": statement.number},
        )
    record_event(
        "billing.statement_downloaded", request=request, user=user, statement=statement.number, language="en"
    )
    return content, statement.pdf_en_sha256, "en"


def items_of(statement: Statement):
    return StatementItem.objects.filter(statement=statement).order_by("pk")
