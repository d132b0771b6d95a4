"""Security console pages for incidents (operator security staff only) and the insurer's notices page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.models import Organisation, Role
from rempart.incidents import exposure, workflow
from rempart.incidents.export import describe
from rempart.incidents.forms import IncidentForm, ScopeForm, StatusForm, TextForm
from rempart.incidents.ledger_words import ledger_line
from rempart.incidents.models import Document, Incident
from rempart.incidents.scope import ScopeError, archived, summarise
from rempart.ledger.actor import Actor
from rempart.lib.db_routing import reads_may_lag
from rempart.registry.models import Insurer

INCIDENT_ROLES = {Role.SECURITY}
# Up to this many people the notices are written within the click (seconds); above, a worker writes them.
INLINE_NOTICES_MAX_PEOPLE = 2_000


def _require_security(request) -> None:
    """Incidents are for the operator's security analysts only; anyone else gets a plain 404."""
    if not roles.is_operator(request.user, INCIDENT_ROLES):
        raise Http404


def _insurer_names(ids) -> dict[int, str]:
    return dict(Insurer.objects.filter(pk__in=[int(i) for i in ids]).values_list("pk", "name"))


@login_required
def incident_list(request):
    _require_security(request)
    incidents = Incident.objects.annotate(scope_count=Count("scopes")).order_by("-detected_at")
    return render(request, "incidents/list.html", {"incidents": incidents, "now": timezone.now()})


@login_required
def incident_new(request):
    _require_security(request)
    form = IncidentForm(
        request.POST or None, initial={"detected_at": timezone.localtime().replace(second=0, microsecond=0)}
    )
    if request.method == "POST" and form.is_valid():
        incident = workflow.open_incident(**form.cleaned_data, by=request.user)
        messages.success(request, _("Incident %s ouvert : le délai de 72 heures court.") % incident.number)
        return redirect("incidents:detail", pk=incident.pk)
    return render(request, "incidents/new.html", {"form": form})


