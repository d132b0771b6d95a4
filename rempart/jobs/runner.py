"""Running one job: claim it, run it with a heartbeat and progress, record how it ended.

Every state change is a conditional UPDATE on the job's row (``WHERE status = … AND attempts = …``), so a
duplicate delivery from the queue, or a run that was declared lost and retried elsewhere, can never
overwrite what the current attempt recorded (the attempt number is the fencing token).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_tasks import task

from rempart.jobs.kinds import JobFailure, JobKind, get_kind
from rempart.jobs.models import Job
from rempart.lib.processes import process_alive, process_token, this_host
from rempart.lib.redact import redact

logger = logging.getLogger("rempart.jobs")

# Worth another attempt: the database or the network was away for a moment.

LOST = "worker_lost"


def worker_name() -> str:
    return f"{this_host()}:{os.getpid()}"


@dataclass
class JobContext:
    """What a running job sees: its parameters' job, and a way to say how far it is."""

    job_id: str
    attempt: int
    _progress: _Progress

    def progress(self, done: int, total: int | None = None, note: str = "") -> None:
        """Note progress (cheap: kept in memory, written by the heartbeat at most once a second)."""
        self._progress.set(done, total, note)


class _Progress:
    """The latest progress of a running job, written outside the job's own transaction.

    PostgreSQL: a thread with its own connection updates the row (seen at once by the pages). SQLite:
    a second writer would wait on the job's write lock, so progress goes to a small file beside the
    database (one host by construction), which the status page reads while the job runs.
    """

    def __init__(self, job_id: str, attempt: int) -> None:
        self.job_id, self.attempt = job_id, attempt
        self.done, self.total, self.note = 0, None, ""
        self._changed = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set(self, done: int, total: int | None, note: str) -> None:
        with self._lock:
            self.done, self.note = int(done), str(note)[:200]
            if total is not None:
                self.total = int(total)
            self._changed = True
        if connection.vendor != "postgresql":
            self._write_file(force=False)

    # -- SQLite: a file
    _last_file_write = 0.0

    def _write_file(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_file_write < 0.5:
            return
        self._last_file_write = now
        path = progress_file(self.job_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"done": self.done, "total": self.total, "note": self.note}))
            temporary.replace(path)
        except OSError:
            pass  # progress is a courtesy; the job goes on

    # -- PostgreSQL: a heartbeat thread
    def __enter__(self) -> _Progress:
        if connection.vendor == "postgresql":
            self._thread = threading.Thread(target=self._beat, name=f"job-{self.job_id}-beat", daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        from django.db import connections

        interval = max(0.2, min(1.0, settings.REMPART_JOB_HEARTBEAT_SECONDS))
        beat_every = settings.REMPART_JOB_HEARTBEAT_SECONDS
        last_beat = 0.0
        try:
            while not self._stop.wait(interval):
                now = time.monotonic()
                with self._lock:
                    changed, self._changed = self._changed, False
                    fields = {
                        "progress_done": self.done,
                        "progress_total": self.total,
                        "progress_note": self.note,
                    }
                if not changed and now - last_beat < beat_every:
                    continue
                try:
                    Job.objects.filter(
                        pk=self.job_id, status=Job.Status.RUNNING, attempts=self.attempt
                    ).update(heartbeat_at=timezone.now(), **fields)
                    last_beat = now
                except DatabaseError:
                    pass  # the next beat tries again
        finally:
            connections.close_all()  # this thread's connection only

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            progress_file(self.job_id).unlink(missing_ok=True)
        except OSError:
            pass


def progress_file(job_id: str) -> Path:
    return Path(settings.REMPART_JOBS_DIR) / "progress" / f"{job_id}.json"


def live_progress(job: Job) -> tuple[int, int | None, str]:
    """A running job's progress: from its row (PostgreSQL) or its progress file (SQLite)."""
    if job.status == Job.Status.RUNNING and connection.vendor != "postgresql":
        try:
            data = json.loads(progress_file(str(job.pk)).read_text())
            return int(data["done"]), data.get("total"), str(data.get("note", ""))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return job.progress_done, job.progress_total, job.progress_note


def execute(job_id: str) -> str:
    """Run the job ``job_id`` if it is waiting; return its status afterwards (for the backend's record)."""
    claimed = _claim(job_id)
    if claimed is None:
        return "skipped"
    job, kind = claimed
    started = time.monotonic()
    if kind is None:
        status = _finish(job, Job.Status.FAILED, code="unknown_kind", message=_("Type de tâche inconnu."))
        _log(job, status, started)
        return Job.Status.FAILED
    progress = _Progress(str(job.pk), job.attempts)
    context = JobContext(job_id=str(job.pk), attempt=job.attempts, _progress=progress)
    try:
        with progress:
            if kind.atomic:
                with transaction.atomic():
                    result = kind.func(context, **job.params)
            else:
                result = kind.func(context, **job.params)
    except JobFailure as failure:
        outcome = (_finish, job, Job.Status.FAILED)
        details = {"code": failure.code, "message": str(failure.message), "progress": progress}
    except kind.retry_on as error:
        outcome = (_retry_or_fail, job, kind)
        details = {"code": type(error).__name__, "error": error, "progress": progress}
    except Exception as error:  # a bug: recorded, logged (redacted), not retried (it would fail the same way)
        logger.error(
            "job %s (%s) failed: %s", job.pk, job.kind, redact("".join(traceback.format_exception(error)))
        )
        outcome = (_finish, job, Job.Status.FAILED)
        message = _("Erreur interne (%(kind)s) ; l'équipe d'exploitation a le détail dans les journaux.")
        details = {
            "code": "error",
            "message": str(message) % {"kind": type(error).__name__},
            "progress": progress,
        }
    else:
        outcome = (_finish, job, Job.Status.SUCCEEDED)
        details = {"result": _json_safe(result), "progress": progress}
    status = _record(*outcome, **details)
    _log(job, status, started)
    return status


def _record(action, *args, **kwargs) -> str:
    """Write how an attempt ended, waiting out a database restart (about a minute) rather than leaving the row
    saying ``running``; if the database stays away, the sweeper's heartbeat rule takes the job back later."""
    for wait in (0, 1, 2, 4, 8, 15, 30):
        time.sleep(wait)
        try:
            return action(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()  # the next try opens a fresh connection
    logger.error("job %s: outcome not recorded, the database stayed unavailable", args[0].pk)
    return "unrecorded"


def _claim(job_id: str) -> tuple[Job, JobKind | None] | None:
    now = timezone.now()
    taken = (
        Job.objects.filter(pk=job_id, status__in=Job.WAITING)
        .filter(_due(now))
        .update(
            status=Job.Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            worker=worker_name(),
            worker_host=this_host(),
            worker_pid=os.getpid(),
            worker_token=process_token(),
        )
    )
    if not taken:
        return None
    job = Job.objects.get(pk=job_id)
    return job, get_kind(job.kind)


def _due(now: dt.datetime) -> Q:
    return Q(run_after__isnull=True) | Q(run_after__lte=now)


def _finish(
    job: Job,
    status: str,
    *,
    code: str = "",
    message: str = "",
    result: Any = None,
    progress: _Progress | None = None,
) -> str:
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": timezone.now(),
        "failure_code": code[:60],
        "failure_message": redact(str(message))[:500],
    }
    if result is not None:
        fields["result"] = result
    if progress is not None:
        fields.update(progress_done=progress.done, progress_total=progress.total, progress_note=progress.note)
        if status == Job.Status.SUCCEEDED and progress.total:
            fields["progress_done"] = progress.total
    updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(**fields)
    return status if updated else "superseded"


def _retry_or_fail(job: Job, kind: JobKind, *, code: str, error: BaseException | None, progress=None) -> str:
    if error is not None:
        logger.warning("job %s (%s) attempt %s: %s", job.pk, job.kind, job.attempts, type(error).__name__)
    if job.attempts >= kind.max_attempts:
        return _finish(
            job,
            Job.Status.FAILED,
            code=code,
            message=str(_("Échec après %(n)s tentatives (%(code)s).")) % {"n": job.attempts, "code": code},
            progress=progress,
        )
    delay = min(300, settings.REMPART_JOB_RETRY_SECONDS * 2 ** (job.attempts - 1))
    run_after = timezone.now() + dt.timedelta(seconds=delay)
    updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
        status=Job.Status.RETRYING, run_after=run_after, retried_from_failure=code[:60], worker=""
    )
    if updated:
        hand_over(job.pk, run_after=run_after)
        return Job.Status.RETRYING
    return "superseded"


