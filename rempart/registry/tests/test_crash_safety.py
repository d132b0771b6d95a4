"""`kill -9` in the middle of an import leaves the registry exactly as it was (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from rempart.registry import rights_format as fmt
from rempart.registry.models import ImportRun
from rempart.registry.tests.support import ADHERENT, FIRST, beneficiary_by_key, registry_state, run_import
from rempart.testing import child_database_url

BASE_ROWS = 2000
# The big file: big enough that the import takes a few seconds before it writes the registry, so the kill
# lands in the middle of the merge, whatever this machine's speed; a few of its rows are in the registry.
TARGET_SECONDS = 4
MIN_ROWS, MAX_ROWS = 50_000, 200_000
SIGNAL_TIMEOUT = 120  # seconds to wait for the child to start writing the registry


def write_big_file(path: Path, amc: str, rows: list[list[str]], copies: int) -> int:
    """The base rows (a few changed) and copies under other adherent numbers: fast to write."""
    lines = [fmt.magic_line(amc), fmt.header_line()]
    for copy in range(copies):
        prefix = f"{copy + 10:02d}"
        for number, row in enumerate(rows):
            row = list(row)
            if copy:
                row[ADHERENT] = prefix + row[ADHERENT][2:]
            elif number % 10 == 0:
                row[FIRST] = "Changé"
            lines.append(";".join(row))
    count = len(lines) - 2
    lines.append(fmt.trailer_line(count))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count


def history() -> str:
    out = io.StringIO()
    call_command("import_history", stdout=out)
    return out.getvalue()


def history_line(run: ImportRun) -> str:
    [line] = [line for line in history().splitlines() if line.split()[0] == str(run.pk)]
    return line


def child_env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "REMPART_VAR_DIR": str(settings.VAR_DIR),
        "DJANGO_SETTINGS_MODULE": "rempart.settings",
    }


def registry_writer_pid() -> int | None:
    """PostgreSQL: the backend of another session holding a write lock on the registry's tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               WHERE c.relname IN ('registry_contract', 'registry_beneficiary')
                 AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()
               LIMIT 1"""
        )
        row = cursor.fetchone()
    return row[0] if row else None


def wal_size(database: Path) -> int:
    wal = Path(f"{database}-wal")
    return wal.stat().st_size if wal.exists() else 0


def wait_for_backend_exit(pid: int) -> None:
    """PostgreSQL notices the dead client when its statement ends; end that one backend if it lingers."""
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return
            time.sleep(0.1)
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        while True:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return
            time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_import_leaves_the_registry_unchanged(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(BASE_ROWS)
    base = rights_file(rows)
    started = time.monotonic()
    run_import(base, insurer, tmp_path)
    rate = BASE_ROWS / (time.monotonic() - started)
    copies = max(MIN_ROWS, min(MAX_ROWS, int(rate * TARGET_SECONDS))) // BASE_ROWS
    big = tmp_path / "big.csv"
    count = write_big_file(big, insurer.amc_number, rows, copies)
    assert count == BASE_ROWS * copies
    before = registry_state()
    runs_before = set(ImportRun.objects.values_list("pk", flat=True))

    if connection.vendor == "sqlite":
        database = Path(connection.settings_dict["NAME"])
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal_baseline = wal_size(database)

    env = child_env()
    command = [
        sys.executable,
        "-m",
        "rempart.cli",
        "import-rights",
        str(big),
        "--insurer",
        insurer.amc_number,
    ]
    command += ["--report-dir", str(tmp_path / "killed")]
    with (tmp_path / "child.out").open("wb") as out, (tmp_path / "child.err").open("wb") as err:
        child = subprocess.Popen(  # its own process group: any worker processes die with it
            command, env=env, stdout=out, stderr=err, cwd=settings.BASE_DIR, start_new_session=True
        )
        writer, writing, started = None, False, time.monotonic()
        try:
            while time.monotonic() < started + SIGNAL_TIMEOUT and child.poll() is None:
                if connection.vendor == "sqlite":
                    # the staging table is a temporary one: the WAL grows only once the merge writes
                    writing = wal_size(database) > wal_baseline + (256 << 10)
                else:
                    writer = registry_writer_pid()
                    writing = writer is not None
                if writing:
                    break
                time.sleep(0.005)
            print(f"{count} rows, killed after {time.monotonic() - started:.1f} s")  # shown on failure
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    details = (tmp_path / "child.err").read_text(errors="replace")[-2000:]
    assert child.returncode == -signal.SIGKILL, f"the import ended before it could be killed:\n{details}"
    assert writing, "the import never started writing the registry"
    if writer is not None:
        wait_for_backend_exit(writer)

    # exactly as before, and the killed run never recorded an outcome: the history shows it interrupted
    assert registry_state() == before
    [killed] = ImportRun.objects.exclude(pk__in=runs_before)
    assert killed.status == ImportRun.Status.RUNNING
    assert killed.file_name.endswith("big.csv")
    assert killed.pid == child.pid
    assert killed.current_status() == ImportRun.Status.INTERRUPTED
    assert " interrupted " in history_line(killed)

    # nothing is left locked or half-done: the next import runs normally
    _run, summary = run_import(base, insurer, tmp_path)
    assert (summary.unchanged, summary.created, summary.updated) == (BASE_ROWS, 0, 0)
    assert registry_state() == before


# The child imports, commits, and is killed (by itself, SIGKILL) when it goes to write its run's final record.
KILLED_AFTER_COMMIT = """
import os, signal, sys
import django
django.setup()
from django.core.management import call_command
from rempart.registry.models import ImportRun
real_save = ImportRun.save
def save(self, *args, **kwargs):
    if kwargs.get("update_fields"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(self, *args, **kwargs)
ImportRun.save = save
call_command("import_rights", sys.argv[1], "--insurer", sys.argv[2], "--report-dir", sys.argv[3])
"""


@pytest.mark.django_db(transaction=True)
def test_kill_9_after_the_commit_leaves_a_run_that_says_done(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(300)
    path = rights_file(rows)
    runs_before = set(ImportRun.objects.values_list("pk", flat=True))
    command = [sys.executable, "-c", KILLED_AFTER_COMMIT, str(path), insurer.amc_number, str(tmp_path / "k")]
    child = subprocess.run(command, env=child_env(), cwd=settings.BASE_DIR, capture_output=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode(errors="replace")[-2000:]

    assert len(beneficiary_by_key(insurer)) == 300  # the merge went through
    [run] = ImportRun.objects.exclude(pk__in=runs_before)
    assert not (tmp_path / "k" / "summary.txt").exists()  # the process died before its last writes
    assert run.status == ImportRun.Status.SUCCEEDED and run.current_status() == ImportRun.Status.SUCCEEDED
    assert run.counts["created"] == 300 and run.finished_at is not None
    assert " succeeded " in history_line(run)