@login_required
def incident_detail(request, pk: int):
    _require_security(request)
    incident = get_object_or_404(Incident, pk=pk)
    scopes = list(incident.scopes.all())
    names = _insurer_names({i for scope in scopes for i in scope.per_insurer})
    for scope in scopes:
        scope.description = describe(scope.criteria)
        scope.ledger_line = ledger_line(scope)
        scope.insurers = sorted(
            ((names.get(int(i), i), totals) for i, totals in scope.per_insurer.items()),
            key=lambda item: str(item[0]),
        )
    documents = incident.documents.select_related("insurer")
    left = incident.time_left()
    context = {
        "incident": incident,
        "scopes": scopes,
        "documents": documents,
        "timeline": incident.timeline.select_related("actor"),
        "scope_form": ScopeForm(),
        "status_form": StatusForm(initial={"status": incident.status}),
        "text_form": TextForm(),
        "hours_left": int(left.total_seconds() // 3600),
        "minutes_left": int(left.total_seconds() % 3600 // 60),
        "overdue": left.total_seconds() < 0,
    }
    return render(request, "incidents/detail.html", context)


@login_required
def scope_preview(request, pk: int):
    """Run a scope on the live ledger (totals only, recorded) and offer to freeze it into the incident."""
    _require_security(request)
    incident = get_object_or_404(Incident, pk=pk)
    form = ScopeForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "incidents/scope_form.html", {"incident": incident, "form": form})
    criteria = form.cleaned_data["criteria"]
    label = form.cleaned_data["label"] or "; ".join(describe(criteria.to_json()))[:200]
    try:
        archived(
            criteria
        )  # an archived month failing its check: refused before anything (docs/ledger-archive.md)
    except ScopeError as exc:
        form.add_error(None, str(exc))
        return render(request, "incidents/scope_form.html", {"incident": incident, "form": form})
    if "freeze" in request.POST:
        scope = workflow.attach_scope(
            incident, criteria, label=label, by=request.user, actor=Actor.console(request)
        )
        if scope.ledger_ok:
            messages.success(
                request, _("Périmètre figé : %(people)s personne(s).") % {"people": scope.people}
            )
        else:
            messages.error(
                request, _("ATTENTION : le registre des divulgations est altéré. Voir le périmètre.")
            )
        return redirect("incidents:detail", pk=incident.pk)
    summary = reads_may_lag(summarise)(criteria)  # a preview: a few seconds' lag is fine, a freeze is not
    exposure.record_scope_run(
        Actor.console(request), label=f"{incident.number}/aperçu", people=summary.people, listed=False
    )
    names = _insurer_names(summary.per_insurer)
    rows = sorted(
        ((names.get(i, i), totals) for i, totals in summary.per_insurer.items()), key=lambda r: str(r[0])
    )
    return render(
        request,
        "incidents/scope_form.html",
        {"incident": incident, "form": form, "summary": summary, "rows": rows, "label": label,
         "description": describe(criteria.to_json())},
    )  # fmt: skip


@login_required
@require_POST
def scope_rerun(request, pk: int, scope_pk: int):
    _require_security(request)
    incident = get_object_or_404(Incident, pk=pk)
    scope = get_object_or_404(incident.scopes, pk=scope_pk)
    difference = workflow.rerun(scope)
    exposure.record_scope_run(
        Actor.console(request),
        label=f"{incident.number}/{scope.pk}/relance",
        people=difference.people_now,
        listed=False,
    )
    return render(
        request, "incidents/rerun.html", {"incident": incident, "scope": scope, "difference": difference}
    )


@login_required
@require_POST
def change_status(request, pk: int):
    _require_security(request)
    incident = get_object_or_404(Incident, pk=pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choisissez un statut proposé."))
        return redirect("incidents:detail", pk=incident.pk)
    try:
        workflow.set_status(
            incident, form.cleaned_data["status"], by=request.user, note=form.cleaned_data["note"]
        )
    except workflow.WorkflowError as exc:
        messages.error(request, str(exc))
    return redirect("incidents:detail", pk=incident.pk)


@login_required
@require_POST
def add_text(request, pk: int, kind: str):
    _require_security(request)
    incident = get_object_or_404(Incident, pk=pk)
    form = TextForm(request.POST)
    if form.is_valid():
        action = workflow.add_measure if kind == "measure" else workflow.add_note
        try:
            action(incident, form.cleaned_data["text"], by=request.user)
        except workflow.WorkflowError as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("Le texte est vide ou trop long."))
    return redirect("incidents:detail", pk=incident.pk)


@login_required
@require_POST
def generate(request, pk: int, scope_pk: int):
    """Generate the notices of every insurer in a frozen scope (stored with the incident, hashed)."""
    _require_security(request)
    incident = get_object_or_404(Incident, pk=pk)
    scope = get_object_or_404(incident.scopes, pk=scope_pk)
    just_made = scope.documents.filter(created_at__gte=timezone.now() - timezone.timedelta(seconds=60))
    if just_made.exists():  # a double click: the documents of a moment ago are there
        messages.warning(request, _("Les notifications de ce périmètre viennent d'être générées."))
        return redirect("incidents:detail", pk=incident.pk)
    if scope.people > INLINE_NOTICES_MAX_PEOPLE:  # minutes of work: a worker does it, the page follows it
        from rempart.incidents.jobs import enqueue_notices

        job = enqueue_notices(incident, scope, user=request.user, actor=Actor.console(request))
        return redirect("jobs:detail", pk=job.pk)
    from rempart.incidents.notices import NoticeError, generate_notices

    try:
        documents = generate_notices(incident, scope, by=request.user, actor=Actor.console(request))
    except NoticeError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(n)s document(s) générés.") % {"n": len(documents)})
        if documents:
            messages.info(
                request,
                _(
                    "Relisez-les, puis publiez-les à chaque assureur : il ne les voit et n'en est prévenu qu'après."
                ),
            )
    return redirect("incidents:detail", pk=incident.pk)


LISTS = {Document.Kind.AFFECTED_LIST, Document.Kind.LETTER_MERGE}


def _send(request, document: Document, actor: Actor):
    """Download a document; a list of people is a disclosure of their keys, so it is recorded in the ledger."""
    if document.kind in LISTS:
        people = (document.scope.per_insurer.get(str(document.insurer_id), {}) if document.scope else {}).get(
            "people", 0
        )
        exposure.record_scope_run(
            actor, label=f"{document.incident.number}/document {document.pk}", people=people, listed=True
        )
    try:
        handle = document.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    return FileResponse(
        handle, as_attachment=True, filename=document.filename, content_type=document.content_type
    )


@login_required
@require_POST
def publish(request, pk: int, scope_pk: int, insurer_pk: int):
    """The review step: the insurer's documents of this scope become visible to it, and its members are emailed."""
    _require_security(request)
    from rempart.incidents.publication import publish as publish_notices

    incident = get_object_or_404(Incident, pk=pk)
    scope = get_object_or_404(incident.scopes, pk=scope_pk)
    insurer = get_object_or_404(Insurer, pk=insurer_pk)
    if publish_notices(incident, scope, insurer, by=request.user, request=request):
        messages.success(
            request,
            _("Notifications publiées à %(name)s : ses membres sont prévenus par courriel.")
            % {"name": insurer.name},
        )
    else:
        messages.info(
            request, _("Ces notifications étaient déjà publiées : personne n'a été prévenu de nouveau.")
        )
    return redirect("incidents:detail", pk=incident.pk)


@login_required
def download(request, pk: int, document_pk: int):
    _require_security(request)
    document = get_object_or_404(Document, pk=document_pk, incident_id=pk)
    return _send(request, document, Actor.console(request))


# --- The insurer's side: its own notices, and nothing of other insurers (404).


def _insurer_of(request) -> Insurer:
    membership = request.user.membership
    if (
        membership is None
        or membership.organisation.kind != Organisation.Kind.INSURER
        or not membership.organisation.insurer_id
    ):
        raise Http404
    return membership.organisation.insurer


@login_required
def insurer_notices(request):
    insurer = _insurer_of(request)
    documents = (
        Document.objects.filter(
            insurer=insurer, published_at__isnull=False
        )  # after the operator's review only
        .select_related("incident")
        .order_by("-created_at")
    )
    return render(request, "incidents/insurer_notices.html", {"insurer": insurer, "documents": documents})


@login_required
def insurer_download(request, document_pk: int):
    insurer = _insurer_of(request)
    document = get_object_or_404(Document, pk=document_pk, insurer=insurer, published_at__isnull=False)
    return _send(request, document, Actor.portal(request))
