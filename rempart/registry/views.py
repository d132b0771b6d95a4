"""Insurer pages: load rights and products files, read the result, see the registry's state in counts.

Members of an insurer see only their insurer's imports (anyone else: 404). The portal offers what the
command line offers: delta or full, a dry run (which goes past the safety share to say what a full file
would do), forcing a full file past that share (a confirmation and a fresh second factor), products files.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import roles, stepup
from rempart.accounts.models import Organisation
from rempart.jobs.queue import enqueue
from rempart.lib.db_routing import reads_may_lag
from rempart.registry import jobs as registry_jobs
from rempart.registry import portal
from rempart.registry.forms import ProductsUploadForm, RightsUploadForm
from rempart.registry.models import ImportRun

RUNS_LISTED = 50


def _insurer(request):
    organisation = roles.organisation_of(request.user)
    if organisation is None or organisation.kind != Organisation.Kind.INSURER or organisation.insurer is None:
        raise Http404
    return organisation.insurer


def _imports_page(request, insurer, *, form=None, products_form=None, status=200):
    runs = list(ImportRun.objects.filter(insurer=insurer)[:RUNS_LISTED])
    context = {
        "insurer": insurer,
        "runs": runs,
        "pending_jobs": registry_jobs.pending_uploads(insurer),
        "form": form or RightsUploadForm(),
        "products_form": products_form or ProductsUploadForm(prefix="products"),
        "step_up_methods": stepup.step_up_methods(request.user),
    }
    return render(request, "registry/imports.html", context, status=status)


@login_required
@reads_may_lag
def imports(request):
    return _imports_page(request, _insurer(request))


@login_required
@require_POST
def upload(request):
    insurer = _insurer(request)
    form = RightsUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _imports_page(request, insurer, form=form, status=400)
    force = form.cleaned_data["force"]
    if force and not stepup.second_factor_is_fresh(request):
        # Nothing is loaded: the file is not kept while the person proves their second factor.
        messages.warning(
            request,
            _(
                "Forcer un fichier complet demande une preuve récente de votre second facteur : confirmez-le, "
                "puis chargez de nouveau le fichier."
            ),
        )
        if stepup.step_up_methods(request.user):
            return stepup.step_up_redirect(request)
        return _imports_page(request, insurer, form=form, status=403)
    uploaded = form.cleaned_data["file"]
    params = {
        "insurer_id": insurer.pk,
        "mode": form.cleaned_data["mode"],
        "dry_run": form.cleaned_data["dry_run"],
        "force": force,
        "user_id": request.user.pk,
        "file_name": registry_jobs.listed_name(uploaded),
    }
    return _enqueue_upload(request, "registry.import_rights", uploaded, "rights-", params)


@login_required
@require_POST
def upload_products(request):
    insurer = _insurer(request)
    form = ProductsUploadForm(request.POST, request.FILES, prefix="products")
    if not form.is_valid():
        return _imports_page(request, insurer, products_form=form, status=400)
    uploaded = form.cleaned_data["file"]
    params = {
        "insurer_id": insurer.pk,
        "dry_run": form.cleaned_data["dry_run"],
        "file_name": registry_jobs.listed_name(uploaded),
    }
    return _enqueue_upload(request, "registry.import_products", uploaded, "products-", params)


def _enqueue_upload(request, kind: str, uploaded, prefix: str, params: dict):
    """Save the file, queue its import, and send the person to the job's page (it links to the run)."""
    name = registry_jobs.save_upload(uploaded, prefix)
    try:
        job = enqueue(
            kind,
            {"upload": name, **params},
            user=request.user,
            organisation_id=roles.organisation_of(request.user).pk,
        )
    except BaseException:
        registry_jobs.remove_upload(name)  # never a file left behind by a refused enqueue
        raise
    return redirect("jobs:detail", job.pk)


def _page_number(request) -> int:
    try:
        return int(request.GET.get("page", "1"))
    except ValueError:
        return 1


@login_required
def import_detail(request, pk: int):
    run = get_object_or_404(ImportRun, pk=pk, insurer=_insurer(request))
    page = portal.errors_page(run, _page_number(request))
    context = {
        "run": run,
        "notes": run.notes_text(),
        "has_errors": portal.has_rejected_rows(run),
        "errors": page,
        "above_threshold": bool(run.counts.get("above_threshold")),
    }
    return render(request, "registry/import_detail.html", context)


@login_required
def import_errors(request, pk: int):
    run = get_object_or_404(ImportRun, pk=pk, insurer=_insurer(request))
    if not portal.has_rejected_rows(run):
        raise Http404
    response = StreamingHttpResponse(portal.worded_errors_csv(run), content_type="text/csv; charset=utf-8")
    name = _("rejets-import-%(pk)s.csv") % {"pk": run.pk}
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def registry_state(request):
    """Counts only (see rempart.registry.portal.registry_state): no personal data, so no gate."""
    insurer = _insurer(request)
    return render(
        request, "registry/state.html", {"insurer": insurer, "state": portal.registry_state(insurer)}
    )
