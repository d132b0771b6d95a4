"""*Paiements*: a professional organisation's transfers, each with the claims it settled and its statement.

Owner and staff of the organisation see its payments; anyone else gets a plain 404, also for a payment
reference of another organisation (looked up within the organisation only, so a guessed reference
tells nothing). Downloads are not security events: a statement carries the organisation's own invoice
numbers and amounts and a masked IBAN, nothing of a patient (docs/payments.md, "Professionals' view").
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from rempart.accounts import roles
from rempart.accounts.models import Organisation
from rempart.claims.forms import FrenchDateField
from rempart.lib.db_routing import reads_may_lag
from rempart.payments import return_reasons, statements
from rempart.payments.models import Payment, PaymentRun

PAGE_SIZE = 50


def visible_payments(organisation: Organisation):
    """The transfers a professional sees: those of approved runs (a prepared run may still be cancelled)."""
    return Payment.objects.filter(
        organisation=organisation, run__status=PaymentRun.Status.APPROVED
    ).select_related("run")


class PaymentFilterForm(forms.Form):
    since = FrenchDateField(label=_("Du"), required=False)
    until = FrenchDateField(label=_("Au"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("la date de fin précède la date de début"))
        return data


def _professional(request) -> Organisation:
    organisation = roles.organisation_of(request.user)
    if organisation is None or organisation.kind != Organisation.Kind.PROFESSIONAL:
        raise Http404
    return organisation


def _payment(request, reference: str) -> Payment:
    return get_object_or_404(visible_payments(_professional(request)), reference=reference)


@login_required
@reads_may_lag
def payment_list(request):
    organisation = _professional(request)
    filters = PaymentFilterForm(request.GET)
    payments = visible_payments(organisation)
    if filters.is_valid():
        if filters.cleaned_data["since"]:
            payments = payments.filter(run__execution_date__gte=filters.cleaned_data["since"])
        if filters.cleaned_data["until"]:
            payments = payments.filter(run__execution_date__lte=filters.cleaned_data["until"])
    ordered = payments.order_by("-run__execution_date", "-pk")
    page = Paginator(ordered, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "organisation": organisation,
        "page": page,
        "filters": filters,
        "filter_query": query.urlencode(),
    }
    return render(request, "payments/portal/list.html", context, status=200 if filters.is_valid() else 400)


@login_required
@reads_may_lag
def payment_detail(request, reference: str):
    payment = _payment(request, reference)
    statement = statements.build_statement(payment, get_language())
    context = {
        "payment": payment,
        "statement": statement,
        "held_reason": statements.held_label(payment.held_reason) if payment.held_reason else "",
        "return_reason": return_reasons.label(payment.return_reason),
    }
    return render(request, "payments/portal/detail.html", context)


def download(statement: statements.Statement, kind: str) -> HttpResponse:
    """The statement as an attachment (``pdf`` or ``csv``), never kept by a shared cache."""
    if kind == "pdf":
        content, content_type = statements.statement_pdf(statement), "application/pdf"
    else:
        content, content_type = statements.statement_csv(statement), "text/csv; charset=utf-8"
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{statement.file_stem}.{kind}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def statement_pdf(request, reference: str):
    return download(statements.build_statement(_payment(request, reference), get_language()), "pdf")


@login_required
def statement_csv(request, reference: str):
    return download(statements.build_statement(_payment(request, reference), get_language()), "csv")
