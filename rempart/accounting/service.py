"""Posting to the money ledger: balanced, idempotent transactions in integer cents (debit +, credit −).

Usage (the claims app; payments and billing do the same with their own accounts and kinds)::

    from rempart.accounting import service as accounting

    receivable = accounting.insurer_receivable(claim.insurer_id)        # get or create, one query when it exists
    payable = accounting.professional_payable(claim.organisation_id)
    tx = accounting.post(
        accounting.Kind.CLAIM_ACCEPTED,
        [(receivable, 4250), (payable, -4250)],                         # the insurer owes, the operator owes
        idempotency_key=f"claim:{claim.pk}:1",                          # the same key again returns ``tx``
        memo="facture F-0001",
        source=("claim", str(claim.pk)),
    )
    accounting.reverse(tx, idempotency_key=f"claim:{claim.pk}:avoir", memo="avoir A-12")
    accounting.balance(payable)                                         # 0 again: derived from postings, debit +

``post`` costs three statements on PostgreSQL (look up the key and take an id; insert the legs; insert the
transaction row, which seals them) and no savepoint, so it may run inside the caller's transaction. It
validates everything before writing, so its errors (:class:`InvalidPosting`, :class:`IdempotencyConflict`,
:class:`AlreadyReversed`) leave the caller's transaction usable. Only :class:`ConcurrentPost` — another
connection committed the same key between the look-up and the write, while the caller holds an outer
transaction — spoils it: roll back and retry, the retry returns the winner's transaction. At top level
``post`` retries by itself. Balances and reports are in :mod:`rempart.accounting.books`, re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from rempart.accounting.books import (  # noqa: F401 - re-exported: the one module the business apps import
    AccountBalance,
    Ageing,
    TrialBalance,
    ageing,
    balance,
    balance_by_kind,
    balances,
    trial_balance,
)
from rempart.accounting.models import PURPOSES, Account, Purpose, Transaction, TransactionKind
from rempart.lib import hot_sql

Kind = TransactionKind
_KINDS = frozenset(Kind.values)

MAX_LEG_CENTS = 10**15  # 10 000 billion euros: far above any real amount, far below a 64-bit sum's limit

# What reversing a transaction of this kind is called; other kinds reverse as "reversal".
REVERSAL_KIND = {Kind.CLAIM_ACCEPTED: Kind.CLAIM_REVERSED, Kind.PAYMENT: Kind.PAYMENT_RETURNED}


class LedgerError(Exception):
    """Base of the ledger's refusals; nothing was written."""


class InvalidPosting(LedgerError, ValueError):
    """The legs or the fields of a transaction are not acceptable (not balanced, not integers, …)."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used for a different transaction (other kind, source or legs)."""

    def __init__(self, key: str, existing_id: int | None = None) -> None:
        self.key, self.existing_id = key, existing_id
        where = f" (transaction #{existing_id})" if existing_id else " (earlier in the same batch)"
        super().__init__(f"idempotency key {key!r} already used for a different transaction{where}")


class AlreadyReversed(LedgerError):
    """A transaction is reversed at most once; this one already was, under another key."""


class ConcurrentPost(LedgerError):
    """Another connection committed the same idempotency key first; roll back the outer transaction and retry."""


