"""The operator's console for insurer statements: the list, one statement, its PDF (checked against its digest,
in the reader's language), its detail file, and the correction form.

Thin: rempart.billing.statements decides and records; rempart.billing.detail serves and records the detail
file. Operator treasury, admin and support staff see the console (the payment runs console's audience);
anyone else gets a plain 404. Issuing a correction bills an insurer: treasury and admin only, with a fresh
second factor, like the treasury's money actions. The detail file names adherents: a fresh second factor too,
and each download is a ledger row. No personal data is shown here: totals by care domain (by name) and
professional category, fees by component.
"""

from __future__ import annotations

import functools

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rempart.accounts import roles
from rempart.accounts.models import Role
from rempart.accounts.stepup import step_up_required
from rempart.authorizations.templatetags.money import euros
from rempart.billing import detail, statement_pdf, statements
from rempart.billing.models import Statement
from rempart.ledger.actor import Actor
from rempart.lib.db_routing import reads_may_lag
from rempart.payments import runs

PAGE_SIZE = 50
# Who may issue a correction statement from the console: it bills an insurer (support staff only read).
CORRECTOR_ROLES = {Role.TREASURY, Role.ADMIN}


def can_see_statements(user) -> bool:
    return runs.can_see_console(user)


def can_correct(user) -> bool:
    return bool(user and user.is_authenticated and roles.is_operator(user, CORRECTOR_ROLES))


def console_required(view):
    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_see_statements(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def corrector_required(view):
    """Treasury or admin, then a fresh second factor; anyone else a 404 (never a second-factor prompt)."""
    guarded = step_up_required(view)

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_correct(request.user):
            raise Http404
        return guarded(request, *args, **kwargs)

    return wrapper


@console_required
@reads_may_lag
def statement_list(request):
    rows = Statement.objects.select_related("insurer", "corrects").order_by(
        "-period_end", "insurer__amc_number", "number"
    )
    amc = (request.GET.get("assureur") or "").strip()[:9]
    if amc:
        rows = rows.filter(insurer__amc_number=amc)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "billing/console/list.html", {"page": page, "amc": amc})


def _statement(number: str) -> Statement:
    return get_object_or_404(
        Statement.objects.select_related("insurer", "corrects", "issued_by", "fee_transaction"), number=number
    )


def _context(request, statement: Statement, **extra) -> dict:
    return {
        "statement": statement,
        "fees": statement.summary.get("fees") or {},
        "by_domain": statement_pdf.summary_rows(statement, "by_domain"),
        "by_category": statement_pdf.summary_rows(statement, "by_category"),
        "corrections": statement.corrections.select_related("issued_by").order_by("pk"),
        "can_correct": can_correct(request.user),
        **extra,
    }


@console_required
@reads_may_lag
def statement_detail(request, number: str):
    statement = _statement(number)
    return render(request, "billing/console/detail.html", _context(request, statement))


@console_required
def statement_pdf_view(request, number: str):
    """The PDF written at issue in the reader's language, byte for byte, after its SHA-256 is checked;
    each download is recorded."""
    statement = _statement(number)
    try:
        content, sha256, language = statements.verified_pdf_for(
            statement, statement_pdf.requested_language(request), user=request.user, request=request
        )
    except statements.StatementTampered as exc:
        context = _context(request, statement, pdf_error=exc.message)
        return render(request, "billing/console/detail.html", context, status=409)
    return statement_pdf.response(statement, content, sha256, language)


@console_required
@step_up_required
def statement_detail_csv(request, number: str):
    """The detail file (it names adherents: fresh second factor), written if need be, digest checked, recorded
    as a ledger row of the operator's reader (channel console)."""
    statement = _statement(number)
    try:
        return detail.download(statement, Actor.console(request), request=request, user=request.user)
    except detail.DetailError as exc:
        context = _context(request, statement, detail_error=str(exc))
        return render(request, "billing/console/detail.html", context, status=409)


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Motif"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Figure sur le relevé rectificatif que reçoit l'assureur."),
        error_messages={"required": gettext_lazy("Indiquez le motif du relevé rectificatif.")},
    )
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "Je confirme l'émission d'un relevé rectificatif : il facture à l'assureur ce que la période n'a pas "
            "encore facturé, et ne pourra plus être modifié."
        ),
        error_messages={
            "required": gettext_lazy("Cochez la confirmation pour émettre le relevé rectificatif.")
        },
    )


@corrector_required
def statement_correct(request, number: str):
    """Issue a correction statement of this statement's period (``statements.issue_correction``)."""
    statement = _statement(number)
    original = statement.corrects or statement
    form = CorrectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            correction = statements.issue_correction(
                original, user=request.user, reason=form.cleaned_data["reason"]
            )
        except statements.StatementError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("Relevé rectificatif %(n)s émis : total %(total)s.")
                % {"n": correction.number, "total": euros(correction.total_cents)},
            )
            return redirect("billing_console:detail", correction.number)
    context = {"statement": original, "form": form, "corrections": original.corrections.order_by("pk")}
    return render(request, "billing/console/correct.html", context, status=400 if form.errors else 200)
