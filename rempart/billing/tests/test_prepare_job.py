"""The insurers' statements are issued by a job: the periods just closed, replayed safely, refusals said."""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.billing.jobs import closed_periods
from rempart.billing.models import Statement
from rempart.billing.tests.conftest import accept, money_ok, paid
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.jobs.queue import enqueue
from rempart.jobs.runner import execute

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("today", "periods"),
    [
        (dt.date(2026, 11, 18), ["2026-11-17"]),  # a Wednesday
        (dt.date(2026, 11, 16), ["2026-11-15", "2026-W46"]),  # a Monday: last ISO week too
        (dt.date(2026, 12, 1), ["2026-11-30", "2026-11"]),  # the 1st (a Tuesday): last month too
        (dt.date(2027, 2, 1), ["2027-01-31", "2027-W04", "2027-01"]),  # a Monday the 1st
        (dt.date(2027, 1, 4), ["2027-01-03", "2026-W53"]),  # ISO week 53 of 2026
    ],
)
def test_the_periods_closed_overnight(today, periods):
    assert closed_periods(today) == periods


def test_a_month_s_statements_and_detail_files_are_issued_once_however_often_the_job_runs(
    cast, amc, default_fees
):
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    job = enqueue("billing.prepare", {"period": "2026-10"})
    assert run_waiting() == [(str(job.pk), "succeeded")]
    job.refresh_from_db()
    statement = Statement.objects.get()
    assert {k: job.result[k] for k in ("periods", "statements", "detail_files")} == {
        "periods": ["2026-10"], "statements": 1, "detail_files": 1
    }  # fmt: skip
    assert statement.total_cents == 10_080 and statement.detail_sha256
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RETRYING, finished_at=None)  # delivered twice
    assert execute(str(job.pk)) == "succeeded"
    job.refresh_from_db()
    assert job.result["detail_files"] == 0 and Statement.objects.count() == 1
    money_ok()


def test_a_period_not_over_fails_with_its_reason_and_bills_nothing(cast, amc, default_fees):
    job = enqueue("billing.prepare", {"period": "2099-01"})
    run_waiting()
    job.refresh_from_db()
    assert job.status == "failed" and job.failure_code == "period_not_over" and job.attempts == 1
    assert "31/01/2099" in job.failure_message and not Statement.objects.exists()


def test_an_unreadable_period_fails_plainly(db):
    job = enqueue("billing.prepare", {"period": "2026-13"})
    run_waiting()
    job.refresh_from_db()
    assert job.status == "failed" and job.failure_code == "bad_period" and "2026-13" in job.failure_message
