"""PostgreSQL: the hot statements really are prepared (Django turns psycopg's prepared statements off; the
settings turn them back on for the statements that ask by name), nothing else is, and a statement whose table a
migration changed under it is replanned, not failed."""

import pytest
from django.db import connection

from rempart.lib import hot_sql

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no prepared statements to keep")


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_a_hot_statement_is_prepared_once_and_the_orm_is_not(django_user_model):
    statement = hot_sql.Statement("SELECT count(*) FROM accounts_user WHERE id > %s")
    for _ in range(3):
        assert statement.first([0]) == (0,)
    for _ in range(10):
        list(django_user_model.objects.filter(pk__gt=0))
    prepared = _prepared_statements()
    assert sum("FROM accounts_user WHERE id > $1" in text for text in prepared) == 1
    assert not any('"accounts_user"' in text for text in prepared)  # the ORM's queries are not


def test_the_setting_can_turn_them_off(monkeypatch):
    from rempart.settings import database_from_env

    monkeypatch.setenv("DATABASE_URL", "postgres://rempart@db.example:5432/rempart")
    assert database_from_env()["OPTIONS"]["prepare_threshold"] > 10**9
    monkeypatch.setenv("REMPART_DB_PREPARED_STATEMENTS", "0")
    assert "prepare_threshold" not in database_from_env().get("OPTIONS", {})


@pytest.mark.django_db(transaction=True)
def test_a_statement_prepared_before_a_migration_still_answers_after_it():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE hot_probe (v integer)")
        cursor.execute("INSERT INTO hot_probe VALUES (7)")
    try:
        statement = hot_sql.Statement("SELECT v FROM hot_probe WHERE v > %s")
        assert statement.rows([0]) == [(7,)] and statement.rows([0]) == [(7,)]
        with connection.cursor() as cursor:  # what a deploy's migration may do while workers run
            cursor.execute("ALTER TABLE hot_probe ALTER COLUMN v TYPE bigint")
        assert statement.rows([0]) == [(7,)]  # PostgreSQL replans the prepared statement: no error
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS hot_probe")
