"""Real worker processes: the database queue, a worker killed mid-job, and RQ on Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from rempart.jobs import queue
from rempart.jobs.models import Job, WorkerBeat
from rempart.jobs.tests import sample_kinds  # noqa: F401
from rempart.testing import child_database_url

REPO = Path(__file__).resolve().parents[3]


def child_env(**extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "REMPART_VAR_DIR": str(settings.VAR_DIR),
        "REMPART_JOBS_DIR": settings.REMPART_JOBS_DIR,
        "DJANGO_SETTINGS_MODULE": "rempart.settings",
        "REMPART_JOBS_EXTRA_MODULES": "rempart.jobs.tests.sample_kinds",
        "REMPART_JOB_HEARTBEAT_SECONDS": "0.5",
        "REMPART_JOB_RETRY_SECONDS": "0",
        "REMPART_SCHEDULE_DISABLED": "ledger-anchor,ledger-verify,ledger-partitions,billing-prepare,payments-run",
    }
    env.pop("REMPART_JOBS_EAGER", None)
    env.update(extra)
    return env


def worker(*args: str, env: dict, quiet: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rempart.cli", "worker", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_what_the_database_queue_holds(settings):
    settings.REMPART_JOBS_EAGER = False
    with transaction.atomic():
        job = queue.enqueue("tests.count", {"n": 5, "mark": "by-worker"})
    call_command("worker", "--batch", "--no-scheduler")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result == {"counted": 5}
    assert job.worker.endswith(f":{os.getpid()}")
    assert not WorkerBeat.objects.exclude(worker_id="by-worker").exists()  # the worker signed off


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_rolled_back_with_its_request_leaves_no_job(settings):
    from django_tasks_db.models import DBTaskResult

    settings.REMPART_JOBS_EAGER = False
    with pytest.raises(RuntimeError), transaction.atomic():
        queue.enqueue("tests.count", {"n": 1})
        raise RuntimeError("the request failed after enqueueing")
    assert not Job.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_job_leaves_nothing_half_done_and_the_job_is_retried(settings, tmp_path):
    settings.REMPART_JOBS_EAGER = False
    flag = tmp_path / "started"
    with transaction.atomic():
        job = queue.enqueue("tests.slow", {"seconds": 60, "mark": "slow", "flag": str(flag)})
    env = child_env()
    first = worker("--no-scheduler", env=env, quiet=True)
    try:
        wait_for(flag.exists, 60, "the first attempt to start")
        wait_for(
            lambda: Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).exists(), 10, "the job to run"
        )
        os.kill(first.pid, signal.SIGKILL)  # no goodbye: no handler runs, no row is written
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # what the dead worker left
    second = worker("--batch", "--no-scheduler", env=env)
    output, _ = second.communicate(timeout=120)
    job.refresh_from_db()
    assert second.returncode == 0, output.decode(errors="replace")[-2000:]
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2, (job.status, job.failure_code)
    assert job.retried_from_failure == "worker_lost" and job.result == "attempt 2"
    marks = set(WorkerBeat.objects.filter(worker_id__startswith="slow").values_list("worker_id", flat=True))
    assert marks == {"slow-attempt-2"}  # the killed attempt's write went with its transaction


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


ENQUEUE = """
import django, sys
django.setup()
from django.db import transaction
from rempart.jobs import queue
with transaction.atomic():
    job = queue.enqueue("tests.count", {"n": 3})
print(job.pk)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rq_on_redis_carries_jobs_to_a_worker():
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    db = 13
    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    client.flushdb()
    env = child_env(REMPART_TASKS_BACKEND="rq", REMPART_RQ_URL=f"redis://127.0.0.1:6379/{db}")
    try:
        enqueued = subprocess.run(
            [sys.executable, "-c", ENQUEUE], cwd=REPO, env=env, capture_output=True, timeout=60, check=False
        )
        assert enqueued.returncode == 0, enqueued.stderr.decode(errors="replace")[-2000:]
        job_id = enqueued.stdout.decode().strip().splitlines()[-1]
        assert Job.objects.get(pk=job_id).enqueued_at is not None  # handed to RQ after the commit
        assert client.keys("rq:queue:default")
        done = worker("--batch", "--no-scheduler", env=env)
        output, _ = done.communicate(timeout=120)
        assert done.returncode == 0, output.decode(errors="replace")[-2000:]
        job = Job.objects.get(pk=job_id)
        assert job.status == Job.Status.SUCCEEDED and job.result == {"counted": 3}, output.decode()[-3000:]
    finally:
        client.flushdb()
