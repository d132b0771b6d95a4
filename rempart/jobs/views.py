"""A job's page (live progress, then its result) and the operator's jobs console. Thin: rules in access.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts.events import record_event
from rempart.jobs import access, queue
from rempart.jobs.kinds import get_kind
from rempart.jobs.models import Job
from rempart.jobs.runner import live_progress

PAGE_SIZE = 50


def _visible_job(request, pk) -> Job:
    job = Job.objects.filter(pk=pk).select_related("created_by").first()
    if job is None or not access.can_see(request.user, job):
        raise Http404  # another's job does not exist, for this person
    return job


def state_of(job: Job) -> dict:
    """What the page and its poller show; nothing personal (the result is a summary of counts and ids)."""
    done, total, note = live_progress(job)
    kind = get_kind(job.kind)
    percent = None
    if total:
        percent = max(0, min(100, int(100 * done / total)))
    elif job.status == Job.Status.SUCCEEDED:
        percent = 100
    result_url = (job.result or {}).get("url") if isinstance(job.result, dict) else None
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "label": str(kind.label) if kind else job.kind,
        "status": job.status,
        "status_label": str(job.get_status_display()),
        "finished": job.finished,
        "done": done,
        "total": total,
        "percent": percent,
        "note": note,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "failure_code": job.failure_code,
        "failure_message": job.failure_message,
        "result_url": result_url if _on_this_site(result_url) else None,
        # The result is where the person wanted to go (a prepared run): the page takes them there when done.
        "follow": job.status == Job.Status.SUCCEEDED
        and bool((job.result or {}).get("follow") if isinstance(job.result, dict) else False),
    }


def _on_this_site(url) -> bool:
    """A path of this site only: no scheme, no host, no protocol-relative or backslash trick."""
    return (
        isinstance(url, str)
        and url.startswith("/")
        and not url.startswith(("//", "/\\"))
        and "\\" not in url
        and url.isprintable()
    )


@login_required
def job_detail(request, pk):
    job = _visible_job(request, pk)
    state = state_of(job)
    if state["follow"] and state["result_url"]:
        return redirect(state["result_url"])
    return render(request, "jobs/detail.html", {"job": job, "state": state})


@login_required
def job_state(request, pk):
    job = _visible_job(request, pk)
    response = JsonResponse(state_of(job))
    response["Cache-Control"] = "no-store"
    return response


@login_required
def console(request):
    if not access.can_see_console(request.user):
        raise Http404
    jobs = Job.objects.select_related("created_by").order_by("-created_at")
    status = request.GET.get("status", "")
    if status in Job.Status.values:
        jobs = jobs.filter(status=status)
    else:
        status = ""
    kind = request.GET.get("kind", "")
    if kind and get_kind(kind) is not None:
        jobs = jobs.filter(kind=kind)
    else:
        kind = ""
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    from rempart.jobs.kinds import all_kinds
    from rempart.jobs.stats import live_workers, snapshot

    rows = [(job, state_of(job)) for job in page.object_list]
    return render(
        request,
        "jobs/console.html",
        {
            "page": page,
            "rows": rows,
            "status": status,
            "kind": kind,
            "statuses": Job.Status.choices,
            "kinds": sorted((name, str(k.label)) for name, k in all_kinds().items()),
            "counts": snapshot(),
            "workers": live_workers(),
            "can_manage": access.can_manage(request.user),
        },
    )


@login_required
@require_POST
def job_retry(request, pk):
    if not access.can_manage(request.user):
        raise Http404
    job = get_object_or_404(Job, pk=pk)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Cochez « Je confirme » pour continuer."))
        return redirect("jobs:console")
    with transaction.atomic():
        if queue.retry(job):
            record_event(
                "job.retried", request=request, job=str(job.pk), kind=job.kind, failure=job.failure_code
            )
            messages.success(request, _("La tâche est relancée."))
        else:
            messages.error(request, _("Seule une tâche échouée peut être relancée."))
    return redirect("jobs:console")


@login_required
@require_POST
def job_cancel(request, pk):
    if not access.can_manage(request.user):
        raise Http404
    job = get_object_or_404(Job, pk=pk)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Cochez « Je confirme » pour continuer."))
        return redirect("jobs:console")
    with transaction.atomic():
        if queue.cancel(job):
            record_event("job.cancelled", request=request, job=str(job.pk), kind=job.kind)
            messages.success(request, _("La tâche est annulée."))
        else:
            messages.error(request, _("Seule une tâche en file peut être annulée."))
    return redirect("jobs:console")
