"""The job page and the operator's console: who sees what, and what the operator may do."""

from __future__ import annotations

import pytest

from rempart.accounts.models import Role, SecurityEvent
from rempart.jobs import queue
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.jobs.tests import sample_kinds  # noqa: F401
from rempart.testing import login, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_job(cast):
    return queue.enqueue("tests.count", {"n": 3}, user=cast.owner, organisation_id=cast.optician.pk)


def test_the_person_and_their_organisation_see_the_job_page_with_its_progress(client, cast, owner_job):
    login(client, cast.staff, cast.secrets[cast.staff.email])  # a colleague of the shop
    page = client.get(f"/taches/{owner_job.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Test: count" in text and "En file" in text and 'id="job-progress"' in text
    run_waiting()
    state = client.get(f"/taches/{owner_job.pk}/etat/").json()
    assert state["status"] == "succeeded" and state["finished"] and state["percent"] == 100
    assert (state["done"], state["total"]) == (3, 3)


def test_another_organisation_and_strangers_do_not_learn_the_job_exists(client, cast, owner_job):
    assert client.get(f"/taches/{owner_job.pk}/").status_code == 302  # anonymous: to the login page
    login(client, cast.outsider, cast.secrets[cast.outsider.email])
    assert client.get(f"/taches/{owner_job.pk}/").status_code == 404
    assert client.get(f"/taches/{owner_job.pk}/etat/").status_code == 404
    assert client.get("/taches/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/operateur/taches/").status_code == 404


def test_a_failed_job_shows_its_reason(client, cast):
    job = queue.enqueue("tests.refuse", user=cast.owner, organisation_id=cast.optician.pk)
    run_waiting()
    login(client, cast.owner, cast.secrets[cast.owner.email])
    state = client.get(f"/taches/{job.pk}/etat/").json()
    assert state["status"] == "failed" and state["failure_code"] == "bad_file"
    assert "ligne 3" in state["failure_message"]
    assert "ligne 3" in client.get(f"/taches/{job.pk}/").content.decode()


def test_a_result_link_must_stay_on_the_site():
    from rempart.jobs.views import state_of

    job = Job(kind="tests.count", status=Job.Status.SUCCEEDED, result={"url": "https://evil.example/"})
    assert state_of(job)["result_url"] is None
    job.result = {"url": "//evil.example/x"}
    assert state_of(job)["result_url"] is None
    job.result = {"url": "/\\evil.example"}
    assert state_of(job)["result_url"] is None
    job.result = {"url": "/registre/imports/3/"}
    assert state_of(job)["result_url"] == "/registre/imports/3/"


def test_the_console_lists_jobs_with_counts_and_filters(client, cast, owner_job):
    queue.enqueue("tests.refuse")
    run_waiting()
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    page = client.get("/operateur/taches/")
    text = page.content.decode()
    assert page.status_code == 200 and "Terminée : 1" in text and "Échouée : 1" in text
    assert "Aucun processus de travail actif" in text
    assert "Relancer" not in text  # the analyst watches; administrators act
    failed = client.get("/operateur/taches/?status=failed").content.decode()
    assert "bad_file" in failed and "owner@shop.test" not in failed
    assert client.get("/operateur/taches/?status=nonsense&kind=<script>").status_code == 200


def test_an_administrator_retries_a_failed_job_after_confirming_and_it_is_recorded(client, cast):
    job = queue.enqueue("tests.refuse")
    run_waiting()
    login(client, cast.admin, cast.secrets[cast.admin.email])
    client.post(f"/operateur/taches/{job.pk}/relancer/", {})
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED  # not confirmed: nothing happens
    response = client.post(f"/operateur/taches/{job.pk}/relancer/", {"confirm": "yes"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.RETRYING and job.retried_from_failure == "bad_file"
    event = SecurityEvent.objects.get(tag="job.retried")
    assert event.user == cast.admin and event.details["job"] == str(job.pk)


def test_cancel_is_for_administrators_only(client, cast):
    job = queue.enqueue("tests.count", {"n": 1})
    treasurer = make_user(
        "tresor@operator.test", cast.operator, Role.TREASURY, totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    )
    login(client, treasurer, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert client.post(f"/operateur/taches/{job.pk}/annuler/", {"confirm": "yes"}).status_code == 404
    assert client.get("/operateur/taches/").status_code == 200  # but sees the console
    client.logout()
    login(client, cast.admin, cast.secrets[cast.admin.email])
    assert client.get(f"/operateur/taches/{job.pk}/annuler/").status_code == 405
    client.post(f"/operateur/taches/{job.pk}/annuler/", {"confirm": "yes"})
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert SecurityEvent.objects.filter(tag="job.cancelled", user=cast.admin).exists()
