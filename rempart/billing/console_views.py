"""The operator's console for insurer statements: the list, one statement, its PDF (checked against its digest).

Thin: rempart.billing.statements decides and records. Operator treasury, admin and support staff only (the
payment runs console's audience); anyone else gets a plain 404. No personal data is shown: totals by domain
and professional category, fees.
"""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from rempart.billing import statements
from rempart.billing.models import Statement
from rempart.payments import runs

PAGE_SIZE = 50


def can_see_statements(user) -> bool:
    return runs.can_see_console(user)


def console_required(view):
    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_see_statements(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@console_required
def statement_list(request):
    rows = Statement.objects.select_related("insurer").order_by(
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


@console_required
def statement_detail(request, number: str):
    statement = _statement(number)
    return render(request, "billing/console/detail.html", _context(statement))


def _context(statement: Statement, **extra) -> dict:
    return {
        "statement": statement,
        "fees": statement.summary.get("fees") or {},
        "by_domain": statement.summary.get("by_domain") or {},
        "by_category": statement.summary.get("by_category") or {},
        "corrections": statement.corrections.order_by("number"),
        **extra,
    }


@console_required
def statement_pdf(request, number: str):
    """The PDF written at issue, byte for byte, after its SHA-256 is checked; each download is recorded."""
    statement = _statement(number)
    try:
        content = statements.verified_pdf(statement, user=request.user, request=request)
    except statements.StatementTampered as exc:
        context = _context(statement, pdf_error=exc.message)
        return render(request, "billing/console/detail.html", context, status=409)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{statement.number}.pdf"'
    response["Cache-Control"] = "no-store"
    response["X-Content-SHA256"] = statement.pdf_sha256
    return response