class _LostRace(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    """One transaction to post, validated (see :func:`entry`). Legs are (account id, amount in cents)."""

    kind: str
    legs: tuple[tuple[int, int], ...]
    idempotency_key: str
    memo: str
    source: tuple[str, str]
    effective_date: dt.date
    reverses_id: int | None = None

    def content(self) -> tuple:
        """What must match for a replay of the same key to be the same transaction (memo and date may differ)."""
        return (self.kind, self.source, self.reverses_id, frozenset(Counter(self.legs).items()))


def entry(
    kind: str,
    legs: Sequence[tuple[Account, int]],
    *,
    idempotency_key: str,
    memo: str = "",
    source: tuple[str, str],
    effective_date: dt.date | None = None,
) -> Entry:
    """Check a transaction before anything is written: ≥ 2 legs of saved accounts, integer non-zero cents, sum 0."""
    legs = list(legs)
    if len(legs) < 2:
        raise InvalidPosting("a transaction needs at least two legs")
    checked = []
    for leg in legs:
        if not (isinstance(leg, tuple) and len(leg) == 2):
            raise InvalidPosting("each leg is a pair (account, amount in cents)")
        account, amount = leg
        if not isinstance(account, Account) or account.pk is None:
            raise InvalidPosting("each leg's account must be a saved Account")
        if type(amount) is not int:  # not bool, float, Decimal or str: cents are integers
            raise InvalidPosting(f"amounts are integer cents, not {type(amount).__name__}")
        if amount == 0 or abs(amount) > MAX_LEG_CENTS:
            raise InvalidPosting("each leg's amount must be non-zero and at most 10^15 cents")
        checked.append((account.pk, amount))
    total = sum(amount for _account, amount in checked)
    if total != 0:
        raise InvalidPosting(f"the legs do not balance: they sum to {total} cents, not 0")
    return _entry(kind, tuple(checked), idempotency_key, memo, source, effective_date)


def _entry(kind, legs, key, memo, source, effective_date, reverses_id=None) -> Entry:
    if kind not in _KINDS:
        raise InvalidPosting(f"unknown transaction kind {kind!r} (add it to TransactionKind)")
    if not isinstance(key, str) or not key or len(key) > 200:
        raise InvalidPosting("the idempotency key is a non-empty string of at most 200 characters")
    if not isinstance(memo, str) or len(memo) > 200:
        raise InvalidPosting("the memo is a string of at most 200 characters")
    if not (isinstance(source, tuple) and len(source) == 2 and all(isinstance(part, str) for part in source)):
        raise InvalidPosting("the source is a pair of strings (type, id), e.g. ('claim', '123')")
    if not source[0] or len(source[0]) > 30 or len(source[1]) > 64:
        raise InvalidPosting("the source type is 1 to 30 characters, its id at most 64")
    if effective_date is None:
        effective_date = timezone.localdate()
    elif isinstance(effective_date, dt.datetime) or not isinstance(effective_date, dt.date):
        raise InvalidPosting("the effective date is a date")
    return Entry(str(kind), legs, key, memo, source, effective_date, reverses_id)


def post(
    kind: str,
    legs: Sequence[tuple[Account, int]],
    *,
    idempotency_key: str,
    memo: str = "",
    source: tuple[str, str],
    effective_date: dt.date | None = None,
) -> Transaction:
    """Post one balanced transaction, or return the one already posted under this key with the same legs."""
    return post_many(
        [
            entry(
                kind,
                legs,
                idempotency_key=idempotency_key,
                memo=memo,
                source=source,
                effective_date=effective_date,
            )
        ]
    )[0]


def post_many(entries: Iterable[Entry]) -> list[Transaction]:
    """Post many transactions (built with :func:`entry`), all or none; one result per entry, in order.

    Three statements on PostgreSQL whatever the number (arrays through ``unnest``). Keys already posted with the same content are replays and return the earlier transaction; a key used
    with another content raises :class:`IdempotencyConflict` before anything is written.
    """
    entries = list(entries)
    first: dict[str, Entry] = {}
    for item in entries:
        seen = first.setdefault(item.idempotency_key, item)
        if seen.content() != item.content():
            raise IdempotencyConflict(item.idempotency_key)
    if not first:
        return []
    for attempt in (1, 2):
        fresh_ids, found = _look_up(list(first))
        done = _replays(first, found)
        new = [item for key, item in first.items() if key not in done]
        if not new:
            break
        outer = connection.in_atomic_block
        try:
            with transaction.atomic(savepoint=False):
                done.update(
                    _write(new, [fresh_ids[item.idempotency_key] for item in new] if fresh_ids else None)
                )
        except _LostRace:
            if outer or attempt == 2:
                raise ConcurrentPost(
                    "another connection posted one of these idempotency keys first; roll back and retry"
                ) from None
            continue
        break
    return [done[item.idempotency_key] for item in entries]


def reverse(
    original: Transaction,
    *,
    idempotency_key: str,
    memo: str = "",
    kind: str | None = None,
    effective_date: dt.date | None = None,
) -> Transaction:
    """Post the exact opposite of ``original`` (a credit note, a returned payment); at most once per transaction."""
    legs = tuple(original.postings.values_list("account_id", "amount_cents").order_by("id"))
    if len(legs) < 2:
        raise InvalidPosting("only a posted transaction can be reversed")
    item = _entry(
        kind or REVERSAL_KIND.get(original.kind, Kind.REVERSAL),
        tuple((account_id, -amount) for account_id, amount in legs),
        idempotency_key,
        memo,
        (original.source_type, original.source_id),
        effective_date,
        reverses_id=original.pk,
    )
    earlier = (
        Transaction.objects.filter(reverses_id=original.pk).values_list("idempotency_key", flat=True).first()
    )
    if earlier is not None and earlier != idempotency_key:
        raise AlreadyReversed(f"transaction #{original.pk} was already reversed (key {earlier!r})")
    return post_many([item])[0]


# --- statements -------------------------------------------------------------------------------------------------

_PG_LOOK_UP = """
SELECT k.key, t.id, nextval(pg_get_serial_sequence('accounting_transaction', 'id'))
  FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, n)
  LEFT JOIN accounting_transaction t ON t.idempotency_key = k.key
 ORDER BY k.n
"""
_PG_INSERT_POSTINGS = """
INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::date[])
"""
_PG_INSERT_TRANSACTIONS = """
INSERT INTO accounting_transaction
       (id, kind, idempotency_key, memo, source_type, source_id, created_at, effective_date, reverses_id)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::timestamptz[], %s::date[], %s::bigint[])
    ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""
# One transaction (the common case): scalar parameters are cheaper to send than arrays (~0.15 ms a post).
_PG_LOOK_UP_ONE = (
    "SELECT nextval(pg_get_serial_sequence('accounting_transaction', 'id')),"
    " (SELECT id FROM accounting_transaction WHERE idempotency_key = %s)"
)
_PG_INSERT_TRANSACTION = (
    "INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, created_at,"
    " effective_date, reverses_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_SQLITE_INSERT_POSTING = "INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date) VALUES (%s, %s, %s, %s)"
_SQLITE_INSERT_TRANSACTION = (
    "INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, created_at,"
    " effective_date, reverses_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)
_SQLITE_CHUNK = 500  # keys per IN (…) list, well under SQLite's variable limit


def _look_up(keys: list[str]) -> tuple[dict[str, int] | None, dict[str, int]]:
    """Existing transactions by key; on PostgreSQL also a fresh id per key (from the sequence, same statement)."""
    if connection.vendor == "postgresql" and len(keys) == 1:
        ((fresh, id_),) = hot_sql.run(_PG_LOOK_UP_ONE, keys, fetch=True)
        return {keys[0]: fresh}, ({keys[0]: id_} if id_ is not None else {})
    if connection.vendor == "postgresql":
        rows = hot_sql.run(_PG_LOOK_UP, [keys], fetch=True)
        return {key: fresh for key, _id, fresh in rows}, {
            key: id_ for key, id_, _fresh in rows if id_ is not None
        }
    found = {}
    with connection.cursor() as cursor:
        for start in range(0, len(keys), _SQLITE_CHUNK):
            chunk = keys[start : start + _SQLITE_CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT idempotency_key, id FROM accounting_transaction WHERE idempotency_key IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )
            found.update(cursor.fetchall())
    return None, found


def _replays(first: dict[str, Entry], found: dict[str, int]) -> dict[str, Transaction]:
    """The earlier transactions of keys already posted, after checking each is the same transaction."""
    if not found:
        return {}
    earlier = {
        tx.pk: tx for tx in Transaction.objects.filter(pk__in=found.values()).prefetch_related("postings")
    }
    replays = {}
    for key, tx_id in found.items():
        tx = earlier[tx_id]
        legs = frozenset(Counter((p.account_id, p.amount_cents) for p in tx.postings.all()).items())
        if (tx.kind, (tx.source_type, tx.source_id), tx.reverses_id, legs) != first[key].content():
            raise IdempotencyConflict(key, tx_id)
        replays[key] = tx
    return replays


def _write(new: list[Entry], ids: list[int] | None) -> dict[str, Transaction]:
    """Insert the legs, then the transaction rows that seal them (inside the caller's atomic block)."""
    now = timezone.now()
    if ids is None:  # SQLite: writers are serialised (IMMEDIATE transactions), so the next ids are free
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM accounting_transaction")
            top = cursor.fetchone()[0]
        ids = list(range(top + 1, top + 1 + len(new)))
    legs = [(tx_id, account, amount, item.effective_date) for tx_id, item in zip(ids, new, strict=True)
            for account, amount in item.legs]  # fmt: skip
    heads = [
        (
            tx_id,
            item.kind,
            item.idempotency_key,
            item.memo,
            *item.source,
            now,
            item.effective_date,
            item.reverses_id,
        )
        for tx_id, item in zip(ids, new, strict=True)
    ]
    if connection.vendor == "postgresql" and len(heads) == 1:
        marks = ", ".join(["(%s, %s, %s, %s)"] * len(legs))  # one prepared statement per number of legs
        hot_sql.run(
            f"INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date) VALUES {marks}",  # noqa: S608 - placeholders only
            [value for leg in legs for value in leg],
        )
        inserted = len(hot_sql.run(_PG_INSERT_TRANSACTION, heads[0], fetch=True))
    elif connection.vendor == "postgresql":
        hot_sql.run(_PG_INSERT_POSTINGS, [list(column) for column in zip(*legs, strict=True)])
        inserted = len(
            hot_sql.run(_PG_INSERT_TRANSACTIONS, [list(c) for c in zip(*heads, strict=True)], fetch=True)
        )
    else:
        with connection.cursor() as cursor:
            cursor.executemany(_SQLITE_INSERT_POSTING, [(*leg[:3], leg[3].isoformat()) for leg in legs])
            cursor.executemany(_SQLITE_INSERT_TRANSACTION, [_sqlite_row(head) for head in heads])
            inserted = cursor.rowcount
    if inserted != len(new):
        raise _LostRace  # a key was committed by another connection meanwhile: our legs must not stay
    written = {}
    for head in heads:
        tx = Transaction(
            id=head[0], kind=head[1], idempotency_key=head[2], memo=head[3], source_type=head[4],
            source_id=head[5], created_at=head[6], effective_date=head[7], reverses_id=head[8],
        )  # fmt: skip
        tx._state.adding = False
        tx._state.db = connection.alias
        written[tx.idempotency_key] = tx
    return written


def _sqlite_row(head: tuple) -> tuple:
    """Values as the ORM stores them on SQLite (datetimes and dates as ISO text)."""
    created_at = Transaction._meta.get_field("created_at").get_db_prep_save(head[6], connection)
    effective = Transaction._meta.get_field("effective_date").get_db_prep_save(head[7], connection)
    return (*head[:6], created_at, effective, head[8])


# --- accounts ---------------------------------------------------------------------------------------------------


def insurer_receivable(insurer) -> Account:
    """What the insurer owes the operator (an asset); ``insurer`` is a registry.Insurer or its id."""
    from rempart.registry.models import Insurer

    insurer_id = getattr(insurer, "pk", insurer)
    try:
        return Account.objects.get(purpose=Purpose.INSURER_RECEIVABLE, insurer_id=insurer_id)
    except Account.DoesNotExist:
        pass
    if not isinstance(insurer, Insurer):
        insurer = Insurer.objects.get(pk=insurer_id)
    return _get_or_create(
        Purpose.INSURER_RECEIVABLE,
        f"411-{insurer.amc_number}",
        f"Créance sur {insurer.name} (AMC {insurer.amc_number})",
        insurer=insurer,
    )


def professional_payable(organisation) -> Account:
    """What the operator owes a professional organisation (a liability); an accounts.Organisation or its id."""
    from rempart.accounts.models import Organisation

    organisation_id = getattr(organisation, "pk", organisation)
    try:
        return Account.objects.get(purpose=Purpose.PROFESSIONAL_PAYABLE, organisation_id=organisation_id)
    except Account.DoesNotExist:
        pass
    if not isinstance(organisation, Organisation):
        organisation = Organisation.objects.select_related("professional").get(pk=organisation_id)
    if organisation.kind != Organisation.Kind.PROFESSIONAL:
        raise InvalidPosting("a payable belongs to a professional organisation")
    finess = getattr(organisation.professional, "finess", None)
    name = f"Dette envers {organisation.name}" + (f" (FINESS {finess})" if finess else "")
    return _get_or_create(
        Purpose.PROFESSIONAL_PAYABLE, f"401-ORG{organisation.pk}", name, organisation=organisation
    )


def open_accounts_for(organisation) -> None:
    """Create, each committed at once, the accounts a batch of this organisation's claims may post to: its
    payable and every insurer's receivable. Call it *before* a long transaction (a lot): two lots creating
    the same new accounts inside their own transactions, in different orders, would deadlock."""
    from rempart.registry.models import Insurer

    if connection.in_atomic_block:
        raise RuntimeError("open the accounts before the lot's transaction, not inside it")
    professional_payable(organisation)
    have = Account.objects.filter(purpose=Purpose.INSURER_RECEIVABLE).values_list("insurer_id", flat=True)
    for insurer in Insurer.objects.exclude(pk__in=list(have)):
        insurer_receivable(insurer)


OPERATOR_ACCOUNTS = {
    Purpose.OPERATOR_BANK: "Banque de l'opérateur",
    Purpose.OPERATOR_REVENUE: "Produits de gestion de l'opérateur",
    Purpose.PAYMENTS_IN_TRANSIT: "Virements émis non encore débités",
}


def operator_account(purpose: Purpose) -> Account:
    """One of the operator's own accounts: bank, revenue (fees), payments in transit."""
    if purpose not in OPERATOR_ACCOUNTS:
        raise InvalidPosting(f"{purpose!r} is not an operator account")
    try:
        return Account.objects.get(purpose=purpose, insurer=None, organisation=None)
    except Account.DoesNotExist:
        return _get_or_create(purpose, PURPOSES[purpose][2], OPERATOR_ACCOUNTS[purpose])


def operator_bank() -> Account:
    return operator_account(Purpose.OPERATOR_BANK)


def operator_revenue() -> Account:
    return operator_account(Purpose.OPERATOR_REVENUE)


def payments_in_transit() -> Account:
    return operator_account(Purpose.PAYMENTS_IN_TRANSIT)


def _get_or_create(purpose: Purpose, code: str, name: str, **owner) -> Account:
    kind = PURPOSES[purpose][0]
    account, _created = Account.objects.get_or_create(
        purpose=purpose,
        insurer=owner.get("insurer"),
        organisation=owner.get("organisation"),
        defaults={"code": code, "name": name, "kind": kind},
    )  # a concurrent creator makes the INSERT fail on the unique (purpose, owner); get_or_create then reads it
    return account


# --- by source (what a claim, a payment, a statement has posted so far) ----------------------------------------

_SOURCE_POSITION = """
SELECT COALESCE(SUM(CASE WHEN p.account_id = %s THEN p.amount_cents ELSE 0 END), 0), COUNT(DISTINCT t.id)
  FROM accounting_transaction t JOIN accounting_posting p ON p.transaction_id = t.id
 WHERE t.source_type = %s AND t.source_id = %s
"""


def source_position(source: tuple[str, str], account: Account) -> tuple[int, int]:
    """(the source's balance on ``account``, how many transactions the source has) in one statement."""
    balance_cents, count = hot_sql.run(_SOURCE_POSITION, [account.pk, source[0], source[1]], fetch=True)[0]
    return int(balance_cents), int(count)


def source_balance(source: tuple[str, str], account: Account) -> int:
    """What the transactions of one source (e.g. ("claim", "42")) have posted to ``account``, debit-positive."""
    return source_position(source, account)[0]


def source_transaction_count(source: tuple[str, str]) -> int:
    return Transaction.objects.filter(source_type=source[0], source_id=source[1]).count()


def source_transactions(source: tuple[str, str]) -> list[Transaction]:
    return list(Transaction.objects.filter(source_type=source[0], source_id=source[1]).order_by("id"))
