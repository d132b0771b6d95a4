"""A failed verification moves no checkpoint and leaves the ledger « altered » until a complete run passes."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from rempart.incidents import workflow
from rempart.incidents.scope import ScopeCriteria
from rempart.ledger import chain, verification
from rempart.ledger.models import ChainCheckpoint, ChainHead, Disclosure, LedgerAnchor, VerificationRun

from .tamper import append, cut_tail, raw


def _checkpoints() -> dict[int, tuple[int, bytes]]:
    return {c.chain: (c.seq, bytes(c.row_hash)) for c in ChainCheckpoint.objects.all()}


def _chain_grown_since_checkpoint() -> tuple[int, int]:
    """A chain with a checkpoint and rows after it (appending until there is one): (chain, checkpoint seq)."""
    while True:
        for checkpoint in ChainCheckpoint.objects.all():
            if ChainHead.objects.get(chain=checkpoint.chain).seq > checkpoint.seq:
                return checkpoint.chain, checkpoint.seq
        append(5)


@pytest.fixture
def verified_then_grown(db):
    append(20)
    call_command("ledger", "verify")  # complete and passing: checkpoints at every chain's end
    append(20)
    return _checkpoints()


def test_a_failed_anchors_run_moves_no_checkpoint_and_the_next_incremental_run_fails(
    verified_then_grown, tmp_path, capsys
):
    """The defect: `verify --anchors` verified the chains, saved checkpoints, *then* found the cut; the next
    `--incremental` run started from the rewound heads and said OK."""
    call_command("ledger", "heads")
    heads = tmp_path / "heads.txt"
    heads.write_text(capsys.readouterr().out)
    victim, checkpoint_seq = _chain_grown_since_checkpoint()
    cut_tail(victim, checkpoint_seq)  # the new rows of one chain cut, its head rewound onto its checkpoint
    assert chain.verify(from_checkpoints=True).ok  # the chain alone cannot see it

    with pytest.raises(CommandError):
        call_command("ledger", "verify", anchors=str(heads))
    out = capsys.readouterr().out
    assert f"BROKEN chain {victim}: the anchored row seq" in out and "Nothing saved" in out
    # Not one checkpoint moved, not even those of the chains that passed.
    assert _checkpoints() == verified_then_grown
    failure = VerificationRun.objects.get(ok=False)
    assert failure.kind == "full" and failure.published and f"chain {victim}" in failure.problems

    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--incremental")
    assert "failed and no complete verification has passed since" in capsys.readouterr().out
    # A complete run on the chains alone does not clear a failure found against anchors kept outside.
    with pytest.raises(CommandError):
        call_command("ledger", "verify")
    assert _checkpoints() == verified_then_grown


def test_a_freeze_after_a_failed_verification_shows_the_ledger_altered(verified_then_grown, tmp_path, capsys):
    call_command("ledger", "heads")
    heads = tmp_path / "heads.txt"
    heads.write_text(capsys.readouterr().out)
    victim, checkpoint_seq = _chain_grown_since_checkpoint()
    cut_tail(victim, checkpoint_seq)
    with pytest.raises(CommandError):
        call_command("ledger", "verify", anchors=str(heads))

    incident = workflow.open_incident(title="Compte détourné", detected_at=timezone.now())
    scope = workflow.attach_scope(
        incident, ScopeCriteria(since=timezone.now() - dt.timedelta(days=1)), label="tout"
    )
    assert not scope.ledger_ok
    assert "failed and no complete verification has passed since" in scope.ledger_report
    assert f"chain {victim}" in scope.ledger_report
    assert _checkpoints() == verified_then_grown  # the freeze's own checks passed, yet it moved nothing
    timeline = list(incident.timeline.values_list("detail", flat=True))
    assert any("REGISTRE ALTÉRÉ" in line for line in timeline)
    assert not LedgerAnchor.objects.exists()  # no anchor signed over an altered ledger


def test_a_freeze_whose_scope_rows_fail_moves_no_checkpoint(db):
    """The freeze verified from the checkpoints, saved new ones, *then* re-hashed the scope's rows."""
    append(10)
    call_command("ledger", "verify")
    before = _checkpoints()
    old = Disclosure.objects.order_by("id").first()
    append(10)
    raw("UPDATE ledger_disclosure SET organisation_id = 99 WHERE id = %s", [old.pk])  # before its checkpoint
    check = workflow.check_ledger(ScopeCriteria(since=old.created_at - dt.timedelta(seconds=1)))
    assert not check.ok and old.reference in check.report
    assert _checkpoints() == before
    with pytest.raises(CommandError):  # the rows after the checkpoints are intact, but the failure stands
        call_command("ledger", "verify", "--incremental")


