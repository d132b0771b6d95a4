"""Helpers for the ledger's tests: rows appended as the gate does, and changes made as a database administrator
would make them (the append-only guard dropped for one statement)."""

from __future__ import annotations

from django.db import connection, transaction

from rempart.ledger import chain
from rempart.ledger.models import ChainHead, Disclosure


def append(n: int = 1, **extra) -> list[Disclosure]:
    rows = []
    for i in range(n):
        with transaction.atomic():
            rows.append(chain.append(channel="api", purpose="rights_check", organisation_id=1, outcome="no_match",
                                     domain="OPTI", fields=[], presented_hash=bytes([i % 256]) * 16, **extra))  # fmt: skip
    return rows


def raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE ledger_disclosure DISABLE TRIGGER ledger_disclosure_append_only")
            cursor.execute(sql, params)
            cursor.execute("ALTER TABLE ledger_disclosure ENABLE TRIGGER ledger_disclosure_append_only")
        else:
            cursor.execute("DROP TRIGGER ledger_disclosure_no_update")
            cursor.execute(sql, params)
            cursor.execute(
                "CREATE TRIGGER ledger_disclosure_no_update BEFORE UPDATE ON ledger_disclosure "
                "BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;"
            )


def longest_chain() -> int:
    return ChainHead.objects.order_by("-seq", "chain").first().chain


def cut_tail(chain_no: int, keep: int) -> None:
    """Delete a chain's rows after seq ``keep`` and rewind its head onto the row kept: the chain alone stays valid."""
    kept = Disclosure.objects.filter(chain=chain_no, seq=keep).first()
    raw("DELETE FROM ledger_disclosure WHERE chain = %s AND seq > %s", [chain_no, keep])
    ChainHead.objects.filter(chain=chain_no).update(
        seq=keep, last_hash=bytes(kept.row_hash) if kept else chain.GENESIS
    )


def wipe(chain_no: int) -> None:
    """Delete every row of a chain and reset its head to the genesis: the chain alone looks never used."""
    cut_tail(chain_no, 0)
