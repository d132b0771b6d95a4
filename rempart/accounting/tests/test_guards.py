"""Each database guard, attacked with raw SQL as a bug or a careless hand would (runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from rempart.accounting.models import Account, Posting, Transaction
from rempart.accounting.testing import wipe_ledger
from rempart.accounting.tests.conftest import DAY, accept, make_parties

OTHER_DAY = "2026-11-03"


def raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def leg(tx_id: int, account: Account, cents, day: str = DAY.isoformat()) -> None:
    raw("INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date) "
        "VALUES (%s, %s, %s, %s)", [tx_id, account.pk, cents, day])  # fmt: skip


def seal(tx_id: int, key: str, day: str = DAY.isoformat()) -> None:
    raw("INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, created_at, "
        "effective_date) VALUES (%s, 'claim_accepted', %s, '', 'claim', '1', %s, %s)",
        [tx_id, key, timezone.now(), day])  # fmt: skip


def refused(action, match: str = "accounting|constraint|CHECK|FOREIGN KEY") -> None:
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        action()


def test_raw_sql_can_post_a_balanced_transaction_the_same_way(parties):
    """The guards refuse breaks, not the legitimate order: legs first, then the row that seals them."""
    receivable, payable = parties.receivables[0], parties.payables[0]
    leg(900, receivable, 500)
    leg(900, payable, -500)
    seal(900, "raw:1")
    assert Transaction.objects.get(pk=900).postings.count() == 2


def test_a_posting_cannot_join_a_sealed_transaction(parties):
    tx = accept(parties, 1000)
    refused(lambda: leg(tx.pk, parties.payables[1], 1), "sealed transaction")
    refused(
        lambda: (leg(tx.pk, parties.payables[1], 5), leg(tx.pk, parties.payables[0], -5)),
        "sealed transaction",
    )
    assert Posting.objects.count() == 2


def test_a_transaction_whose_legs_do_not_balance_cannot_be_sealed(parties):
    def unbalanced():
        leg(901, parties.receivables[0], 1000)
        leg(901, parties.payables[0], -999)
        seal(901, "raw:unbalanced")

    refused(unbalanced, "at least two, sum to zero")
    assert not Transaction.objects.filter(pk=901).exists()


def test_a_transaction_without_legs_cannot_be_sealed(parties):
    refused(lambda: seal(902, "raw:empty"), "at least two")


def test_a_transaction_cannot_be_sealed_over_legs_of_another_date(parties):
    def two_dates():
        leg(903, parties.receivables[0], 1000)
        leg(903, parties.payables[0], -1000, OTHER_DAY)
        seal(903, "raw:dates")

    refused(two_dates, "share its effective date")


def test_a_posting_of_zero_is_refused(parties):
    refused(lambda: leg(904, parties.receivables[0], 0), "not_zero|CHECK|check")


def test_a_posting_is_an_integer_number_of_cents(parties):
    if connection.vendor == "sqlite":  # SQLite would store 12.5 as a REAL in an INTEGER column
        refused(lambda: leg(905, parties.receivables[0], 12.5), "integer cents")
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'accounting_posting' AND column_name = 'amount_cents'"
            )
            assert cursor.fetchone()[0] == "bigint"


def test_postings_and_transactions_cannot_be_updated_or_deleted(parties):
    tx = accept(parties, 1000)
    posting = tx.postings.first()
    refused(
        lambda: raw("UPDATE accounting_posting SET amount_cents = 2000 WHERE id = %s", [posting.pk]),
        "append-only",
    )
    refused(
        lambda: raw("UPDATE accounting_posting SET account_id = %s", [parties.payables[1].pk]), "append-only"
    )
    refused(lambda: raw("DELETE FROM accounting_posting WHERE id = %s", [posting.pk]), "append-only")
    refused(lambda: raw("DELETE FROM accounting_posting"), "append-only")
    refused(lambda: raw("UPDATE accounting_transaction SET memo = 'x'"), "append-only")
    refused(lambda: raw("UPDATE accounting_transaction SET effective_date = %s", [OTHER_DAY]), "append-only")
    refused(lambda: raw("DELETE FROM accounting_transaction WHERE id = %s", [tx.pk]), "append-only")
    refused(lambda: Posting.objects.filter(pk=posting.pk).update(amount_cents=1), "append-only")
    refused(lambda: Transaction.objects.filter(pk=tx.pk).update(memo="corrigé"), "append-only")
    with pytest.raises((IntegrityError, ProtectedError)), transaction.atomic():
        tx.delete()
    refused(lambda: posting.delete(), "append-only")
    assert sorted(Posting.objects.values_list("amount_cents", flat=True)) == [-1000, 1000]


def test_a_statement_cannot_write_legs_and_their_seal_together(parties):
    """PostgreSQL runs a CTE's inserts in one statement; the seal must still not cover legs written with it."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no data-modifying CTEs")
    receivable, payable = parties.receivables[0], parties.payables[0]
    sql = (
        "WITH t AS (INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, "
        "created_at, effective_date) VALUES (906, 'claim_accepted', 'raw:cte', '', 'claim', '1', now(), %s) "
        "RETURNING id) INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date) "
        "SELECT t.id, a, c, %s FROM t, (VALUES (%s::bigint, 10), (%s::bigint, -10)) AS v(a, c)"
    )
    refused(lambda: raw(sql, [DAY, DAY, receivable.pk, payable.pk]))


