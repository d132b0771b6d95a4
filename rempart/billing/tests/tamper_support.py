"""Tests of what happens when stored statement bytes are altered behind the application's back.

The database refuses any change to an issued statement (migration 0004's triggers), so an attacker who alters
a PDF must have switched those guards off first; ``forged`` does the same for the length of one update, inside
the test's transaction, so that the digest check at download is what is under test.
"""

from __future__ import annotations

import contextlib

from django.db import connection

from rempart.billing.models import Statement

TABLES = ("billing_statement", "billing_statementitem")


@contextlib.contextmanager
def guards_off():
    """The statement guards dropped (SQLite) or disabled (PostgreSQL), then put back as they were."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses a table with pending (deferred) foreign-key checks: run them first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            try:
                yield
            finally:
                for table in TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)", TABLES
        )
        triggers = cursor.fetchall()
        for name, _sql in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield
        finally:
            for _name, sql in triggers:
                cursor.execute(sql)


def forged(statement: Statement, **fields) -> None:
    """Overwrite stored columns of an issued statement, as someone with write access to the database could."""
    with guards_off():
        Statement.objects.filter(pk=statement.pk).update(**fields)


def forget_billing() -> None:
    """End of a transactional test on SQLite: the billing rows go first, guards off (Django's flush deletes
    row by row there, which the guards refuse for issued statements; PostgreSQL's TRUNCATE is not guarded),
    then the payments rows, before the ledger they point at is wiped."""
    from rempart.billing.models import CollectionFile, Receipt, StatementItem
    from rempart.payments.tests.returns_support import forget_payments

    with guards_off():
        for model in (Receipt, CollectionFile, StatementItem):
            model.objects.all().delete()
        Statement.objects.filter(corrects__isnull=False).delete()
        Statement.objects.all().delete()
    forget_payments()
