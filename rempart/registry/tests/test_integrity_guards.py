"""The registry's bulk-loaded foreign keys (beneficiary → contract, contract → insurer and product) are checked once
per statement on PostgreSQL (rempart.lib.statement_fk) and by SQLite's own constraint: either way the database,
not only Django, refuses an orphan, whatever writes the rows, and concurrent writers cannot race one in."""

from __future__ import annotations

import datetime as dt
import importlib
import threading

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from rempart.registry.models import Beneficiary, Contract, Product

pytestmark = pytest.mark.django_db
guards_migration = importlib.import_module("rempart.registry.migrations.0006_statement_foreign_keys")


def _contract(insurer, adherent="A1") -> Contract:
    return Contract.objects.create(
        insurer=insurer, adherent_number=adherent, product=Product.objects.filter(insurer=insurer).first(),
        start_date=dt.date(2026, 1, 1), fingerprint=1,
    )  # fmt: skip


def _beneficiary(contract_id: int, member: int = 1) -> None:
    """One beneficiary row written in SQL, as the import's merge writes them (no ORM check on the way)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO registry_beneficiary (contract_id, member_number, quality, last_name, first_name, sex,
                   birth_year, birth_rank, coverage_start, fingerprint)
               VALUES (%s, %s, 'A', 'MARTIN', 'LEA', 'F', 1980, 1, '2026-01-01', 7)""",
            [contract_id, member],
        )


def _refused(write) -> None:
    """``write`` must fail with an integrity error: at once on PostgreSQL, at the constraint check on SQLite
    (its foreign keys are deferred to the commit, which a test transaction never reaches)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        write()
        if connection.vendor == "sqlite":
            connection.check_constraints()


def test_a_beneficiary_of_no_contract_is_refused(insurer):
    contract = _contract(insurer)
    _refused(lambda: _beneficiary(contract.pk + 1000))
    _beneficiary(contract.pk)  # its own contract: accepted
    assert Beneficiary.objects.filter(contract=contract).count() == 1


def test_one_orphan_fails_the_whole_statement(insurer):
    contract = _contract(insurer)

    def two_rows():
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO registry_beneficiary (contract_id, member_number, quality, last_name, first_name,
                       sex, birth_year, birth_rank, coverage_start, fingerprint)
                   SELECT c, m, 'A', 'MARTIN', 'LEA', 'F', 1980, 1, '2026-01-01', 7
                   FROM (SELECT %s AS c, 1 AS m UNION ALL SELECT %s, 2) AS v""",
                [contract.pk, contract.pk + 1000],
            )

    _refused(two_rows)
    assert not Beneficiary.objects.exists()


def test_contracts_missing_between_the_referenced_ones_are_no_orphans(insurer):
    """The guard's shortcut (every id between the lowest and highest referenced exists) fails when there is a
    gap; the precise check then decides: rows around the gap are accepted, a row in it is refused."""
    first, gone, last = (_contract(insurer, f"A{n}") for n in range(3))
    gone.delete()

    def rows(*contract_ids):
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO registry_beneficiary (contract_id, member_number, quality, last_name, first_name,
                       sex, birth_year, birth_rank, coverage_start, fingerprint)
                   SELECT c, 1, 'A', 'MARTIN', 'LEA', 'F', 1980, 1, '2026-01-01', 7
                   FROM (SELECT %s AS c UNION ALL SELECT %s) AS v""",
                list(contract_ids),
            )

    rows(first.pk, last.pk)
    assert Beneficiary.objects.count() == 2
    Beneficiary.objects.all().delete()
    _refused(lambda: rows(first.pk, gone.pk))
    _refused(lambda: rows(first.pk, last.pk + 10**6))  # spread wide: the precise check at once
    assert not Beneficiary.objects.exists()


def test_moving_a_beneficiary_to_no_contract_is_refused(insurer):
    contract = _contract(insurer)
    _beneficiary(contract.pk)
    _refused(lambda: Beneficiary.objects.update(contract_id=contract.pk + 1000))
    assert Beneficiary.objects.get().contract_id == contract.pk


def test_deleting_a_contract_that_has_beneficiaries_is_refused_in_sql_and_cascades_in_the_orm(insurer):
    contract = _contract(insurer)
    _beneficiary(contract.pk)

    def delete_in_sql():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM registry_contract WHERE id = %s", [contract.pk])

    _refused(delete_in_sql)
    assert Contract.objects.filter(pk=contract.pk).exists()
    contract.delete()  # Django deletes the beneficiaries first (on_delete=CASCADE)
    assert not Beneficiary.objects.exists() and not Contract.objects.exists()


def test_a_contract_of_no_product_or_insurer_is_refused(insurer):
    contract = _contract(insurer)
    _refused(lambda: Contract.objects.filter(pk=contract.pk).update(product_id=10**6))
    _refused(lambda: Contract.objects.filter(pk=contract.pk).update(insurer_id=10**6))

    def product_in_sql():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM registry_product WHERE id = %s", [contract.product_id])

    _refused(product_in_sql)


def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the statement-level guards are PostgreSQL's; SQLite keeps its own constraint")


def test_the_guards_are_installed_and_no_per_row_constraint_is_left():
    """A later migration that rebuilt one of these tables would drop the guards silently: this test says so."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for table, column in (("registry_beneficiary", "contract_id"), ("registry_contract", "insurer_id"),
                                  ("registry_contract", "product_id")):  # fmt: skip
                cursor.execute(f"PRAGMA foreign_key_list({table})")
                assert column in {row[3] for row in cursor.fetchall()}, (table, column)
        return
    from rempart.lib.statement_fk import foreign_key_constraints

    with connection.cursor() as cursor:
        for guard in guards_migration.GUARDS:
            cursor.execute(guard.installed_sql())
            assert cursor.fetchone()[0] == 5, guard.name
            assert foreign_key_constraints(cursor, guard.child, guard.column) == []