def test_a_posting_without_its_transaction_is_refused_at_the_latest_at_commit(parties):
    def orphan():
        leg(907, parties.receivables[0], 100)
        leg(907, parties.payables[0], -100)
        connection.check_constraints()  # what COMMIT does with the deferred foreign key

    refused(orphan, "FOREIGN KEY|foreign key|violates|constraint")


@pytest.mark.django_db(transaction=True)
def test_commit_refuses_legs_that_were_never_sealed():
    parties = make_parties()
    with pytest.raises(IntegrityError):
        with transaction.atomic():  # a real COMMIT: the deferred foreign key is checked there
            leg(908, parties.receivables[0], 100)
            leg(908, parties.payables[0], -100)
    assert not Posting.objects.exists()
    accept(parties, 100)  # committed for real: the transactional test's flush must cope with the guards
    assert Transaction.objects.count() == 1
    wipe_ledger()


def test_an_accounts_identity_cannot_change_but_its_name_can(parties):
    account = parties.receivables[0]
    for column, value in [
        ("code", "411-X"),
        ("purpose", "operator_bank"),
        ("kind", "liability"),
        ("insurer_id", parties.insurers[1].pk),
    ]:
        refused(lambda c=column, v=value: raw(f"UPDATE accounting_account SET {c} = %s WHERE id = %s", [v, account.pk]),
                "cannot change|CHECK|check|UNIQUE|unique")  # fmt: skip
    refused(lambda: raw("UPDATE accounting_account SET insurer_id = NULL, organisation_id = %s WHERE id = %s",
                        [parties.shops[0].pk, account.pk]), "cannot change|CHECK|check")  # fmt: skip
    Account.objects.filter(pk=account.pk).update(name="Créance corrigée")
    account.refresh_from_db()
    account.name = "Créance (libellé corrigé)"
    account.save()  # the ORM rewrites every column; unchanged identity passes
    assert Account.objects.get(pk=account.pk).name == "Créance (libellé corrigé)"


def test_the_database_keeps_purposes_kinds_and_owners_consistent(parties):
    for values in [
        ("411-BAD", "insurer_receivable", "liability", parties.insurers[0].pk, None),  # wrong kind
        ("401-BAD", "professional_payable", "liability", parties.insurers[0].pk, None),  # wrong owner
        ("512-BIS", "operator_bank", "asset", None, None),  # a second operator bank
        ("411-BIS", "insurer_receivable", "asset", parties.insurers[0].pk, None),  # a second receivable
    ]:
        refused(lambda v=values: raw(
            "INSERT INTO accounting_account (code, name, purpose, kind, insurer_id, organisation_id, created_at) "
            "VALUES (%s, 'x', %s, %s, %s, %s, %s)", [*v, timezone.now()]), "CHECK|check|UNIQUE|unique")  # fmt: skip


def test_an_account_with_postings_cannot_be_deleted(parties):
    accept(parties, 100)

    def delete():
        raw("DELETE FROM accounting_account WHERE id = %s", [parties.payables[0].pk])
        connection.check_constraints()

    refused(delete, "FOREIGN KEY|foreign key|violates|constraint")
    with pytest.raises(ProtectedError):
        parties.payables[0].delete()
