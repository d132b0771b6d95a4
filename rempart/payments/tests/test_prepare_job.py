"""A payment run is prepared by a worker: what the console says at once, what the job page says, the schedule."""

from __future__ import annotations

import datetime as dt
from html import unescape

from django.utils import timezone

from rempart.accounts.models import SecurityEvent
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.jobs.queue import enqueue
from rempart.payments import runs
from rempart.payments.models import PaymentRun
from rempart.testing import login

from .conftest import yesterday

CONSOLE = "/operateur/paiements/"


def _browser(client_class, cast, user):
    browser = client_class()
    login(browser, user, cast.secrets[user.email])
    return browser


def _posted(cutoff: dt.date) -> dict:
    execution = runs.next_business_day(timezone.localdate())
    return {"cutoff": cutoff.strftime("%d/%m/%Y"), "execution_date": execution.strftime("%d/%m/%Y")}


def test_an_open_run_at_another_cutoff_is_refused_on_the_form_and_queues_nothing(
    cast, client_class, owed, preparer
):
    earlier = runs.prepare_run(yesterday(), user=preparer)
    response = _browser(client_class, cast, preparer).post(
        f"{CONSOLE}preparer/", _posted(yesterday() - dt.timedelta(days=1))
    )
    assert response.status_code == 400 and earlier.reference in unescape(response.content.decode())
    assert not Job.objects.exists() and PaymentRun.objects.count() == 1


def test_the_same_cutoff_again_goes_to_the_open_run_without_a_job(cast, client_class, owed, preparer):
    prepared = runs.prepare_run(yesterday(), user=preparer)
    response = _browser(client_class, cast, preparer).post(f"{CONSOLE}preparer/", _posted(yesterday()))
    assert response.status_code == 302 and response.url == f"{CONSOLE}{prepared.reference}/"
    assert not Job.objects.exists()


def test_nothing_to_pay_fails_the_job_with_its_reason_on_the_job_page(cast, client_class, payees, preparer):
    browser = _browser(client_class, cast, preparer)
    response = browser.post(f"{CONSOLE}preparer/", _posted(yesterday()))
    job = Job.objects.get(kind="payments.prepare_run")
    assert response.url == f"/taches/{job.pk}/"
    assert run_waiting() == [(str(job.pk), "failed")]
    job.refresh_from_db()
    assert job.failure_code == "nothing_to_pay" and job.attempts == 1  # a plain refusal: not retried
    page = browser.get(f"/taches/{job.pk}/")
    assert page.status_code == 200 and "Rien à payer" in unescape(page.content.decode())
    assert not PaymentRun.objects.exists()


def test_a_preparer_suspended_meanwhile_prepares_nothing(cast, client_class, owed, preparer):
    browser = _browser(client_class, cast, preparer)
    browser.post(f"{CONSOLE}preparer/", _posted(yesterday()))
    preparer.suspended_at = timezone.now()
    preparer.save(update_fields=["suspended_at"])
    run_waiting()
    job = Job.objects.get(kind="payments.prepare_run")
    assert job.status == "failed" and job.failure_code == "not_allowed"
    assert not PaymentRun.objects.exists() and not SecurityEvent.objects.filter(tag="payments.run_prepared")


def test_the_scheduled_run_prepares_yesterday_with_no_preparer_and_is_quiet_when_there_is_nothing(
    cast, owed, approver
):
    job = enqueue("payments.prepare_run", {}, key="schedule:payments-run:today")
    run_waiting()
    job.refresh_from_db()
    run = PaymentRun.objects.get()
    assert job.status == "succeeded" and job.result["reference"] == run.reference
    assert run.cutoff == yesterday() and run.prepared_by is None and run.transfer_count == 2
    again = enqueue("payments.prepare_run", {}, key="schedule:payments-run:again")  # same cut-off: the run
    other = enqueue("payments.prepare_run", {"cutoff": (yesterday() - dt.timedelta(days=1)).isoformat()})
    run_waiting()
    again.refresh_from_db()
    other.refresh_from_db()
    assert again.status == "succeeded" and again.result["reference"] == run.reference
    assert other.status == "succeeded" and other.result["prepared"] is False  # a run awaits approval: quiet
    assert other.result["reason"] == "run_open" and PaymentRun.objects.count() == 1


def test_a_replayed_job_returns_the_run_it_prepared(cast, owed, preparer):
    first = enqueue("payments.prepare_run", {"cutoff": yesterday().isoformat(), "user_id": preparer.pk})
    second = enqueue("payments.prepare_run", {"cutoff": yesterday().isoformat(), "user_id": preparer.pk})
    run_waiting()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.result["reference"] == second.result["reference"] == PaymentRun.objects.get().reference


def test_the_scheduled_run_with_nothing_owed_ends_quietly(cast, payees):
    job = enqueue("payments.prepare_run", {})
    run_waiting()
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["reason"] == "nothing_to_pay"
    assert not PaymentRun.objects.exists()
