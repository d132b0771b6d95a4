"""Structured logs: one JSON line per request and per job, a request id everywhere, never a NIR, IBAN or name."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from rempart.accounts import tokens
from rempart.jobs.kinds import JobFailure, job_kind
from rempart.lib import metrics
from rempart.lib.redact import RedactingFilter
from rempart.ops import request_log
from rempart.rights.tests.conftest import family  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[3]
NIR = "185057512345623"
IBAN = "FR7630006000011234567890189"
HEX_ID = re.compile(r"[0-9a-f]{32}")

OURS = CollectorRegistry()
for _metric in vars(metrics).values():
    if isinstance(_metric, MetricWrapperBase):
        OURS.register(_metric)


@pytest.fixture
def json_lines():
    """Every record of the process as the production handler writes it (JSON, redacted, with its request id)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.addFilter(request_log.RequestIdFilter())
    handler.setFormatter(request_log.JsonFormatter())
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger("django")]
    for logger in loggers:
        logger.addHandler(handler)

    def read() -> list[dict]:
        text = stream.getvalue()
        lines = [json.loads(line) for line in text.splitlines()]
        assert len(lines) == text.count("\n")  # one record, one line
        return lines

    read.text = lambda: stream.getvalue()
    yield read
    for logger in loggers:
        logger.removeHandler(handler)


def requests(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "rempart.request"]


# --- the request id


def test_every_response_gets_a_request_id(client, db):
    for path in ("/", "/accounts/login/", "/no-such-page", "/api/v1/no-such-thing", "/api/v1/rights/check"):
        response = client.get(path)
        assert HEX_ID.fullmatch(response["X-Request-ID"]), path
    assert client.get("/api/v1/no-such-thing")["Content-Type"] == "application/json"  # the API's JSON error


