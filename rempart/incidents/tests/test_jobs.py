"""Large notices and a suspension's scope run on a worker: the same documents, the same ledger rows, no doubles."""

from __future__ import annotations

import pytest
from django.utils import timezone

from rempart.incidents import jobs as incident_jobs
from rempart.incidents import views, workflow
from rempart.incidents.models import Document, Incident
from rempart.incidents.scope import ScopeCriteria
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.jobs.runner import execute
from rempart.ledger.models import Disclosure
from rempart.testing import login

from .conftest import actor_for, check, since
from .test_notices import KINDS


@pytest.fixture
def checked(cast, population):
    """The hijacked staff account confirmed 6 people of the first insurer."""
    hijacked = actor_for(cast.staff, ip="198.51.100.23")
    for row in population.people[population.insurers[0].pk][:6]:
        assert check(hijacked, row).outcome != "no_match"
    incident = workflow.open_incident(
        title="Compte détourné",
        description="Vérifications en série.",
        detected_at=timezone.now(),
        by=cast.analyst,
    )
    scope = workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(cast.staff.pk,), since=since()), label="staff", by=cast.analyst
    )
    return incident, scope


def _post_generate(client, cast, incident, scope):
    if "_auth_user_id" not in client.session:
        login(client, cast.analyst, cast.secrets[cast.analyst.email])
    return client.post(f"/operateur/incidents/{incident.pk}/perimetres/{scope.pk}/notifications/")


def test_a_large_scope_s_notices_are_written_by_a_worker_as_the_analyst(client, cast, checked, monkeypatch):
    incident, scope = checked
    monkeypatch.setattr(views, "INLINE_NOTICES_MAX_PEOPLE", 5)  # 6 people: « large »
    response = _post_generate(client, cast, incident, scope)
    job = Job.objects.get(kind=incident_jobs.NOTICES_KIND)
    assert response.status_code == 302 and response.url == f"/taches/{job.pk}/"
    assert not Document.objects.exists()  # nothing written within the click
    assert _post_generate(client, cast, incident, scope).url == response.url  # a second click: the same job
    before = Disclosure.objects.filter(user_id=cast.analyst.pk).count()
    assert run_waiting() == [(str(job.pk), "succeeded")]
    job.refresh_from_db()
    assert job.result == {"url": f"/operateur/incidents/{incident.pk}/", "documents": 5}
    assert {d.kind for d in Document.objects.filter(scope=scope)} == KINDS
    listed = Disclosure.objects.filter(user_id=cast.analyst.pk).order_by("pk")[before:]
    assert listed and {(r.channel, r.organisation_id, r.ip_address) for r in listed} == {
        ("console", cast.analyst.membership.organisation_id, "127.0.0.1")
    }  # the analyst's reads, recorded as if the click had done them
    assert job.progress_done == job.progress_total == 6
    page = client.get(f"/taches/{job.pk}/")
    assert page.status_code == 200 and f"/operateur/incidents/{incident.pk}/" in page.content.decode()


def test_a_retry_after_the_documents_were_stored_stores_nothing_twice(client, cast, checked, monkeypatch):
    incident, scope = checked
    monkeypatch.setattr(views, "INLINE_NOTICES_MAX_PEOPLE", 5)
    _post_generate(client, cast, incident, scope)
    job = Job.objects.get(kind=incident_jobs.NOTICES_KIND)
    run_waiting()
    # The worker died after the documents' commit, before the job said so: the sweeper queues it again.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RETRYING, finished_at=None)
    assert execute(str(job.pk)) == "succeeded"
    job.refresh_from_db()
    assert job.result["replayed"] is True and Document.objects.filter(scope=scope).count() == 5


def test_a_small_scope_is_still_written_within_the_click(client, cast, checked):
    incident, scope = checked
    response = _post_generate(client, cast, incident, scope)
    assert response.url == f"/operateur/incidents/{incident.pk}/" and not Job.objects.exists()
    assert Document.objects.filter(scope=scope).count() == 5


def test_only_the_analyst_and_the_operator_s_staff_see_the_notices_job(client, cast, checked, monkeypatch):
    incident, scope = checked
    monkeypatch.setattr(views, "INLINE_NOTICES_MAX_PEOPLE", 5)
    url = _post_generate(client, cast, incident, scope).url
    for outsider in (cast.owner, cast.staff, cast.insurer_member):
        other = type(client)()
        login(other, outsider, cast.secrets[outsider.email])
        assert other.get(url).status_code == 404


def test_a_suspension_s_scope_is_frozen_by_a_job_once(cast, checked):
    incident, _scope = checked
    since_at = since()
    first = incident_jobs.enqueue_suspension_scope(
        incident.pk,
        user_id=cast.staff.pk,
        token_id=None,
        since=since_at,
        label="Activité de compte x (30 jours)",
    )
    again = incident_jobs.enqueue_suspension_scope(
        incident.pk,
        user_id=cast.staff.pk,
        token_id=None,
        since=since_at,
        label="Activité de compte x (30 jours)",
    )
    assert first.pk == again.pk  # one per incident
    run_waiting()
    first.refresh_from_db()
    frozen = incident.scopes.get(label="Activité de compte x (30 jours)")
    assert first.status == "succeeded" and first.result["scope"] == frozen.pk and frozen.people == 6
    Job.objects.filter(pk=first.pk).update(status=Job.Status.RETRYING, finished_at=None)
    assert execute(str(first.pk)) == "succeeded"
    assert incident.scopes.filter(label=frozen.label).count() == 1


def test_a_token_name_shaped_like_a_nir_does_not_stop_the_suspension_scope(cast, checked):
    incident, _scope = checked
    job = incident_jobs.enqueue_suspension_scope(
        incident.pk,
        user_id=None,
        token_id=999,
        since=since(),
        label="Activité de jeton rmp_ab… (1 85 05 75 123 456 78)",
    )
    assert "123 456" not in job.params["label"]
    run_waiting()
    job.refresh_from_db()
    assert job.status == "succeeded" and Incident.objects.filter(pk=incident.pk).exists()
