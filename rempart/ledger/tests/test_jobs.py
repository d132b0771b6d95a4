"""The ledger's routine work as jobs: a break fails the job *and* stays recorded (the jobs are not atomic)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from rempart.jobs.inline import run_waiting
from rempart.jobs.kinds import JobFailure
from rempart.jobs.queue import enqueue
from rempart.ledger.jobs import partitions
from rempart.ledger.models import ChainHead, Disclosure, LedgerAnchor, VerificationRun
from rempart.ledger.partitions import missing_months, partition_name

from .tamper import append, cut_tail, longest_chain, raw

pg_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _run(kind: str, params: dict | None = None):
    job = enqueue(kind, params or {})
    run_waiting()
    job.refresh_from_db()
    return job


def test_the_anchor_job_signs_the_heads_and_a_contradiction_is_refused_and_recorded(db):
    append(12)
    job = _run("ledger.anchor")
    assert job.status == "succeeded" and job.result["rows"] == sum(
        ChainHead.objects.values_list("seq", flat=True)
    )
    assert LedgerAnchor.objects.get().number == job.result["anchor"]
    victim = longest_chain()
    cut_tail(victim, 0)  # rows signed in the anchor gone, the head rewound
    refused = _run("ledger.anchor")
    assert refused.status == "failed" and refused.failure_code == "anchor_refused" and refused.attempts == 1
    assert LedgerAnchor.objects.count() == 1
    assert VerificationRun.objects.filter(kind="anchor", ok=False).exists()  # the refusal outlives the job


def test_the_verify_job_passes_then_fails_on_a_forged_row_and_the_failure_stays_recorded(db):
    append(10)
    ok = _run("ledger.verify", {"mode": "full"})
    assert ok.status == "succeeded" and ok.result["rows"] == 10 and ok.result["chains"] >= 1
    assert VerificationRun.objects.get(pk=ok.result["verification"]).ok
    row = Disclosure.objects.order_by("pk").first()
    raw("UPDATE ledger_disclosure SET outcome = 'covered' WHERE id = %s", [row.pk])
    broken = _run("ledger.verify", {"mode": "full"})
    assert broken.status == "failed" and broken.failure_code == "ledger_broken" and broken.attempts == 1
    failure = VerificationRun.objects.filter(ok=False).get()
    assert str(failure.pk) in broken.failure_message and f"chain {row.chain}" in failure.problems


def test_an_unknown_verify_mode_is_refused(db):
    job = _run("ledger.verify", {"mode": "everything"})
    assert job.status == "failed" and job.failure_code == "bad_mode" and not VerificationRun.objects.exists()


def test_partitions_on_sqlite_say_so(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    assert _run("ledger.partitions").result == {"created": 0, "skipped": 0, "note": "sqlite"}


class _Ctx:
    def progress(self, *args) -> None:
        pass


@pg_only
def test_partitions_under_a_role_that_cannot_create_tables_check_the_owner_did(db):
    assert _run("ledger.partitions").status == "succeeded" and missing_months(2) == []
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE rempart_test_app_role NOLOGIN")
        cursor.execute("GRANT USAGE ON SCHEMA public TO rempart_test_app_role")
        cursor.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO rempart_test_app_role")
        cursor.execute("SET LOCAL ROLE rempart_test_app_role")
    try:
        assert (
            partitions(_Ctx(), months_ahead=14)["note"] == "owner_creates"
        )  # a month more: refused, checked
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            next_month = (dt.datetime.now(dt.UTC).date().replace(day=28) + dt.timedelta(days=4)).replace(
                day=1
            )
            cursor.execute(f"DROP TABLE {partition_name('ledger_disclosure', next_month)}")
            cursor.execute("SET LOCAL ROLE rempart_test_app_role")
        with pytest.raises(JobFailure) as refused:
            partitions(_Ctx(), months_ahead=14)
        assert refused.value.code == "partitions_missing" and f"{next_month:%Y-%m}" in str(
            refused.value.message
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
