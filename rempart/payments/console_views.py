"""The operator's payment runs console: the runs, preparing one, its detail, approval, cancellation, the file.

Thin: rempart.payments.runs decides and records. Operator treasury, admin and support staff see the runs; only
the treasury approves (with a fresh second factor, never their own run) and downloads the bank file (fresh
second factor too: it holds IBANs in clear). Anyone else gets a plain 404. IBANs are shown masked only.
"""

from __future__ import annotations

import functools

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from rempart.accounts.events import record_event
from rempart.accounts.stepup import second_factor_is_fresh, step_up_redirect
from rempart.lib.db_routing import reads_may_lag
from rempart.payments import runs
from rempart.payments.forms import CancelRunForm, PrepareRunForm
from rempart.payments.jobs import enqueue_preparation
from rempart.payments.models import Payment, PaymentRun

PAGE_SIZE = 50
HELD_SHOWN = 200  # held organisations listed on the detail page (the count is always exact)


def console_required(view):
    """Operator treasury, admin or support; anyone else gets a 404 (never a second-factor prompt)."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not runs.can_see_console(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _stale_second_factor(request):
    """A redirect to the second-factor prompt when this session's proof is not fresh, else None."""
    if second_factor_is_fresh(request) or not Authenticator.objects.filter(user=request.user).exists():
        return None
    return step_up_redirect(request)


def _run(reference: str) -> PaymentRun:
    return get_object_or_404(
        PaymentRun.objects.select_related("prepared_by", "approved_by", "cancelled_by"), reference=reference
    )


@console_required
@reads_may_lag
def run_list(request):
    page = Paginator(PaymentRun.objects.select_related("prepared_by", "approved_by"), 25).get_page(
        request.GET.get("page")
    )
    open_run = PaymentRun.objects.filter(status=PaymentRun.Status.PREPARED).first()
    return render(request, "payments/console/runs.html", {"page": page, "open_run": open_run})


@console_required
def run_prepare(request):
    today = timezone.localdate()
    form = PrepareRunForm(
        request.POST or None, initial={"cutoff": today, "execution_date": runs.next_business_day(today)}
    )
    if request.method == "POST" and form.is_valid():
        cutoff, execution = form.cleaned_data["cutoff"], form.cleaned_data["execution_date"]
        open_run = PaymentRun.objects.filter(status=PaymentRun.Status.PREPARED).first()
        try:  # what can be said at once is said on the form; the preparation itself is a worker's
            runs.check_dates(cutoff, execution, today=today)
            if open_run is not None:
                runs.replay_or_refuse(open_run, cutoff)  # another cut-off waits for its approval: run_open
        except runs.PaymentRunError as exc:
            form.add_error(None, exc.message)
        else:
            if open_run is not None:
                messages.info(
                    request, _("Une campagne était déjà préparée à cette date d'arrêté : la voici.")
                )
                return redirect("payments_console:detail", reference=open_run.reference)
            job = enqueue_preparation(cutoff, execution, user=request.user)
            record_event(
                "payments.run_requested", request=request, job=str(job.pk), cutoff=cutoff.isoformat(),
                execution_date=execution.isoformat(),
            )  # fmt: skip
            return redirect("jobs:detail", pk=job.pk)
    status = 400 if form.errors else 200
    return render(request, "payments/console/prepare.html", {"form": form}, status=status)


def _detail_context(request, run: PaymentRun, **extra) -> dict:
    payments = (
        run.payments.exclude(status=Payment.Status.HELD)
        .select_related("organisation__professional")
        .annotate(lines=Count("items"))
        .order_by("pk")
    )
    held = run.payments.filter(status=Payment.Status.HELD)
    held_totals = held.aggregate(count=Count("pk"), total=Sum("amount_cents"))
    held_rows = [
        (payment, runs.held_reason_label(payment.held_reason))
        for payment in held.select_related("organisation__professional").order_by("pk")[:HELD_SHOWN]
    ]
    refusal = runs.approval_refusal(run, request.user)
    return {
        "run": run,
        "page": Paginator(payments, PAGE_SIZE).get_page(request.GET.get("page")),
        "held_rows": held_rows,
        "held_count": held_totals["count"] or 0,
        "held_total": held_totals["total"] or 0,
        "approval_refusal": refusal[1] if refusal and run.status == PaymentRun.Status.PREPARED else "",
        "can_approve": refusal is None,
        "can_cancel": runs.cancel_refusal(run, request.user) is None,
        "can_download": runs.can_download(request.user) and run.status == PaymentRun.Status.APPROVED,
        "downloads": run.downloads.select_related("user").order_by("-downloaded_at")[:20],
        "cancel_form": extra.pop("cancel_form", None) or CancelRunForm(),
        **extra,
    }


@console_required
def run_detail(request, reference: str):
    run = _run(reference)
    return render(request, "payments/console/detail.html", _detail_context(request, run))


@console_required
def run_approve(request, reference: str):
    """GET: the confirmation (totals, the four-eyes rule); POST: approve. A fresh second factor first, for
    those who may approve; the others see why not (and a POST of theirs is refused and recorded)."""
    run = _run(reference)
    refusal = runs.approval_refusal(run, request.user)
    if refusal is None:
        stale = _stale_second_factor(request)
        if stale is not None:
            return stale
    status = 200
    if request.method == "POST":
        try:
            run = runs.approve_run(run, user=request.user, request=request)
        except runs.ApprovalRefused as exc:
            refusal, status = (
                (exc.code, exc.message),
                403 if exc.code in ("not_treasury", "preparer") else 400,
            )
        else:
            messages.success(
                request,
                ngettext(
                    "Campagne %(ref)s approuvée : %(n)s virement, fichier de virements émis.",
                    "Campagne %(ref)s approuvée : %(n)s virements, fichier de virements émis.",
                    run.transfer_count,
                )
                % {"ref": run.reference, "n": run.transfer_count},
            )
            return redirect("payments_console:detail", reference=run.reference)
    held = run.payments.filter(status=Payment.Status.HELD).aggregate(count=Count("pk"))["count"]
    context = {"run": run, "refusal": refusal[1] if refusal else "", "held_count": held}
    return render(request, "payments/console/approve.html", context, status=status)


@console_required
@require_POST
def run_cancel(request, reference: str):
    run = _run(reference)
    form = CancelRunForm(request.POST)
    if form.is_valid():
        try:
            runs.cancel_run(run, user=request.user, reason=form.cleaned_data["reason"], request=request)
        except runs.PaymentRunError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Campagne %(ref)s annulée.") % {"ref": run.reference})
            return redirect("payments_console:detail", reference=run.reference)
    run.refresh_from_db()
    context = _detail_context(request, run, cancel_form=form)
    return render(request, "payments/console/detail.html", context, status=400)


@console_required
def run_file(request, reference: str):
    """The stored pain.001, byte for byte, after its SHA-256 is checked; each download is recorded."""
    if not runs.can_download(request.user):
        raise Http404
    run = _run(reference)
    stale = _stale_second_factor(request)
    if stale is not None:
        return stale
    try:
        file = runs.bank_file(run, user=request.user, request=request)
    except runs.BankFileTampered as exc:
        context = _detail_context(request, run, file_error=exc.message)
        return render(request, "payments/console/detail.html", context, status=409)
    except runs.PaymentRunError:
        raise Http404 from None
    response = HttpResponse(file.content, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{file.name}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-SHA256"] = file.sha256
    return response
