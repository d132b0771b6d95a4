"""For tests of apps that post money: the ledger written as a database administrator would, triggers off.

Only tests use this. Production has no path that updates or deletes postings; these helpers exist so that
tests can break the books on purpose (and see ``rempart accounts check`` fail) and so that transactional
tests on SQLite can empty the ledger (Django's flush deletes rows, which the triggers refuse there).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection


def unguarded(sql: str, params: Sequence = ()) -> None:
    """Run one statement with the ledger's triggers off (PostgreSQL: foreign keys too; CHECKs stay on).

    PostgreSQL: replica mode, which needs a superuser, as the test database's owner is here. Pending
    deferred checks are run first (they concern rows written before the break, which are sound).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET session_replication_role = replica")
            try:
                cursor.execute(sql, params)
            finally:
                cursor.execute("SET session_replication_role = origin")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'accounting%'"
        )
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
