"""Incident work that takes minutes runs on a worker: notices of a large scope, the scope of a suspension.

Notices: the analyst's click enqueues the job and lands on its page (live progress, then a link back to the
incident). The job reads the scope's people through the gate as that analyst (their console actor rebuilt
from the request's facts), so the ledger sees a deferred generation exactly as an inline one. It is
``atomic=False``: the reads the gate records must stay recorded even if the job fails later, and the
documents are stored all-or-none by ``generate_notices`` itself. A retry after a worker died first looks
whether the documents of this generation were stored already (the store is one transaction), so nothing is
generated twice.

Suspension scope: an automatic suspension (surveillance) contains at once — account or token suspended,
sessions ended, owners told, incident opened — and leaves the part that reads the whole ledger (the
verification and the frozen scope of the actor's activity) to this job.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from rempart.jobs.kinds import JobFailure, job_kind
from rempart.jobs.queue import enqueue
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.lib.redact import redact

NOTICES_KIND = "incidents.generate_notices"
SCOPE_KIND = "incidents.attach_scope"
STALE_WORK_SECONDS = 24 * 3600


def _incident_url(incident_id: int) -> str:
    return reverse("incidents:detail", kwargs={"pk": incident_id})


def enqueue_notices(incident, scope, *, user, actor: Actor):
    """Queue the generation of a scope's notices as ``user`` (a second click while queued gets the same job)."""
    before = scope.documents.count()
    return enqueue(
        NOTICES_KIND,
        {
            "incident_id": incident.pk,
            "scope_id": scope.pk,
            "documents_before": before,
            "user_id": actor.user_id,
            "organisation_id": actor.organisation_id,
            "ip": actor.ip,
            "session_ref": actor.session_ref,
            "second_factor_at": actor.second_factor_at,
        },
        key=f"incident-notices:{scope.pk}:{before}",
        user=user,
    )


def _remove_stale_work() -> None:
    """Temporary lists a killed worker left behind (they hold adherent numbers): gone after a day."""
    from rempart.incidents.notices import _work_dir

    limit = time.time() - STALE_WORK_SECONDS
    for path in Path(_work_dir()).glob("notices-*"):
        try:
            if path.stat().st_mtime < limit:
                shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:
            continue


@job_kind(NOTICES_KIND, label=_("Génération des notifications d'un incident"), max_attempts=2, atomic=False)
def generate_notices_job(
    ctx,
    incident_id: int,
    scope_id: int,
    documents_before: int,
    user_id: int | None = None,
    organisation_id: int | None = None,
    ip: str | None = None,
    session_ref: str = "",
    second_factor_at: float | None = None,
) -> dict:
    from rempart.accounts.models import User
    from rempart.incidents.models import Incident, Scope
    from rempart.incidents.notices import NoticeError, generate_notices

    incident = Incident.objects.filter(pk=incident_id).first()
    scope = Scope.objects.filter(pk=scope_id, incident_id=incident_id).first()
    if incident is None or scope is None:
        raise JobFailure("not_found", _("Cet incident ou ce périmètre n'existe plus."))
    url = _incident_url(incident.pk)
    made = scope.documents.count() - documents_before
    if made > 0:  # an earlier attempt stored them, then its worker died before saying so
        return {"url": url, "documents": made, "replayed": True}
    _remove_stale_work()
    user = User.objects.filter(pk=user_id).first() if user_id else None
    actor = Actor(
        channel=Disclosure.Channel.CONSOLE,
        organisation_id=organisation_id,
        user_id=user_id,
        ip=ip,
        session_ref=session_ref,
        second_factor_at=second_factor_at,
    )
    note = str(_("personnes"))
    try:
        documents = generate_notices(
            incident,
            scope,
            by=user,
            actor=actor,
            on_progress=lambda done, total: ctx.progress(done, total, note),
        )
    except NoticeError as exc:
        raise JobFailure("notice_refused", str(exc)) from None
    return {"url": url, "documents": len(documents)}


def enqueue_suspension_scope(
    incident_id: int, *, user_id: int | None, token_id: int | None, since: dt.datetime, label: str
):
    """Queue the frozen scope of a suspended actor's activity (one per incident, whatever the retries)."""
    return enqueue(
        SCOPE_KIND,
        {
            "incident_id": incident_id,
            "user_id": user_id,
            "token_id": token_id,
            "since": since.isoformat(),
            "label": redact(label)[:200],  # a token's name is free text: nothing personal-shaped in a job
        },
        key=f"incident-scope:{incident_id}",
    )


@job_kind(SCOPE_KIND, label=_("Périmètre d'une suspension automatique"), max_attempts=3, atomic=True)
def attach_suspension_scope(
    ctx, incident_id: int, since: str, label: str, user_id: int | None = None, token_id: int | None = None
) -> dict:
    """Verify the ledger and freeze the scope (in one transaction: a killed worker leaves no half scope)."""
    from rempart.incidents import workflow
    from rempart.incidents.models import Incident
    from rempart.incidents.scope import ScopeCriteria

    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        raise JobFailure("not_found", _("Cet incident n'existe plus."))
    url = _incident_url(incident.pk)
    existing = incident.scopes.filter(label=label).first()
    if existing is not None:
        return {"url": url, "scope": existing.pk, "people": existing.people, "replayed": True}
    start = parse_datetime(since)
    if start is None:
        raise JobFailure("bad_params", _("Date de début du périmètre illisible."))
    criteria = ScopeCriteria(
        user_ids=(user_id,) if user_id and not token_id else (),
        token_ids=(token_id,) if token_id else (),
        since=start,
    )
    scope = workflow.attach_scope(incident, criteria, label=label)
    return {"url": url, "scope": scope.pk, "people": scope.people}
