"""For tests of apps that post money: the ledger written as a database administrator would, triggers off.

Only tests use this. Production has no path that updates or deletes postings; these helpers exist so that
tests can break the books on purpose (and see ``rempart accounts check`` fail) and so that transactional
tests on SQLite can empty the ledger (Django's flush deletes rows, which the triggers refuse there).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

TABLES = ("accounting_posting", "accounting_transaction", "accounting_account")


def unguarded(sql: str, params: Sequence = ()) -> None:
    """Run one statement with the ledger's own triggers disabled (foreign keys and CHECKs stay on)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            try:
                cursor.execute(sql, params)
            finally:
                for table in TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            return
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'accounting%'")
        triggers = cursor.fetchall()
        for name, _sql in triggers:
            cursor.execute(f"DROP TRIGGER {name}")
        try:
            cursor.execute(sql, params)
        finally:
            for _name, create in triggers:
                cursor.execute(create)


def wipe_ledger() -> None:
    """Empty postings and transactions (end of a transactional test on SQLite; PostgreSQL's TRUNCATE needs none)."""
    unguarded("DELETE FROM accounting_posting")
    unguarded("DELETE FROM accounting_transaction")
