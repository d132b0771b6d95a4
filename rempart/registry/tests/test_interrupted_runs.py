"""An import whose process died is shown as interrupted, never as running forever; a committed one as done.

The kill -9 tests themselves are in test_crash_safety.py; these pin the rules and the pages.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import time
from html import unescape

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from rempart.lib import processes
from rempart.registry import import_runs, rights_import
from rempart.registry.models import Beneficiary, ImportRun
from rempart.registry.tests.support import run_import
from rempart.testing import login


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def running_run(insurer, **fields) -> ImportRun:
    run = ImportRun.objects.create(
        insurer=insurer, kind="rights", mode="delta", file_name="droits.csv", **fields
    )
    return run


def history(*args) -> str:
    out = io.StringIO()
    call_command("import_history", *args, stdout=out)
    return out.getvalue()


def test_the_process_token_names_this_process():
    token = import_runs.process_token()
    assert token and token == import_runs.process_token(os.getpid())
    assert import_runs.process_alive(os.getpid(), token)
    assert not import_runs.process_alive(os.getpid(), token + "0")  # a recycled pid is another process
    assert not import_runs.process_alive(dead_pid(), "")


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while processes._stat(child.pid)[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert not import_runs.process_alive(child.pid, "")
    finally:
        child.wait()


def test_an_import_records_its_process(insurer, rows_for, rights_file, tmp_path):
    run, _summary = run_import(rights_file(rows_for(3)), insurer, tmp_path)
    run.refresh_from_db()
    assert (run.host, run.pid, run.process_token) == (
        import_runs.this_host(),
        os.getpid(),
        import_runs.process_token(),
    )
    assert run.current_status() == ImportRun.Status.SUCCEEDED


def test_a_running_run_of_this_host_is_interrupted_once_its_process_is_gone(insurer):
    alive = running_run(insurer, **import_runs.process_fields())
    gone = running_run(insurer, host=import_runs.this_host(), pid=dead_pid(), process_token="x:1")
    recycled = running_run(insurer, host=import_runs.this_host(), pid=os.getpid(), process_token="other:1")
    assert alive.current_status() == ImportRun.Status.RUNNING
    assert gone.current_status() == ImportRun.Status.INTERRUPTED
    assert recycled.current_status() == ImportRun.Status.INTERRUPTED
    assert gone.get_current_status_display() == "Interrompu"
    assert ImportRun.objects.get(pk=gone.pk).status == ImportRun.Status.RUNNING  # shown, not rewritten


def test_a_run_of_another_host_is_judged_by_its_heartbeat(insurer, settings):
    settings.REMPART_IMPORT_STALE_SECONDS = 600
    now = timezone.now()
    fresh = running_run(
        insurer, host="other-host", pid=os.getpid(), heartbeat_at=now - dt.timedelta(seconds=30)
    )
    stale = running_run(insurer, host="other-host", pid=os.getpid(), heartbeat_at=now - dt.timedelta(hours=1))
    assert fresh.current_status(now) == ImportRun.Status.RUNNING
    assert stale.current_status(now) == ImportRun.Status.INTERRUPTED  # our own pid there means nothing
    # a run recorded before the process was noted: only its age tells
    legacy = running_run(insurer)
    assert legacy.current_status(now) == ImportRun.Status.RUNNING
    assert legacy.current_status(now + dt.timedelta(hours=1)) == ImportRun.Status.INTERRUPTED


def test_finished_runs_keep_their_status(insurer):
    for status in (ImportRun.Status.SUCCEEDED, ImportRun.Status.FAILED, ImportRun.Status.REFUSED):
        run = running_run(insurer, status=status, host=import_runs.this_host(), pid=dead_pid())
        assert run.current_status() == status


def test_the_done_mark_is_committed_with_the_merge(insurer, rows_for, rights_file, tmp_path, monkeypatch):
    """The process dies after the commit, before it writes the rest of its record: the run says done."""

    real_save = ImportRun.save

    def killed_at_the_final_save(self, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise KeyboardInterrupt  # stands for the end of the process: nothing after this point runs
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(ImportRun, "save", killed_at_the_final_save)
    with pytest.raises(KeyboardInterrupt):
        run_import(rights_file(rows_for(12)), insurer, tmp_path)
    [run] = ImportRun.objects.all()
    assert run.status == ImportRun.Status.SUCCEEDED and run.current_status() == ImportRun.Status.SUCCEEDED
    assert run.counts["created"] == 12 and run.finished_at is not None and len(run.file_sha256) == 64
    assert Beneficiary.objects.filter(contract__insurer=insurer).count() == 12


def test_no_done_mark_without_the_merge(insurer, rows_for, rights_file, tmp_path, monkeypatch):
    """A failure inside the transaction (after the mark was written) takes the mark away with the merge."""

    def commit_fails(*args, **kwargs):
        raise rights_import.DatabaseError("deferred constraint failed at commit")

    real = rights_import._mark_done_in_transaction

    def mark_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        commit_fails()

    monkeypatch.setattr(rights_import, "_mark_done_in_transaction", mark_then_fail)
    with pytest.raises(rights_import.DatabaseError):
        run_import(rights_file(rows_for(5)), insurer, tmp_path)
    [run] = ImportRun.objects.all()
    assert run.status == ImportRun.Status.FAILED
    assert not Beneficiary.objects.exists()


def test_a_dry_run_is_never_marked_done(insurer, rows_for, rights_file, tmp_path):
    run, _summary = run_import(rights_file(rows_for(5)), insurer, tmp_path, dry_run=True)
    assert ImportRun.objects.get(pk=run.pk).status == ImportRun.Status.DRY_RUN


def test_the_history_command_shows_interrupted_runs(insurer):
    gone = running_run(insurer, host=import_runs.this_host(), pid=dead_pid())
    alive = running_run(insurer, **import_runs.process_fields())
    lines = {line.split()[0]: line for line in history("--insurer", insurer.amc_number).splitlines()[1:]}
    assert " interrupted " in lines[str(gone.pk)]
    assert " running " in lines[str(alive.pk)]


def test_the_portal_history_shows_interrupted_runs(client, cast):
    insurer = cast.insurer.insurer
    gone = running_run(insurer, host=import_runs.this_host(), pid=dead_pid())
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    listing = client.get("/assureur/imports/").content.decode()
    assert 'class="status-interrupted">Interrompu<' in listing
    assert "status-running" not in listing
    detail = unescape(client.get(f"/assureur/imports/{gone.pk}/").content.decode())
    assert "Interrompu" in detail and "rien n'a été modifié dans le registre" in detail


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_is_written_while_the_import_runs(insurer, settings):
    settings.REMPART_IMPORT_HEARTBEAT_SECONDS = 0.05
    run = running_run(insurer, **import_runs.process_fields())
    with import_runs.Heartbeat(run) as heartbeat:
        if connection.vendor != "postgresql":
            assert heartbeat._thread is None  # SQLite: one host, the process lookup is exact
            return
        deadline = time.monotonic() + 10
        while ImportRun.objects.get(pk=run.pk).heartbeat_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
    first = ImportRun.objects.get(pk=run.pk).heartbeat_at
    assert first is not None
    time.sleep(0.2)
    assert ImportRun.objects.get(pk=run.pk).heartbeat_at == first  # stopped with the import
