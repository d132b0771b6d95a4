"""A lot above REMPART_CLAIMS_INLINE_LOT_MAX invoices is adjudicated by a worker: 202, a status URL, the same
results as inline, the same ledger actor, no double adjudication on a retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from rempart.claims.lot_format import write_lot
from rempart.claims.models import Claim, ClaimLot
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.ledger.models import Disclosure

from .test_api import invoice_for, no_surveillance  # noqa: F401 - fixture
from .test_lots import header, send, three_invoices


def uploads() -> list[Path]:
    directory = Path(django_settings.REMPART_JOBS_DIR) / "uploads"
    return sorted(directory.glob("lot-*")) if directory.exists() else []


@pytest.fixture
def deferred(settings):
    settings.REMPART_CLAIMS_INLINE_LOT_MAX = 2  # three invoices: a "large" lot


def body_for(cast, delivered, population, number="LOT-0001"):
    row, pec = delivered
    invoices = three_invoices(row, pec, population)
    return write_lot(
        invoices, header(cast, number, total_amc_cents=sum(i["total_amc_cents"] for i in invoices))
    )


def test_a_large_lot_is_accepted_at_once_and_judged_by_the_worker(
    client, cast, token, delivered, population, deferred
):
    before_claims = Claim.objects.count()
    response = send(client, token, body_for(cast, delivered, population))
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["status"] == "processing" and answer["invoices"] == 3 and answer["counts"] == {}
    assert Claim.objects.count() == before_claims and len(uploads()) == 1  # nothing judged in the request
    status_url = answer["status_url"]
    waiting = client.get(status_url, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert waiting["status"] == "queued" and waiting["results_url"] is None
    assert client.get(answer["results_url"], HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404
    run_waiting()
    done = client.get(status_url, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert done["status"] == "succeeded" and (done["done"], done["total"]) == (3, 3)
    assert done["results_url"] == answer["results_url"]
    lot = ClaimLot.objects.get(status="accepted")
    assert lot.counts == {"accepted": 1, "invalid": 1, "no_match": 1}
    assert client.get(done["results_url"], HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert uploads() == []  # the saved lot is gone once judged
    # The ledger names the token that sent the lot, through the API, as an inline lot would.
    reads = Disclosure.objects.filter(channel=Disclosure.Channel.API).order_by("-pk")[:2]
    api_token = Job.objects.get().params["token_id"]
    assert reads and all(read.token_id == api_token for read in reads)


def test_a_lot_wrong_as_a_whole_is_still_refused_in_the_request(
    client, cast, token, delivered, population, deferred
):
    row, pec = delivered
    invoices = three_invoices(row, pec, population)
    body = write_lot(invoices, header(cast, total_amc_cents=1))
    response = send(client, token, body)
    assert response.status_code == 400 and response.json()["code"]
    assert not Job.objects.exists() and uploads() == []


def test_a_resend_while_queued_is_the_same_job_and_after_it_the_first_result(
    client, cast, token, delivered, population, deferred
):
    body = body_for(cast, delivered, population)
    first = send(client, token, body).json()
    second = send(client, token, body).json()
    assert first["status_url"] == second["status_url"] and Job.objects.count() == 1
    run_waiting()
    again = send(client, token, body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert ClaimLot.objects.filter(status="accepted").count() == 1


def test_a_transient_failure_is_retried_without_judging_twice(
    client, cast, token, delivered, population, deferred, monkeypatch
):
    from django.db import OperationalError

    from rempart.claims import lots

    real = lots._adjudicate_all
    calls = []

    def fails_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database restarted")
        return real(*args, **kwargs)

    monkeypatch.setattr(lots, "_adjudicate_all", fails_first)
    send(client, token, body_for(cast, delivered, population))
    run_waiting()
    job = Job.objects.get()
    assert job.status == Job.Status.RETRYING and len(uploads()) == 1  # the lot is kept for the retry
    Job.objects.filter(pk=job.pk).update(run_after=None)
    run_waiting()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    assert ClaimLot.objects.filter(status="accepted").count() == 1
    assert Claim.objects.filter(lot__isnull=False).count() == 1 and uploads() == []


def test_another_organisation_cannot_follow_the_lot(client, cast, token, delivered, population, deferred):
    from rempart.accounts import tokens

    answer = send(client, token, body_for(cast, delivered, population)).json()
    _other, raw = tokens.create_token(cast.other_shop, "other", ["claims:write"], cast.outsider)
    assert client.get(answer["status_url"], HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404
    assert (
        client.get("/api/v1/claims/lots/jobs/not-a-uuid", HTTP_AUTHORIZATION=f"Bearer {token}").status_code
        == 404
    )
    assert client.get(answer["status_url"]).status_code == 401
