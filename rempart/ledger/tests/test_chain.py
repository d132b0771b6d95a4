"""The ledger is append-only and tamper-evident: `rempart ledger verify` finds the first broken link."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from rempart.ledger import chain, verification
from rempart.ledger.models import ChainHead, Disclosure


def _append(n=1, **extra):
    rows = []
    for i in range(n):
        with transaction.atomic():
            rows.append(chain.append(channel="api", purpose="rights_check", organisation_id=1, outcome="no_match",
                                     domain="OPTI", fields=[], presented_hash=bytes([i % 256]) * 16, **extra))  # fmt: skip
    return rows


def test_rows_chain_and_verify(db):
    rows = _append(40)
    assert chain.verify().ok and chain.verify().rows == 40
    by_chain = {}
    for row in rows:
        by_chain.setdefault(row.chain, []).append(row)
    for members in by_chain.values():
        assert [r.seq for r in members] == list(range(1, len(members) + 1))
        assert bytes(members[0].prev_hash) == chain.GENESIS
    call_command("ledger", "verify")


def test_append_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(RuntimeError):
        chain.append(channel="api", purpose="x", outcome="no_match", fields=[])


def test_the_application_cannot_update_or_delete_rows(db):
    row = _append()[0]
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        Disclosure.objects.filter(pk=row.pk).update(outcome="covered")
    with pytest.raises(PermissionError):
        Disclosure.objects.all().delete()


def test_the_database_refuses_updates_too(db):
    row = _append()[0]
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_disclosure SET outcome = 'covered' WHERE id = %s", [row.pk])


def _raw(sql, params):
    """Tamper as a database administrator would: drop the guard for one statement."""
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


def test_an_altered_row_is_found(db):
    rows = _append(30)
    victim = rows[10]
    _raw("UPDATE ledger_disclosure SET outcome = 'covered' WHERE id = %s", [victim.pk])
    report = chain.verify()
    assert not report.ok and any(
        f"seq {victim.seq} ({victim.reference}) was altered" in b for b in report.broken
    )
    with pytest.raises(CommandError):
        call_command("ledger", "verify")


def test_a_removed_row_is_found(db):
    rows = _append(30)
    victim = next(r for r in rows if r.seq == 1 and any(o.chain == r.chain and o.seq == 2 for o in rows))
    _raw("DELETE FROM ledger_disclosure WHERE id = %s", [victim.pk])
    assert any(f"chain {victim.chain}:" in b for b in chain.verify().broken)


def test_a_removed_tail_is_found(db):
    rows = _append(20)
    last = max(rows, key=lambda r: (r.chain, r.seq))
    last = max((r for r in rows if r.chain == last.chain), key=lambda r: r.seq)
    _raw("DELETE FROM ledger_disclosure WHERE id = %s", [last.pk])
    assert any("missing" in b for b in chain.verify().broken)


def test_heads_are_printed_for_anchoring(db, capsys):
    _append(3)
    call_command("ledger", "heads")
    assert (
        len([line for line in capsys.readouterr().out.splitlines() if line.startswith("chain")])
        == ChainHead.objects.count()
    )


def test_a_cut_tail_with_a_rewound_head_is_caught_by_saved_anchors(db, tmp_path, capsys):
    rows = _append(20)
    call_command("ledger", "heads")
    anchors = tmp_path / "heads.txt"
    anchors.write_text(capsys.readouterr().out)
    victim_chain = max(rows, key=lambda r: r.seq).chain
    last = max((r for r in rows if r.chain == victim_chain), key=lambda r: r.seq)
    previous = next((r for r in rows if r.chain == victim_chain and r.seq == last.seq - 1), None)
    _raw("DELETE FROM ledger_disclosure WHERE id = %s", [last.pk])
    ChainHead.objects.filter(chain=victim_chain).update(
        seq=last.seq - 1, last_hash=bytes(previous.row_hash) if previous else bytes(32)
    )
    assert chain.verify().ok  # the chain alone cannot see it...
    with pytest.raises(CommandError):
        call_command("ledger", "verify", anchors=str(anchors))  # ...the anchors can


def test_missing_heads_are_recreated_at_genesis(db):
    ChainHead.objects.all().delete()
    rows = _append(5)
    assert all(r.seq == 1 or bytes(r.prev_hash) != chain.GENESIS for r in rows)
    assert chain.verify().ok


def test_checkpoints_let_a_routine_verification_read_only_new_rows(db, capsys):
    from rempart.ledger.models import ChainCheckpoint

    _append(30)
    call_command("ledger", "verify")  # complete: saves where each chain ends
    assert ChainCheckpoint.objects.count() == len({r.chain for r in Disclosure.objects.all()})
    _append(5)
    report = chain.verify(from_checkpoints=True)
    assert report.ok and report.rows == 5 and report.checkpoint_at is not None
    call_command("ledger", "verify", "--incremental")
    assert "5 rows in 16 chains verified since the checkpoints" in capsys.readouterr().out


def test_a_checkpointed_row_altered_later_is_caught_and_a_full_run_finds_older_changes(db):
    _append(20)
    verification.run("full")
    newest = Disclosure.objects.order_by("-id").first()
    _raw("UPDATE ledger_disclosure SET outcome = 'covered' WHERE id = %s", [newest.pk])
    report = chain.verify(from_checkpoints=True)
    assert not report.ok  # a chain's checkpoint row itself no longer has its hash
    oldest = Disclosure.objects.order_by("id").first()
    assert not chain.verify().ok and any(
        f"seq {oldest.seq}" in line or "altered" in line for line in chain.verify().broken
    )


def test_check_rows_rehashes_just_the_given_rows(db):
    rows = _append(6)
    _raw("UPDATE ledger_disclosure SET organisation_id = 99 WHERE id = %s", [rows[2].pk])
    problems = chain.check_rows(Disclosure.objects.filter(pk__in=[r.pk for r in rows[:3]]))
    assert len(problems) == 1 and rows[2].reference in problems[0]
    assert chain.check_rows(Disclosure.objects.filter(pk__in=[r.pk for r in rows[3:]])) == []
