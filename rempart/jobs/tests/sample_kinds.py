"""Job kinds for the jobs app's own tests (imported by the tests, and by a test worker through
REMPART_JOBS_EXTRA_MODULES). They touch a table of the app itself (WorkerBeat) to show what a rollback keeps."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.db import OperationalError
from django.utils import timezone

from rempart.jobs.kinds import JobFailure, job_kind
from rempart.jobs.models import WorkerBeat


def _mark(name: str) -> None:
    now = timezone.now()
    WorkerBeat.objects.create(worker_id=name, host="test", pid=0, backend="test", started_at=now, seen_at=now)


@job_kind("tests.count", label="Test: count")
def count(ctx, n: int = 3, mark: str = "") -> dict:
    for i in range(n):
        ctx.progress(i + 1, n, "lignes")
    if mark:
        _mark(mark)
    return {"counted": n}


@job_kind("tests.refuse", label="Test: refuse")
def refuse(ctx, mark: str = "") -> None:
    if mark:
        _mark(mark)  # rolled back with the job
    raise JobFailure("bad_file", "Fichier illisible : ligne 3, colonne nir.")


@job_kind("tests.flaky", label="Test: flaky", max_attempts=3)
def flaky(ctx, fail_times: int = 1, mark: str = "") -> str:
    if ctx.attempt <= fail_times:
        if mark:
            _mark(f"{mark}-{ctx.attempt}")  # rolled back: the attempt left nothing
        raise OperationalError("server closed the connection unexpectedly")
    if mark:
        _mark(mark)
    return "ok"


@job_kind("tests.bug", label="Test: bug")
def bug(ctx) -> None:
    raise KeyError("285057512345623")  # a NIR-shaped message must not reach the page or the logs


@job_kind("tests.slow", label="Test: slow", max_attempts=2)
def slow(ctx, seconds: float = 30.0, mark: str = "", flag: str = "") -> str:
    """Sleeps; a test kills its worker meanwhile. The flag file says the first attempt started."""
    if mark:
        _mark(f"{mark}-attempt-{ctx.attempt}")
    if flag and ctx.attempt == 1:
        Path(flag).write_text(str(os.getpid()))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ctx.progress(int(time.monotonic()), None, "")
            time.sleep(0.1)
    return f"attempt {ctx.attempt}"
