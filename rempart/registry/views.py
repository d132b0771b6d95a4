"""Insurer pages: load a rights file and read the result. Members of an insurer see only their insurer's imports."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.models import Organisation
from rempart.registry.forms import RightsUploadForm
from rempart.registry.models import ImportRun
from rempart.registry.rights_import import FileRefused, import_rights


def _insurer(request):
    organisation = roles.organisation_of(request.user)
    if organisation is None or organisation.kind != Organisation.Kind.INSURER or organisation.insurer is None:
        raise Http404
    return organisation.insurer


@login_required
def imports(request):
    insurer = _insurer(request)
    runs = ImportRun.objects.filter(insurer=insurer)[:50]
    return render(
        request, "registry/imports.html", {"insurer": insurer, "runs": runs, "form": RightsUploadForm()}
    )


@login_required
@require_POST
def upload(request):
    insurer = _insurer(request)
    form = RightsUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        runs = ImportRun.objects.filter(insurer=insurer)[:50]
        return render(
            request, "registry/imports.html", {"insurer": insurer, "runs": runs, "form": form}, status=400
        )
    upload_dir = Path(settings.VAR_DIR) / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    uploaded = form.cleaned_data["file"]
    with tempfile.NamedTemporaryFile(dir=upload_dir, prefix="rights-", suffix=".csv") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
        handle.flush()
        path = Path(handle.name)
        try:
            run, _summary = import_rights(
                path,
                insurer,
                mode=form.cleaned_data["mode"],
                dry_run=form.cleaned_data["dry_run"],
                show_progress=False,
            )
        except FileRefused as exc:
            messages.error(request, _("Fichier refusé, rien n'a été modifié : %(exc)s") % {"exc": exc})
            return redirect("registry:imports")
    ImportRun.objects.filter(pk=run.pk).update(file_name=uploaded.name[:255])
    return redirect("registry:import_detail", pk=run.pk)


@login_required
def import_detail(request, pk: int):
    run = get_object_or_404(ImportRun, pk=pk, insurer=_insurer(request))
    errors = Path(run.report_dir) / "errors.csv"
    return render(request, "registry/import_detail.html", {"run": run, "has_errors": bool(run.counts.get("rejected"))
                  and errors.exists()})  # fmt: skip


@login_required
def import_errors(request, pk: int):
    run = get_object_or_404(ImportRun, pk=pk, insurer=_insurer(request))
    path = Path(run.report_dir) / "errors.csv"
    if not path.exists():
        raise Http404
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"rejets-import-{run.pk}.csv")