def test_a_well_formed_incoming_request_id_is_kept(client, db):
    for incoming in ("0f8fad5b-d9cb-469f-a165-70867728950e", "lb.7F3A.2026-12-02_001"):
        assert client.get("/healthz", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "abc\r\nSet-Cookie: sessionid=stolen",
        "abc\ninjected",
        "x" * 65,
        '"quoted-request-id"',
        "it's-a-request-id",
        "<script>alert(1)</script>",
        "short",
        "id with spaces in it",
        NIR,  # an id that is a NIR would write one into every line
        IBAN,
        "",
    ],
    ids=[
        "crlf",
        "newline",
        "too-long",
        "quotes",
        "apostrophe",
        "html",
        "too-short",
        "spaces",
        "nir",
        "iban",
        "empty",
    ],
)
def test_a_malformed_incoming_request_id_is_replaced(client, db, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert HEX_ID.fullmatch(response["X-Request-ID"]) and response["X-Request-ID"] != incoming


@pytest.mark.urls("rempart.ops.tests.log_urls")
def test_records_made_during_a_request_carry_its_id(client, db, json_lines):
    response = client.get("/_test/logs")
    request_id = response["X-Request-ID"]
    assert response.json()["request_id"] == request_id
    view_line = next(line for line in json_lines() if line["message"] == "inside the view")
    assert view_line["request_id"] == request_id
    assert request_log.current_request_id() is None  # gone once the response is closed


@pytest.mark.urls("rempart.ops.tests.log_urls")
def test_a_server_error_gets_the_id_and_its_lines_carry_it(client, db, json_lines):
    client.raise_request_exception = False
    response = client.get("/_test/fails")
    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    lines = json_lines()
    error = next(line for line in lines if line["logger"] == "django.request")
    assert error["request_id"] == request_id and "RuntimeError" in error["exception"]
    assert NIR not in json_lines.text()
    (line,) = requests(lines)
    assert line["status"] == 500 and line["level"] == "WARNING"


# --- one line per request


def test_one_json_line_per_request_with_its_fields(client, cast, json_lines):
    raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]
    token = cast.optician.api_tokens.get()
    response = client.post(
        "/api/v1/rights/check", data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    (line,) = requests(json_lines())
    assert line == {
        "ts": line["ts"],
        "level": "INFO",
        "logger": "rempart.request",
        "message": line["message"],
        "request_id": response["X-Request-ID"],
        "method": "POST",
        "route": "api/v1/rights/check",
        "status": response.status_code,
        "duration_ms": line["duration_ms"],
        "channel": "api",
        "actor_kind": "token",
        "actor_id": token.pk,
    }
    assert line["ts"].endswith("+00:00") and line["duration_ms"] > 0
    # The message rounds the duration itself (3.449 ms says 3.4 where duration_ms may say 3.45).
    said = (
        line["message"].removeprefix(f"POST api/v1/rights/check {response.status_code} ").removesuffix(" ms")
    )
    assert abs(float(said) - line["duration_ms"]) <= 0.051


def test_a_portal_line_names_the_user_by_id_only(client, cast, json_lines):
    from rempart.testing import login

    login(client, cast.staff, cast.secrets[cast.staff.email])
    client.get("/comptoir/droits/")
    line = requests(json_lines())[-1]
    assert (line["actor_kind"], line["actor_id"], line["channel"]) == ("user", cast.staff.pk, "portal")
    text = json_lines.text()
    assert cast.staff.email not in text and cast.staff.full_name not in text


def test_an_anonymous_api_line_reads_no_user(client, db, json_lines, django_assert_num_queries):
    with django_assert_num_queries(0):
        client.get("/api/v1/no-such-thing")
    (line,) = requests(json_lines())
    assert (line["actor_kind"], line["route"], line["channel"]) == ("anonymous", "unmatched", "api")
    assert "actor_id" not in line


def test_probes_are_quiet_unless_they_fail(client, db, json_lines):
    client.get("/healthz")
    client.get("/metrics")  # refused: a 404 worth seeing
    assert [(line["route"], line["level"]) for line in requests(json_lines())] == [("metrics", "INFO")]
    logger = logging.getLogger("rempart.request")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        client.get("/healthz")
    finally:
        logger.setLevel(previous)
    assert requests(json_lines())[-1]["route"] == "healthz" and requests(json_lines())[-1]["level"] == "DEBUG"


def test_no_nir_iban_or_name_in_any_line(client, cast, family, json_lines):  # noqa: F811
    """A request carrying a NIR and an IBAN in its body, its query and its path: none reaches a log line."""
    raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]
    body = {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
            "birth_date": family.parent_birth, "domain": "OPTI", "iban": IBAN}  # fmt: skip
    query = f"?nir={family.parent_nir}&iban={IBAN}&nom=Testeur"
    client.post(f"/api/v1/rights/check{query}", data=json.dumps(body), content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip
    client.post(f"/api/v1/rights/check{query}", data=json.dumps({**body, "nir": NIR}),
                content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip
    client.get(f"/comptoir/{family.parent_nir}/{IBAN}/{query}")  # a 404 Django logs with its path
    lines = json_lines()
    assert len(requests(lines)) == 3 and any(line["logger"] == "django.request" for line in lines)
    text = json_lines.text()
    for secret in (family.parent_nir, NIR, IBAN, "FR76 3000", "Testeur", "Paul", family.parent_birth):
        assert secret not in text, secret


def test_a_message_with_newlines_stays_one_line(json_lines):
    logging.getLogger("rempart.tests").warning("first line\nforged line %s", "\r\n{}")
    (line,) = json_lines()
    assert line["message"] == "first line\nforged line \r\n{}"


def test_other_extras_are_left_out(json_lines):
    """Django's 4xx lines carry the request object, whose text is the path with its query string."""
    logging.getLogger("rempart.tests").warning(
        "x", extra={"request": "GET /?nom=Testeur", "status_code": 404}
    )
    (line,) = json_lines()
    assert "request" not in line and line["status_code"] == 404 and "Testeur" not in json_lines.text()


# --- one line per job


def _sample(name, **labels) -> float:
    return OURS.get_sample_value(name, labels) or 0.0


def test_log_job_writes_its_line_and_counts(json_lines):
    runs = _sample("rempart_job_runs_total", kind="registry.import_rights", status="failed")
    failures = _sample("rempart_job_failures_total", kind="registry.import_rights")
    request_log.log_job("registry.import_rights", "0f8fad5b-d9cb-469f-a165-70867728950e", "failed", 1234.5, 3)
    request_log.log_job("registry.import_rights", "0f8fad5b-d9cb-469f-a165-70867728950e", "retrying", 10.0, 2)
    first, second = json_lines()
    assert {
        k: first[k]
        for k in ("logger", "level", "job_kind", "job_id", "job_status", "duration_ms", "attempts")
    } == {
        "logger": "rempart.jobs.run",
        "level": "WARNING",
        "job_kind": "registry.import_rights",
        "job_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "job_status": "failed",
        "duration_ms": 1234.5,
        "attempts": 3,
    }
    assert second["level"] == "INFO" and second["job_status"] == "retrying"
    assert _sample("rempart_job_runs_total", kind="registry.import_rights", status="failed") == runs + 1
    assert _sample("rempart_job_failures_total", kind="registry.import_rights") == failures + 1
    assert _sample("rempart_job_duration_seconds_count", kind="registry.import_rights") >= 2


def test_log_job_bounds_what_it_is_given(json_lines):
    request_log.log_job(f"kind {NIR}", "id", "exploded\n", 1.0, 1)
    (line,) = json_lines()
    assert (line["job_kind"], line["job_status"]) == ("other", "other")
    assert NIR not in json_lines.text()


# --- one line per job, written by the real runner


@job_kind("tests.ops_leaky_bug", label="Test: a bug whose message carries a NIR and an IBAN")
def _leaky_bug(ctx) -> None:
    raise RuntimeError(f"no beneficiary for NIR {NIR} (IBAN {IBAN})")


@job_kind("tests.ops_leaky_refusal", label="Test: a refusal whose message carries a NIR")
def _leaky_refusal(ctx) -> None:
    raise JobFailure("bad_row", f"ligne 3 : NIR {NIR} inconnu")


def _job_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "rempart.jobs.run"]


@pytest.mark.parametrize("kind", ["tests.ops_leaky_bug", "tests.ops_leaky_refusal"])
def test_a_job_failing_with_a_nir_in_its_message_logs_its_line_and_counts_without_it(db, json_lines, kind):
    from rempart.jobs import queue
    from rempart.jobs.inline import run_waiting
    from rempart.jobs.models import Job

    runs = _sample("rempart_job_runs_total", kind=kind, status="failed")
    failures = _sample("rempart_job_failures_total", kind=kind)
    job = queue.enqueue(kind)
    assert run_waiting() == [(str(job.pk), "failed")]
    (line,) = _job_lines(json_lines())
    assert (line["job_kind"], line["job_id"], line["job_status"], line["attempts"]) == (
        kind,
        str(job.pk),
        "failed",
        1,
    )
    assert line["level"] == "WARNING" and line["duration_ms"] >= 0 and line["request_id"] == "-"
    assert _sample("rempart_job_runs_total", kind=kind, status="failed") == runs + 1
    assert _sample("rempart_job_failures_total", kind=kind) == failures + 1
    text = json_lines.text()
    assert NIR not in text and IBAN not in text
    assert NIR not in Job.objects.get(pk=job.pk).failure_message  # nor on the job's page


def test_a_succeeding_job_writes_one_info_line(db, json_lines):
    from rempart.jobs import queue
    from rempart.jobs.inline import run_waiting
    from rempart.jobs.tests import sample_kinds  # noqa: F401 - registers the test kinds

    before = _sample("rempart_job_duration_seconds_count", kind="tests.count")
    queue.enqueue("tests.count", {"n": 2})
    run_waiting()
    (line,) = _job_lines(json_lines())
    assert (line["job_status"], line["level"]) == ("succeeded", "INFO")
    assert _sample("rempart_job_duration_seconds_count", kind="tests.count") == before + 1


def test_a_job_of_an_unknown_kind_and_a_lost_one_are_lines_and_failures_too(db, json_lines):
    import subprocess
    import sys

    from django.utils import timezone

    from rempart.jobs import queue, runner
    from rempart.jobs.models import Job
    from rempart.jobs.tests import sample_kinds  # noqa: F401 - registers the test kinds
    from rempart.lib.processes import this_host

    unknown_before = _sample("rempart_job_failures_total", kind="other")
    stale = Job.objects.create(kind="gone.since_last_release")  # queued before an upgrade removed its kind
    assert runner.execute(str(stale.pk)) == "failed"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    lost = queue.enqueue("tests.slow")  # tests.slow allows 2 attempts: this is its last
    Job.objects.filter(pk=lost.pk).update(
        status=Job.Status.RUNNING, attempts=2, started_at=timezone.now(),
        worker_host=this_host(), worker_pid=child.pid, worker_token="",
    )  # fmt: skip
    slow_before = _sample("rempart_job_failures_total", kind="tests.slow")
    timed_before = _sample("rempart_job_duration_seconds_count", kind="tests.slow")
    assert runner.sweep()["lost"] == 1
    first, second = _job_lines(json_lines())
    assert (first["job_kind"], first["job_status"]) == ("gone.since_last_release", "failed")  # as on its row
    assert (second["job_kind"], second["job_status"], second["attempts"]) == ("tests.slow", "failed", 2)
    assert "duration_ms" not in second and "worker lost" in second["message"]
    assert _sample("rempart_job_failures_total", kind="other") == unknown_before + 1
    assert _sample("rempart_job_failures_total", kind="tests.slow") == slow_before + 1
    assert _sample("rempart_job_duration_seconds_count", kind="tests.slow") == timed_before  # nobody timed it


# --- the configuration: JSON in production, redaction applied by the configured handler


def _run(code: str, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REMPART_")},
        "DJANGO_SETTINGS_MODULE": "rempart.settings",
        "REMPART_VAR_DIR": str(tmp_path / "var"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, timeout=120, check=True
    )


def test_production_logs_json_lines_redacted_by_the_configured_handler(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    production = {
        "REMPART_ENV": "production",
        "REMPART_SECRET_KEY": base64.b64encode(os.urandom(40)).decode(),
        "REMPART_DATA_KEYS": f"1:{key}",
        "REMPART_BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
        "REMPART_LEDGER_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "REMPART_ALLOWED_HOSTS": "testserver",
        "REMPART_SSL_REDIRECT": "0",
    }
    code = f"""
import django, logging
django.setup()
from django.conf import settings
from django.test import Client
print(settings.REMPART_LOG_FORMAT)
client = Client()
client.post("/api/v1/rights/check?nir={NIR}&iban={IBAN}", data='{{"nir": "{NIR}", "iban": "{IBAN}"}}',
            content_type="application/json", HTTP_X_REQUEST_ID="support-ticket-0042")
client.get("/comptoir/{NIR}/{IBAN}/")
logging.getLogger("rempart.anything").warning("NIR %s IBAN %s", "{NIR}", "{IBAN}")
"""
    child = _run(code, tmp_path, **production)
    assert child.stdout.decode().strip() == "json"
    lines = [json.loads(line) for line in child.stderr.decode().splitlines()]
    assert {line["logger"] for line in lines} >= {"rempart.request", "django.request", "rempart.anything"}
    api = next(line for line in lines if line["logger"] == "rempart.request" and line["method"] == "POST")
    assert api["request_id"] == "support-ticket-0042" and api["status"] == 401
    text = child.stderr.decode()
    assert NIR not in text and IBAN not in text and "[NIR]" in text and "[IBAN]" in text


def test_the_demo_logs_text_with_the_request_id(tmp_path):
    code = """
import django, logging
django.setup()
from django.test import Client
Client().get("/no-such-page", HTTP_X_REQUEST_ID="demo-request-0001", HTTP_HOST="localhost")
"""
    child = _run(code, tmp_path)
    text = child.stderr.decode()
    assert "[demo-request-0001]" in text and "GET unmatched 404" in text
    assert not text.lstrip().startswith("{")
