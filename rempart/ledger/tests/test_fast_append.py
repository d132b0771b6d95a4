"""The one-statement append (rempart.ledger.fast_append): the chains it leaves are exactly the transactional
append's, whoever else writes to them, and nothing is written when the chain moved under it."""

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from rempart.ledger import chain, fast_append
from rempart.ledger.models import ChainHead, Disclosure

VALUES = {"channel": "api", "purpose": "rights_check", "organisation_id": 1, "outcome": "no_match",
          "domain": "OPTI", "fields": [], "presented_hash": b"\x01" * 16}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh():
    fast_append.forget()
    yield
    fast_append.forget()


def _append(**extra):
    return fast_append.append(**{**VALUES, **extra})[0]


def _head():
    return connection._rempart_fast_head


def test_rows_written_at_once_chain_like_the_transactional_ones(db):
    rows = [_append(organisation_id=n) for n in range(12)]
    assert chain.verify().ok and chain.verify().rows == 12
    assert len({row.reference for row in rows}) == 12
    stored = {row.pk: row for row in Disclosure.objects.all()}
    for row in rows:  # what the caller got is what was stored, hash included
        assert bytes(stored[row.pk].row_hash) == bytes(row.row_hash) and stored[row.pk].seq == row.seq
    if connection.vendor == "postgresql":  # after the first row, one connection keeps one chain
        assert len({row.chain for row in rows}) == 1
        assert [row.seq for row in rows] == list(range(1, 13))


def test_a_chain_moved_by_another_writer_is_left_alone(db):
    first = _append()
    with transaction.atomic():  # another writer (a PEC, a lot, another process) appends to the same chain
        connection._rempart_chain = first.chain
        other = chain.append(**VALUES)
    assert other.chain == first.chain and other.seq == first.seq + 1
    third = _append()
    assert chain.verify().ok and chain.verify().rows == 3
    if connection.vendor == "postgresql":
        # The compare-and-set saw a head it did not write: the row went the transactional way, on another chain.
        assert third.chain != first.chain and _head() == (third.chain, third.seq, bytes(third.row_hash))


@pytest.mark.django_db(transaction=True)
def test_a_chain_held_by_another_transaction_is_not_waited_for():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes under one database lock")
    first = _append()
    held, release = threading.Event(), threading.Event()

    def hold():  # a long transaction (an invoice lot) holds the chain's head
        try:
            with transaction.atomic():
                ChainHead.objects.select_for_update().get(chain=first.chain)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        second = _append()  # would block until the lot commits if it waited for the lock
        assert second.chain != first.chain
    finally:
        release.set()
        thread.join(10)
    assert chain.verify().ok and chain.verify().rows == 2


def test_what_the_purpose_commits_with_the_row_goes_with_it(db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs the work alone, after the row (covered by the gate's tests)")
    _append()
    probe = fast_append.WithRow(
        ctes=[("probe", "SELECT id FROM new_row WHERE %s = %s", [1, 1])],
        result="(SELECT count(*) FROM probe)",
        finish=lambda value: ("finished", value),
        alone=lambda: ("alone", None),
    )
    row, [result] = fast_append.append([probe], **VALUES)
    assert result == ("finished", 1)  # the CTE saw the new row
    # The chain moved: nothing of the statement is written, the work runs alone with the transactional row.
    with transaction.atomic():
        connection._rempart_chain = row.chain
        chain.append(**VALUES)
    _row, [result] = fast_append.append([probe], **VALUES)
    assert result == ("alone", None)
    assert chain.verify().ok and chain.verify().rows == 4


def test_a_failing_statement_writes_nothing_and_the_row_goes_the_transactional_way(db, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite always appends the transactional way")
    _append()
    before = Disclosure.objects.count()
    monkeypatch.setattr(fast_append, "_statement", lambda extras: "SELECT * FROM no_such_ledger_table")
    row = _append()
    assert Disclosure.objects.count() == before + 1 and Disclosure.objects.filter(pk=row.pk).exists()
    assert _head() == (row.chain, row.seq, bytes(row.row_hash))
    monkeypatch.setattr(chain, "append", lambda **values: (_ for _ in ()).throw(DatabaseError("disk full")))
    with pytest.raises(DatabaseError), transaction.atomic():  # both ways fail: no row, no answer
        _append()
    assert Disclosure.objects.count() == before + 1
    monkeypatch.undo()
    _append()
    assert chain.verify().ok and chain.verify().rows == before + 2


def test_a_value_too_long_for_its_column_fails_instead_of_being_cut(db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce column lengths")
    _append()
    with pytest.raises(DatabaseError), transaction.atomic():
        _append(session_ref="x" * 65)  # the column holds 64
    assert not Disclosure.objects.filter(session_ref__startswith="xxx").exists()


def _failing_work(calls: list) -> fast_append.WithRow:
    def alone():
        calls.append("alone")
        raise RuntimeError("the purpose's work failed")

    return fast_append.WithRow(
        ctes=[("broken", "SELECT id FROM no_such_table_of_the_purpose", [])],
        result="(SELECT count(*) FROM broken)",
        finish=lambda value: value,
        alone=alone,
    )


def test_the_row_is_written_even_when_the_purposes_work_fails(db):
    """The work runs only for a matched card: its failure must never decide whether the row is written (the
    answer would differ for a match before its row exists). The row goes first, then the work fails."""
    _append()  # PostgreSQL: the next append goes by one statement, whose work part fails
    before = Disclosure.objects.count()
    calls = []
    with pytest.raises(RuntimeError):
        fast_append.append([_failing_work(calls)], **{**VALUES, "outcome": "covered", "beneficiary_id": 7})
    assert calls == ["alone"]
    assert Disclosure.objects.count() == before + 1
    assert Disclosure.objects.filter(beneficiary_id=7, outcome="covered").exists()
    assert chain.verify().ok
