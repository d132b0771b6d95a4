"""The job worker's own /metrics: closed like the web servers', and showing what its jobs really counted."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request

import pytest
from django.db import transaction
from prometheus_client.parser import text_string_to_metric_families

from rempart.jobs import queue
from rempart.jobs.models import Job
from rempart.jobs.tests import sample_kinds  # noqa: F401 - registers the test kinds
from rempart.jobs.tests.test_worker import child_env, wait_for, worker
from rempart.lib import metrics
from rempart.ops import worker_metrics

TOKEN = "w" * 40
NIR = "285057512345623"  # what tests.bug raises


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, token: str | None = None, method: str = "GET", headers=None) -> tuple[int, bytes]:
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def families(text: str) -> dict[str, list]:
    return {fam.name: fam.samples for fam in text_string_to_metric_families(text)}


@pytest.fixture
def listener(settings):
    settings.REMPART_METRICS_TOKEN = TOKEN
    settings.REMPART_METRICS_ALLOW_NETS = []
    server = worker_metrics.start(f"127.0.0.1:{free_port()}")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_token_opens_the_workers_metrics_without_the_job_table(listener):
    metrics.record_import("rights", 3, 1)
    status, body = fetch(f"{listener}/metrics", TOKEN)
    assert status == 200
    found = families(body.decode())
    assert "rempart_import_rows" in found and "rempart_job_runs" in found
    assert "rempart_jobs" not in found  # the web servers show the job table, once


@pytest.mark.parametrize(
    ("path", "token", "method"),
    [
        ("/metrics", None, "GET"),
        ("/metrics", "wrong-" * 8, "GET"),
        ("/metrics", TOKEN[:-1], "GET"),
        ("/metrics?token=" + TOKEN, None, "GET"),
        ("/metrics", TOKEN, "POST"),
        ("/", TOKEN, "GET"),
        ("/metrics/", TOKEN, "GET"),
    ],
    ids=["none", "wrong", "prefix", "query", "post", "root", "slash"],
)
def test_anything_else_is_a_bare_404(listener, path, token, method):
    status, body = fetch(f"{listener}{path}", token, method)
    assert status == 404 and b"rempart_" not in body


def test_an_allowed_network_opens_it_and_a_forwarded_header_does_not(listener, settings):
    settings.REMPART_METRICS_ALLOW_NETS = ["10.0.0.0/8"]
    assert (
        fetch(f"{listener}/metrics", headers={"X-Forwarded-For": "10.1.2.3"})[0] == 404
    )  # no proxy is believed here
    settings.REMPART_METRICS_ALLOW_NETS = ["127.0.0.0/8"]
    assert fetch(f"{listener}/metrics")[0] == 200


def test_head_answers_without_a_body(listener):
    assert fetch(f"{listener}/metrics", TOKEN, "HEAD") == (200, b"")


def test_a_silent_client_does_not_hold_the_listener(listener):
    host, port = listener.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))):  # connects, sends nothing
        started = time.monotonic()
        assert fetch(f"{listener}/metrics", TOKEN)[0] == 200
    assert time.monotonic() - started < worker_metrics.REQUEST_TIMEOUT_SECONDS / 2


def test_the_setting_decides_and_a_bad_one_is_not_fatal(settings, caplog):
    settings.REMPART_WORKER_METRICS_BIND = ""
    assert worker_metrics.start_from_settings() is None
    caplog.set_level(logging.WARNING, logger="rempart.ops")
    for bad in ("no-port", "127.0.0.1:99999", "127.0.0.1:http"):
        settings.REMPART_WORKER_METRICS_BIND = bad
        assert worker_metrics.start_from_settings() is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.REMPART_WORKER_METRICS_BIND = f"127.0.0.1:{taken.getsockname()[1]}"
        assert worker_metrics.start_from_settings() is None
    assert sum("worker metrics not served" in r.getMessage() for r in caplog.records) == 4


def test_parse_bind_reads_ipv4_and_ipv6():
    assert worker_metrics.parse_bind("10.0.3.7:9108") == ("10.0.3.7", 9108)
    assert worker_metrics.parse_bind("[::1]:9108") == ("::1", 9108)


# --- a real worker process: its jobs' counts on its own /metrics, and its job lines


def _sample(found: dict, family: str, name: str, **labels) -> float:
    return sum(
        s.value
        for s in found.get(family, [])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_shows_its_jobs_counts_and_logs_them_without_a_nir(settings, tmp_path):
    settings.REMPART_JOBS_EAGER = False
    port = free_port()
    env = child_env(
        REMPART_WORKER_METRICS_BIND=f"127.0.0.1:{port}",
        REMPART_METRICS_TOKEN=TOKEN,
        REMPART_LOG_FORMAT="json",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with transaction.atomic():
        done = queue.enqueue("tests.count", {"n": 2})
        failed = queue.enqueue("tests.bug")  # raises KeyError("285057512345623")
    process = worker("--no-scheduler", "--interval", "0.2", env=env)
    try:
        wait_for(
            lambda: (
                set(Job.objects.filter(pk__in=[done.pk, failed.pk]).values_list("status", flat=True))
                == {Job.Status.SUCCEEDED, Job.Status.FAILED}
            ),
            60,
            "both jobs to finish",
        )
        status, body = fetch(f"http://127.0.0.1:{port}/metrics", TOKEN)
        assert status == 200
        found = families(body.decode())
        runs = "rempart_job_runs_total"
        assert _sample(found, "rempart_job_runs", runs, kind="tests.count", status="succeeded") == 1
        assert _sample(found, "rempart_job_runs", runs, kind="tests.bug", status="failed") == 1
        assert _sample(found, "rempart_job_failures", "rempart_job_failures_total", kind="tests.bug") == 1
        assert _sample(found, "rempart_job_duration_seconds", "rempart_job_duration_seconds_count") == 2
        assert fetch(f"http://127.0.0.1:{port}/metrics")[0] == 404
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    jobs = {line["job_kind"]: line for line in lines if line["logger"] == "rempart.jobs.run"}
    assert jobs["tests.count"]["job_status"] == "succeeded" and jobs["tests.count"]["level"] == "INFO"
    assert jobs["tests.bug"]["job_status"] == "failed" and jobs["tests.bug"]["level"] == "WARNING"
    assert jobs["tests.bug"]["job_id"] == str(failed.pk) and jobs["tests.bug"]["attempts"] == 1
    assert any("KeyError" in line["message"] for line in lines if line["logger"] == "rempart.jobs")
    assert NIR not in output and "[NIR]" in output  # the traceback was logged, masked


@pytest.mark.django_db(transaction=True)
def test_the_worker_command_serves_and_then_frees_its_port(settings, caplog):
    """``rempart worker --batch`` in this process: the listener starts, and the port is free once it returns."""
    from django.core.management import call_command

    settings.REMPART_JOBS_EAGER = False
    port = free_port()
    settings.REMPART_WORKER_METRICS_BIND = f"127.0.0.1:{port}"
    caplog.set_level(logging.INFO, logger="rempart.ops")
    call_command("worker", "--batch", "--no-scheduler")
    assert any(f"worker metrics on 127.0.0.1:{port}" in r.getMessage() for r in caplog.records)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # raises if the listener were still there
