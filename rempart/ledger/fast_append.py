"""One-statement ledger append, for answers whose decision writes nothing (the rights check).

The transactional append (:func:`rempart.ledger.chain.append`) costs BEGIN, the head lock, the insert and
COMMIT: four round trips to PostgreSQL before the answer may leave. On the rights check that was most of
the request (docs/benchmarks.md, "Rights check"). Here each connection keeps the head of the chain it
wrote last (seq and hash) and a block of row ids from the sequence, and writes the row, the chain's new
head and whatever the purpose must commit with the row (:class:`WithRow`, e.g. the organisation's
clientele memory) in **one statement in autocommit**: durable when it returns (synchronous commit), so the
answer still leaves only after its row is on disk.

The head is advanced only if it is still what this connection wrote last — compare-and-set under the
row's lock, never waiting for it (``FOR UPDATE SKIP LOCKED``). If another writer moved or holds that
chain, nothing at all is written (the row and the purpose's work depend on the head's update in the same
statement) and the row goes the transactional way, on a chain no one holds; this connection then keeps
that chain's head. So the chains stay exactly as the transactional append would leave them, which
``rempart ledger verify`` checks. If the statement fails, the row alone goes the transactional way and the
purpose's work runs after it has committed: that work runs only for matched cards, and its failure must never
decide whether a row is written. SQLite (development, tests) always takes the transactional way.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from rempart.ledger import chain
from rempart.ledger.models import CHAIN_COUNT, Disclosure
from rempart.lib import hot_sql, metrics

ID_BLOCK = 16  # ids taken from the sequence at once (gaps at a process's exit, as after a rollback)
ID_BLOCK_SECONDS = 1.0  # a block older than this is dropped: ids stay in time order to within about a second


@dataclass(frozen=True)
class WithRow:
    """Work to commit together with a ledger row, in the row's own statement where the database allows it.

    ``ctes``: PostgreSQL data-modifying CTEs, ``(name, sql, params)``, that may read ``new_row`` (one row,
    its ``id``, present only if the row is written); ``result``: a scalar SQL expression over them, whose
    value goes to ``finish``. ``alone``: the same work as plain statements (SQLite, and the transactional
    way), returning what ``finish`` would; ``finish`` turns the statement's value into the caller's result.
    """

    ctes: Sequence[tuple[str, str, Sequence[Any]]]
    result: str
    finish: Callable[[Any], Any]
    alone: Callable[[], Any]


def _casts() -> list[str]:
    """Typed parameters (INSERT … SELECT does not type them from the columns); text for strings, so that a
    value too long for its column fails as it would in a plain INSERT instead of being cut by the cast."""
    casts = []
    for name in chain.INSERTED_FIELDS:
        field = Disclosure._meta.get_field(name)
        kind = "text" if field.get_internal_type() == "CharField" else field.cast_db_type(connection)
        casts.append(f"CAST(%s AS {kind})")
    return casts


_SQL: dict[tuple[str, ...], str] = {}


def _statement(extras: Sequence[WithRow]) -> str:
    names = tuple(name for extra in extras for name, _sql, _params in extra.ctes)
    sql = _SQL.get(names)
    if sql is None:
        ctes = "".join(f", {name} AS ({text})" for extra in extras for name, text, _params in extra.ctes)
        results = "".join(f", {extra.result}" for extra in extras)
        # Column names from the model, CTE texts from the code; every value is a parameter.
        sql = (
            "WITH head AS ("  # noqa: S608
            "UPDATE ledger_chainhead SET seq = %s, last_hash = %s WHERE chain = ("
            "SELECT chain FROM ledger_chainhead WHERE chain = %s AND seq = %s AND last_hash = %s "
            "FOR UPDATE SKIP LOCKED) RETURNING chain"
            "), new_row AS ("
            f"INSERT INTO ledger_disclosure ({', '.join(chain.INSERTED_FIELDS)}) "
            f"SELECT {', '.join(_casts())} FROM head RETURNING id"
            f"){ctes} SELECT (SELECT count(*) FROM new_row){results}"
        )
        _SQL[names] = sql
    return sql


def _next_id() -> int:
    ids = getattr(connection, "_rempart_fast_ids", None)
    if not ids or time.monotonic() - connection._rempart_fast_ids_at > ID_BLOCK_SECONDS:
        ids = sorted(row[0] for row in hot_sql.run(chain._PG_IDS, [ID_BLOCK], fetch=True))
        connection._rempart_fast_ids, connection._rempart_fast_ids_at = ids, time.monotonic()
    return ids[0]


def append(extras: Sequence[WithRow] = (), **values) -> tuple[Disclosure, list]:
    """Append one row durably (and ``extras`` with it) outside a transaction: (the row, the extras' results).

    Inside a caller's transaction the statement joins it, exactly as :func:`chain.append` would.
    """
    head = getattr(connection, "_rempart_fast_head", None)
    if connection.vendor != "postgresql" or head is None:
        return _transactional(extras, values)
    chain_no, seq, last_hash = head
    row = Disclosure(
        id=_next_id(),
        hash_version=chain.CURRENT_HASH_VERSION,
        created_at=values.pop("created_at", None) or timezone.now(),
        chain=chain_no,
        seq=seq + 1,
        prev_hash=last_hash,
        reference=values.pop("reference", None) or chain.new_reference(),
        **values,
    )
    row.row_hash = chain.row_hash(row, last_hash)
    params = [row.seq, row.row_hash, chain_no, seq, last_hash]
    params += chain.prepare_row(row)
    for extra in extras:
        for _name, _sql, extra_params in extra.ctes:
            params += extra_params
    connection._rempart_fast_head = None  # until the statement is known to have written it
    started = time.perf_counter()
    same_row = {**values, "created_at": row.created_at, "reference": row.reference}
    try:
        [written, *results] = _run_once(_statement(extras), params)
    except DatabaseError:
        # Nothing of the statement was written (a broken connection fails the transactional way too). The row
        # alone first, then the purpose's work: whether that work fails (it runs only for a matched card) must
        # never decide whether the row is written, and a miss is retried the same way as a match.
        return _transactional(extras, same_row)
    if not written:  # another writer moved or holds this chain: the transactional way, on another chain
        connection._rempart_chain = (chain_no + 1 + secrets.randbelow(CHAIN_COUNT - 1)) % CHAIN_COUNT
        return _transactional(extras, same_row)
    connection._rempart_fast_ids.pop(0)
    connection._rempart_fast_head = (chain_no, row.seq, row.row_hash)
    metrics.ledger_appended("one", time.perf_counter() - started)
    row._state.adding = False
    return row, [extra.finish(value) for extra, value in zip(extras, results, strict=True)]


def _run_once(sql: str, params: list) -> tuple:
    if (
        connection.in_atomic_block
    ):  # a savepoint, so that the caller's transaction survives a failed statement
        with transaction.atomic():
            return hot_sql.run(sql, params, fetch=True)[0]
    return hot_sql.run(sql, params, fetch=True)[0]


def _transactional(extras: Sequence[WithRow], values: dict) -> tuple[Disclosure, list]:
    """The row by the transactional append, committed before the purpose's work runs (its failure, if any, then
    reaches the caller with the row already written)."""
    with transaction.atomic():
        row = chain.append(**values)
    # This connection now knows that chain's head. Inside a caller's transaction that may yet roll back, the
    # next append's compare-and-set then finds another head and takes this way again: nothing is assumed.
    connection._rempart_fast_head = (row.chain, row.seq, bytes(row.row_hash))
    return row, [extra.alone() for extra in extras]


def forget() -> None:
    """Drop this connection's head and ids (tests; the next append takes the transactional way)."""
    connection._rempart_fast_head = None
    connection._rempart_fast_ids = []