def test_one_broken_chain_saves_no_checkpoint_for_the_others(db):
    rows = append(30)
    raw("UPDATE ledger_disclosure SET outcome = 'covered' WHERE id = %s", [rows[-1].pk])
    outcome = verification.run("full")
    assert not outcome.ok and not outcome.run.checkpoints_saved
    assert not ChainCheckpoint.objects.exists()


def test_only_a_complete_passing_run_clears_a_failure(db):
    rows = append(20)
    victim = rows[5]
    call_command("ledger", "verify")
    raw("UPDATE ledger_disclosure SET outcome = 'covered' WHERE id = %s", [victim.pk])
    assert not verification.run("full").ok
    raw("UPDATE ledger_disclosure SET outcome = %s WHERE id = %s", [victim.outcome, victim.pk])  # put back

    incremental = verification.run("incremental", from_checkpoints=True)
    assert not incremental.problems and incremental.standing  # its own checks pass; the failure still stands
    assert verification.current_failure() is not None
    dated = verification.run("since", since=timezone.now() - dt.timedelta(days=1))
    assert dated.standing and not dated.run.checkpoints_saved

    complete = verification.run("full")
    assert complete.ok and complete.cleared is not None and complete.run.checkpoints_saved
    assert verification.current_failure() is None
    assert verification.run("incremental", from_checkpoints=True).ok


def test_a_failure_found_against_published_anchors_needs_them_to_clear(db):
    now = timezone.now()
    failure = VerificationRun.objects.create(
        started_at=now, finished_at=now, kind="full", complete=True, published=True, ok=False, problems="x"
    )
    VerificationRun.objects.create(started_at=now, finished_at=now, kind="full", complete=True, ok=True)
    assert verification.current_failure() == failure
    VerificationRun.objects.create(
        started_at=now, finished_at=now, kind="full", complete=False, published=True, ok=True
    )
    assert verification.current_failure() == failure  # not complete
    VerificationRun.objects.create(
        started_at=now, finished_at=now, kind="full", complete=True, published=True, ok=True
    )
    assert verification.current_failure() is None


def test_a_checkpoint_moved_by_a_database_writer_is_refused(db):
    """Checkpoints carry a MAC: moving one past a changed row (to hide it from routine runs) is caught."""
    append(20)
    call_command("ledger", "verify")
    append(20)
    victim_chain, _seq = _chain_grown_since_checkpoint()
    head = ChainHead.objects.get(chain=victim_chain)
    ChainCheckpoint.objects.filter(chain=victim_chain).update(seq=head.seq, row_hash=head.last_hash)
    report = chain.verify(from_checkpoints=True)
    assert any(f"chain {victim_chain}: its checkpoint was changed" in line for line in report.broken)


def test_every_run_is_recorded(db, capsys):
    append(3)
    call_command("ledger", "verify")
    call_command("ledger", "verify", "--incremental")
    call_command("ledger", "verify", "--since", timezone.localdate().isoformat())
    kinds = list(
        VerificationRun.objects.order_by("pk").values_list("kind", "complete", "ok", "checkpoints_saved")
    )
    assert kinds == [
        ("full", True, True, True),
        ("incremental", False, True, True),
        ("since", False, True, False),
    ]


def test_rows_appended_while_a_verification_runs_are_not_taken_for_a_cut(db, monkeypatch):
    """Under live traffic, rows arrive between reading the heads and reading the rows: they wait for the next run."""
    append(20)
    call_command("ledger", "verify")
    append(5)
    heads_at_start = list(ChainHead.objects.all())
    append(10)  # appended "during" the run below
    monkeypatch.setattr(chain.ChainHead.objects, "all", lambda: heads_at_start)
    assert chain.verify().ok
    assert chain.verify(from_checkpoints=True).ok