@task(queue_name="default")
def run_job(job_id: str) -> str:
    """The one task the backend knows: run a job by id. Everything else about a job lives in its row."""
    return execute(job_id)


def hand_over(job_id: object, *, run_after: dt.datetime | None) -> bool:
    """Give the job's id to the task backend; a failure here is not the caller's: the sweeper retries."""
    if settings.REMPART_JOBS_EAGER and run_after is None:
        execute(str(job_id))  # the test suite's browser tests: no worker process, the job runs now
        return True
    job = Job.objects.filter(pk=job_id).values("kind").first()
    if job is None:
        return False
    kind = get_kind(job["kind"])
    task = run_job.using(queue_name=kind.queue if kind else "default", run_after=run_after)
    try:
        task.enqueue(str(job_id))
    except Exception as error:  # Redis away, the database locked: the row is still there
        logger.warning(
            "job %s not handed to the task backend (%s); the sweeper will", job_id, type(error).__name__
        )
        return False
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    return True


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """Jobs whose worker died are retried or failed; jobs the backend lost are handed over again.

    A running job is lost when its process is gone (same host: looked up exactly) or, from another host,
    when its heartbeat is older than ``REMPART_JOB_STALE_SECONDS``. A waiting job is lost when it was
    handed to the backend long ago and nobody claimed it (Redis restarted, a failed enqueue).
    """
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.REMPART_JOB_STALE_SECONDS)
    counts = {"lost": 0, "requeued": 0}
    for job in Job.objects.filter(status=Job.Status.RUNNING):
        if not _lost(job, stale):
            continue
        kind = get_kind(job.kind)
        counts["lost"] += 1
        logger.warning("job %s (%s) lost its worker %s", job.pk, job.kind, job.worker)
        if kind is None:
            status = _finish(job, Job.Status.FAILED, code="unknown_kind", message=_("Type de tâche inconnu."))
        else:
            status = _retry_or_fail(job, kind, code=LOST, error=None)
        _log(job, status, None)  # the lost attempt's line and counts (no duration: nobody timed it)
    forgotten = now - dt.timedelta(seconds=settings.REMPART_JOB_REQUEUE_SECONDS)
    waiting = Job.objects.filter(status__in=Job.WAITING).filter(_due(now))
    for job in waiting.filter(enqueued_at__lt=forgotten) | waiting.filter(enqueued_at__isnull=True):
        if job.created_at > forgotten:
            continue  # just enqueued: its on-commit hand-over may not have run yet
        counts["requeued"] += 1
        hand_over(job.pk, run_after=None)
    return counts


def _lost(job: Job, stale: dt.datetime) -> bool:
    """Lost: its process is gone (this host), or no heartbeat for too long (PostgreSQL, where a running job
    beats from a thread of its own; on SQLite, one host by construction, the process lookup is exact)."""
    if job.worker_pid and job.worker_host == this_host():
        if not process_alive(job.worker_pid, job.worker_token):
            return True
        if connection.vendor != "postgresql":
            return False
    beat = job.heartbeat_at or job.started_at
    return beat is None or beat < stale


def _json_safe(result: Any) -> Any:
    if result is None:
        return None
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        return {"value": str(result)[:200]}
    return result


def _log(job: Job, status: str, started: float | None) -> None:
    duration_ms = None if started is None else int((time.monotonic() - started) * 1000)
    try:
        from rempart.ops.request_log import log_job
    except ImportError:
        logger.info("job %s %s %s in %s ms (attempt %s)", job.kind, job.pk, status, duration_ms, job.attempts)
        return
    log_job(job.kind, str(job.pk), status, duration_ms, job.attempts)
