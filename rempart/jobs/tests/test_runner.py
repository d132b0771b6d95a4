"""The jobs core: enqueue, run, fail plainly, retry what is transient, fence stale attempts, sweep the lost."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys

import pytest
from django.utils import timezone

from rempart.jobs import queue, runner
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job, WorkerBeat
from rempart.jobs.params import UnsafeParams
from rempart.jobs.tests import sample_kinds  # noqa: F401  (registers the test kinds)
from rempart.lib.processes import process_token, this_host

pytestmark = pytest.mark.django_db


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_runs_to_its_result_with_its_progress():
    job = queue.enqueue("tests.count", {"n": 4, "mark": "done"})
    assert job.status == Job.Status.QUEUED and job.attempts == 0
    [(job_id, status)] = run_waiting()
    job.refresh_from_db()
    assert (job_id, status) == (str(job.pk), "succeeded")
    assert job.status == Job.Status.SUCCEEDED and job.result == {"counted": 4}
    assert (job.progress_done, job.progress_total, job.attempts) == (4, 4, 1)
    assert job.finished_at is not None and WorkerBeat.objects.filter(worker_id="done").exists()


def test_the_same_key_is_the_same_job():
    first = queue.enqueue("tests.count", {"n": 1}, key="upload:42")
    second = queue.enqueue("tests.count", {"n": 9}, key="upload:42")
    assert first.pk == second.pk and Job.objects.count() == 1
    run_waiting()
    assert Job.objects.get().result == {"counted": 1}


@pytest.mark.parametrize(
    "params",
    [
        {"nir": "285057512345623"},
        {"note": "FR7630006000011234567890189"},
        {"ids": ["1", "2 85 05 75 123 456 23"]},
        {"text": "x" * 201},
        {"nested": {"a": 1}},
        {"Bad-Name": 1},
        {"ids": list(range(51))},
    ],
)
def test_personal_data_and_odd_shapes_never_become_job_parameters(params):
    with pytest.raises(UnsafeParams):
        queue.enqueue("tests.count", params)
    assert not Job.objects.exists()


def test_an_unknown_kind_is_refused_at_enqueue():
    with pytest.raises(LookupError):
        queue.enqueue("tests.nothing")


def test_a_plain_failure_is_shown_with_its_reason_and_leaves_nothing():
    job = queue.enqueue("tests.refuse", {"mark": "half-done"})
    run_waiting()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.attempts == 1  # not retried: it would fail the same way
    assert job.failure_code == "bad_file" and "ligne 3" in job.failure_message
    assert not WorkerBeat.objects.filter(worker_id="half-done").exists()  # the job's transaction rolled back


def test_a_transient_error_is_retried_later_and_the_failed_attempt_left_nothing():
    job = queue.enqueue("tests.flaky", {"fail_times": 1, "mark": "flaky"})
    run_waiting()
    job.refresh_from_db()
    assert job.status == Job.Status.RETRYING and job.attempts == 1
    assert job.retried_from_failure == "OperationalError" and job.run_after > timezone.now()
    assert run_waiting() == []  # not before its time
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - dt.timedelta(seconds=1))
    run_waiting()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    assert set(WorkerBeat.objects.values_list("worker_id", flat=True)) == {"flaky"}


def test_retries_stop_at_the_kind_s_maximum():
    job = queue.enqueue("tests.flaky", {"fail_times": 10})
    for _ in range(5):
        Job.objects.filter(pk=job.pk).update(run_after=None)
        run_waiting()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.attempts == 3
    assert job.failure_code == "OperationalError" and "3" in job.failure_message


def test_a_bug_fails_the_job_without_leaking_its_message(caplog):
    caplog.set_level(logging.ERROR, logger="rempart.jobs")
    job = queue.enqueue("tests.bug")
    run_waiting()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.failure_code == "error"
    assert "KeyError" in job.failure_message and "285057512345623" not in job.failure_message
    assert caplog.records and all("285057512345623" not in r.getMessage() for r in caplog.records)


def test_a_duplicate_delivery_does_not_run_a_job_twice():
    job = queue.enqueue("tests.count", {"n": 1})
    assert runner.execute(str(job.pk)) == "succeeded"
    assert runner.execute(str(job.pk)) == "skipped"
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_a_stale_attempt_cannot_overwrite_the_current_one():
    job = queue.enqueue("tests.count", {"n": 1})
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=2)
    stale = Job.objects.get(pk=job.pk)
    stale.attempts = 1  # what the first, presumed-dead attempt believed
    assert runner._finish(stale, Job.Status.SUCCEEDED, result={"x": 1}) == "superseded"
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING


def _running(**fields) -> Job:
    job = queue.enqueue("tests.slow", {})
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempts=1, started_at=timezone.now(), **fields
    )
    return Job.objects.get(pk=job.pk)


def test_the_sweeper_retries_a_job_whose_worker_died_on_this_host():
    job = _running(worker_host=this_host(), worker_pid=dead_pid(), worker_token="")
    alive = _running(worker_host=this_host(), worker_pid=os.getpid(), worker_token=process_token())
    counts = runner.sweep()
    job.refresh_from_db()
    alive.refresh_from_db()
    assert counts["lost"] == 1
    assert job.status == Job.Status.RETRYING and job.retried_from_failure == runner.LOST
    assert alive.status == Job.Status.RUNNING


def test_the_sweeper_judges_other_hosts_by_their_heartbeat(settings):
    settings.REMPART_JOB_STALE_SECONDS = 120
    now = timezone.now()
    fresh = _running(worker_host="web-2", worker_pid=1, heartbeat_at=now - dt.timedelta(seconds=30))
    stale = _running(worker_host="web-2", worker_pid=1, heartbeat_at=now - dt.timedelta(minutes=10))
    runner.sweep(now)
    assert Job.objects.get(pk=fresh.pk).status == Job.Status.RUNNING
    assert Job.objects.get(pk=stale.pk).status == Job.Status.RETRYING


def test_a_job_lost_too_often_fails_with_the_reason():
    job = _running(worker_host=this_host(), worker_pid=dead_pid())
    Job.objects.filter(pk=job.pk).update(attempts=2)  # tests.slow allows 2
    runner.sweep()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.failure_code == runner.LOST


def test_the_sweeper_hands_forgotten_jobs_to_the_backend_again(settings):
    from django_tasks_db.models import DBTaskResult

    settings.REMPART_JOB_REQUEUE_SECONDS = 60
    settings.REMPART_JOBS_EAGER = False  # the real hand-over: a task row for a worker
    job = queue.enqueue("tests.count", {"n": 1})  # its on-commit hand-over never ran (a test transaction)
    assert not DBTaskResult.objects.exists()
    runner.sweep()
    assert not DBTaskResult.objects.exists()  # too young: its hand-over may still be coming
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    runner.sweep()
    [task] = DBTaskResult.objects.all()
    assert task.args_kwargs["args"] == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).enqueued_at is not None


def test_cancel_and_retry_only_apply_where_they_make_sense():
    waiting = queue.enqueue("tests.count", {"n": 1})
    assert queue.cancel(waiting) and Job.objects.get(pk=waiting.pk).status == Job.Status.CANCELLED
    assert not queue.retry(Job.objects.get(pk=waiting.pk))
    failed = queue.enqueue("tests.refuse")
    run_waiting()
    failed.refresh_from_db()
    assert not queue.cancel(failed)
    assert queue.retry(failed)
    failed.refresh_from_db()
    assert (
        failed.status == Job.Status.RETRYING
        and failed.attempts == 0
        and failed.retried_from_failure == "bad_file"
    )


def test_an_outcome_is_written_once_the_database_is_back(monkeypatch):
    """The database restarts just as the job ends: the outcome waits for it instead of staying 'running'."""
    from django.db import OperationalError
    from django.db.models.query import QuerySet

    job = queue.enqueue("tests.count", {"n": 2})
    real_update = QuerySet.update
    failures = []

    def update_fails_once_at_the_end(self, **fields):
        if fields.get("status") == Job.Status.SUCCEEDED and not failures:
            failures.append(1)
            raise OperationalError("terminating connection due to administrator command")
        return real_update(self, **fields)

    monkeypatch.setattr(QuerySet, "update", update_fails_once_at_the_end)
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    assert runner.execute(str(job.pk)) == Job.Status.SUCCEEDED
    assert failures and Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED


def test_on_postgresql_a_silent_job_of_a_live_process_is_taken_back(settings):
    from django.db import connection

    settings.REMPART_JOB_STALE_SECONDS = 120
    old = timezone.now() - dt.timedelta(minutes=10)
    job = _running(
        worker_host=this_host(), worker_pid=os.getpid(), worker_token=process_token(), heartbeat_at=old
    )
    runner.sweep()
    expected = Job.Status.RETRYING if connection.vendor == "postgresql" else Job.Status.RUNNING
    assert Job.objects.get(pk=job.pk).status == expected
