"""``rempart accounts``: check passes on sound books and fails (exit status 1) on each kind of break."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import connection, transaction

from rempart.accounting import service
from rempart.accounting.management.commands.accounts import euros
from rempart.accounting.models import Posting
from rempart.accounting.testing import unguarded
from rempart.accounting.tests.conftest import DAY, accept


def run(*args) -> str:
    out = io.StringIO()
    call_command("accounts", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def books(parties):
    tx = accept(parties, 4250, key="claim:1:1")
    accept(parties, 1000, insurer=1, shop=1, key="claim:2:1")
    service.reverse(tx, idempotency_key="avoir:1")
    accept(parties, 123456, insurer=2, shop=0, key="claim:3:1")
    service.post(service.Kind.PAYMENT, [(parties.payables[1], 1000), (parties.bank, -1000)],
                 idempotency_key="pay:1", source=("payment", "1"), effective_date=DAY)  # fmt: skip
    return parties


def test_check_passes_on_sound_books(books):
    assert run("check").startswith("OK: 5 transactions and 10 postings on 8 accounts")


def test_check_passes_on_an_empty_ledger(db):
    assert run("check").startswith("OK: 0 transactions")


def _first(amount: int) -> Posting:
    return Posting.objects.filter(amount_cents=amount).order_by("id").first()


BREAKS = {
    "an amount changed": (
        lambda p: unguarded(
            "UPDATE accounting_posting SET amount_cents = 1001 WHERE id = %s", [_first(1000).pk]
        ),
        ["do not balance", "balances of all accounts sum to 1 cents"],
    ),
    "a leg deleted": (
        lambda p: unguarded("DELETE FROM accounting_posting WHERE id = %s", [_first(-123456).pk]),
        ["1 transactions that do not balance"],
    ),
    "a posting outside any transaction": (
        lambda p: unguarded(
            "INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date) "
            "VALUES (999999, %s, 500, %s)",
            [p.receivables[0].pk, DAY],
        ),  # fmt: skip
        ["1 postings without a sealed transaction", "balance differs from the sum of their postings"],
    ),
    "a transaction re-dated": (
        lambda p: unguarded(
            "UPDATE accounting_transaction SET effective_date = %s WHERE idempotency_key = 'pay:1'",
            [DAY + dt.timedelta(days=1)],
        ),  # fmt: skip
        ["2 postings dated otherwise than their transaction"],
    ),
    "a reversal moved to another shop": (
        lambda p: unguarded(
            "UPDATE accounting_posting SET account_id = %s WHERE transaction_id = "
            "(SELECT id FROM accounting_transaction WHERE idempotency_key = 'avoir:1') AND amount_cents > 0",
            [p.payables[2].pk],
        ),
        ["1 reversals that are not the exact opposite of their original"],
    ),
    "a guard dropped": (
        lambda p: unguarded(
            "DROP TRIGGER accounting_posting_open ON accounting_posting"
            if connection.vendor == "postgresql"
            else "DROP TRIGGER accounting_posting_open"
        ),
        ["database guards missing or disabled: accounting_posting_open"],
    ),
}


@pytest.mark.parametrize("what", BREAKS)
def test_check_fails_on_each_kind_of_break(books, what):
    if what == "a guard dropped" and connection.vendor == "sqlite":
        # unguarded() restores every trigger it dropped; drop this one for good
        breaker = lambda p: connection.cursor().execute("DROP TRIGGER accounting_posting_open")  # noqa: E731
    else:
        breaker = BREAKS[what][0]
    expected = BREAKS[what][1]
    with transaction.atomic():  # undone afterwards, so the test database stays sound
        breaker(books)
        out = io.StringIO()
        with pytest.raises(CommandError, match="money ledger is broken"):
            call_command("accounts", "check", stdout=out)
        transaction.set_rollback(True)
    for line in expected:
        assert line in out.getvalue(), out.getvalue()
    assert all(line.startswith("BROKEN ") for line in out.getvalue().splitlines())
    assert run("check").startswith("OK")


def test_a_float_amount_is_caught_on_sqlite(books):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's bigint column holds only integers")
    with transaction.atomic():
        unguarded("UPDATE accounting_posting SET amount_cents = 1000.5 WHERE id = %s", [_first(1000).pk])
        with pytest.raises(CommandError):
            run("check")
        transaction.set_rollback(True)


def test_the_command_exits_with_status_1_on_a_break(books, capsys):
    with transaction.atomic():
        unguarded("UPDATE accounting_posting SET amount_cents = 1 WHERE id = %s", [_first(1000).pk])
        with pytest.raises(SystemExit) as exit_:
            execute_from_command_line(["rempart", "accounts", "check"])
        transaction.set_rollback(True)
    assert exit_.value.code == 1
    assert "money ledger is broken" in capsys.readouterr().err


def test_balances_of_an_insurer_and_of_a_professional(books):
    amc = books.insurers[2].amc_number
    out = run("balances", "--insurer", amc)
    lines = [line for line in out.splitlines() if line.startswith("411-")]
    assert len(lines) == 1 and f"411-{amc}" in lines[0] and "1 234,56 D" in lines[0]
    finess = books.shops[1].professional.finess
    out = run("balances", "--professional", finess)
    assert f"401-ORG{books.shops[1].pk}" in out and "10,00" in out and " 0,00  " in out
    out = run("balances", "--at", (DAY - dt.timedelta(days=1)).isoformat())
    assert "1 234,56" not in out and "at 2026-11-01" in out
    with pytest.raises(CommandError, match="no insurer"):
        run("balances", "--insurer", "000000000")
    with pytest.raises(CommandError, match="no professional"):
        run("balances", "--professional", "000000000")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run("balances", "--at", "25/11/2026")


def test_trial_balance(books):
    out = run("trial-balance")
    assert "balanced" in out and "NOT" not in out
    assert out.count("\n") >= 8 + 3


def test_euros():
    assert [euros(c) for c in (0, 5, -5, 123456, -1234567890)] == [
        "0,00", "0,05", "-0,05", "1 234,56", "-12 345 678,90",
    ]  # fmt: skip


def test_check_fails_when_a_guard_is_disabled_on_postgresql(books):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite triggers cannot be disabled, only dropped (tested above)")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending deferred checks
            cursor.execute("ALTER TABLE accounting_transaction DISABLE TRIGGER accounting_transaction_seal")
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("accounts", "check", stdout=out)
        transaction.set_rollback(True)
    assert "guards missing or disabled: accounting_transaction_seal" in out.getvalue()