def test_renumbering_a_contract_and_truncating_contracts_alone_are_refused(insurer):
    _postgresql_only()
    contract = _contract(insurer)
    _beneficiary(contract.pk)
    _refused(lambda: Contract.objects.filter(pk=contract.pk).update(id=contract.pk + 1000))

    def truncate():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE registry_contract CASCADE")

    _refused(truncate)
    assert Beneficiary.objects.count() == 1


def _other_connection(**options) -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, **options)


_INSERT = """INSERT INTO registry_beneficiary (contract_id, member_number, quality, last_name, first_name, sex,
                 birth_year, birth_rank, coverage_start, fingerprint)
             VALUES (%s, 9, 'A', 'DUBOIS', 'JEAN', 'M', 1970, 1, '2026-01-01', 7)"""


@pytest.mark.django_db(transaction=True)
def test_an_import_and_a_concurrent_deletion_of_its_contract_cannot_both_commit(insurer):
    """The import's statement commits first: the deletion, which waited for it, then sees its rows and fails."""
    _postgresql_only()
    contract = _contract(insurer)
    importer, deleter = _other_connection(), _other_connection()
    try:
        importer.execute(_INSERT, [contract.pk])  # in an open transaction
        outcome: list = []

        def delete():
            try:
                deleter.execute("DELETE FROM registry_contract WHERE id = %s", [contract.pk])
                deleter.commit()
                outcome.append("deleted")
            except psycopg.errors.ForeignKeyViolation:
                deleter.rollback()
                outcome.append("refused")

        thread = threading.Thread(target=delete)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the deletion must wait for the import's transaction"
        importer.commit()
        thread.join(10)
        assert outcome == ["refused"]
        assert Beneficiary.objects.filter(contract_id=contract.pk).count() == 1
    finally:
        importer.close()
        deleter.close()


@pytest.mark.django_db(transaction=True)
def test_a_deletion_that_commits_first_makes_the_concurrent_import_fail(insurer):
    _postgresql_only()
    contract = _contract(insurer)
    importer, deleter = _other_connection(), _other_connection()
    try:
        deleter.execute("DELETE FROM registry_contract WHERE id = %s", [contract.pk])  # its check passed
        outcome: list = []

        def insert():
            try:
                importer.execute(_INSERT, [contract.pk])
                importer.commit()
                outcome.append("inserted")
            except psycopg.errors.ForeignKeyViolation:
                importer.rollback()
                outcome.append("refused")

        thread = threading.Thread(target=insert)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the import's check must wait for the deletion's transaction"
        deleter.commit()
        thread.join(10)
        assert outcome == ["refused"]
        assert not Beneficiary.objects.exists() and not Contract.objects.exists()
    finally:
        importer.close()
        deleter.close()


@pytest.mark.django_db(transaction=True)
def test_under_repeatable_read_the_guard_locks_the_contracts_it_relies_on(insurer):
    """No fresh snapshot under REPEATABLE READ: the check locks the parents, so the deletion waits, then fails."""
    _postgresql_only()
    contract = _contract(insurer)
    importer, deleter = _other_connection(), _other_connection()
    try:
        importer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        importer.execute(_INSERT, [contract.pk])
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            importer.execute(_INSERT.replace("9,", "8,"), [contract.pk + 1000])
        importer.rollback()
        importer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        importer.execute(_INSERT, [contract.pk])
        deleter.execute("SET lock_timeout = '500ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # the contract's row is locked by the import
            deleter.execute("DELETE FROM registry_contract WHERE id = %s", [contract.pk])
        deleter.rollback()
        importer.commit()
        assert Beneficiary.objects.filter(contract_id=contract.pk).count() == 1
    finally:
        importer.close()
        deleter.close()


def test_a_guard_is_only_built_from_plain_identifiers():
    from rempart.lib.statement_fk import StatementForeignKey

    with pytest.raises(ValueError):
        StatementForeignKey("x_fk", "registry_beneficiary; DROP TABLE x", "contract_id", "registry_contract")
