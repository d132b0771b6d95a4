"""The scheduler starts each periodic job once per period, however many tickers race for it."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from rempart.jobs.models import Job, ScheduledRun
from rempart.jobs.schedule import Periodic, default_schedule, tick
from rempart.jobs.tests import sample_kinds  # noqa: F401

pytestmark = pytest.mark.django_db

DAILY = [Periodic("count-daily", "tests.count", "daily", at=dt.time(2, 0), params=(("n", 2),))]


def at(text: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.fromisoformat(text))


def test_a_daily_job_starts_once_its_time_has_come_and_once_only():
    assert tick(at("2026-12-02 01:59"), DAILY) == []
    assert tick(at("2026-12-02 02:00"), DAILY) == ["count-daily"]
    assert tick(at("2026-12-02 02:01"), DAILY) == []
    assert tick(at("2026-12-02 23:59"), DAILY) == []
    [job] = Job.objects.all()
    assert (
        job.kind == "tests.count" and job.params == {"n": 2} and job.key == "schedule:count-daily:2026-12-02"
    )
    assert tick(at("2026-12-03 09:00"), DAILY) == [
        "count-daily"
    ]  # a scheduler down at 02:00 catches up that day
    assert ScheduledRun.objects.count() == 2


def test_a_period_taken_by_another_ticker_is_left_alone():
    ScheduledRun.objects.create(name="count-daily", period="2026-12-02")
    assert tick(at("2026-12-02 03:00"), DAILY) == []
    assert not Job.objects.exists()


def test_monthly_and_hourly_periods():
    monthly = [Periodic("m", "tests.count", "monthly", day=1, at=dt.time(1, 0))]
    hourly = [Periodic("h", "tests.count", "hourly")]
    assert tick(at("2026-12-01 00:30"), monthly) == []
    assert tick(at("2026-12-01 01:00"), monthly) == ["m"]
    assert tick(at("2026-12-15 12:00"), monthly) == []
    assert tick(at("2026-12-01 10:05"), hourly) == ["h"]
    assert tick(at("2026-12-01 10:59"), hourly) == []
    assert tick(at("2026-12-01 11:00"), hourly) == ["h"]


def test_an_entry_whose_kind_is_not_registered_is_skipped_not_fatal():
    assert tick(at("2026-12-02 05:00"), [Periodic("x", "nobody.here", "daily")]) == []


def test_disabled_entries_do_not_run(settings):
    settings.REMPART_SCHEDULE_DISABLED = ["payments-run"]
    assert "payments-run" not in {entry.name for entry in default_schedule()}


@pytest.mark.django_db(transaction=True)
def test_racing_tickers_start_one_job():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers: the race is a PostgreSQL one")
    results: list[list[str]] = []
    barrier = threading.Barrier(4)

    def one():
        from django.db import connections

        try:
            barrier.wait()
            results.append(tick(at("2026-12-02 04:00"), DAILY))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert Job.objects.filter(kind="tests.count").count() == 1
