"""Insurer members' billing pages: their statements (PDF and detail file), balance and ageing, money received.

Everything is scoped to the member's insurer: another insurer's statement number is the same 404 as one that
does not exist. The balance and the ageing come from the money ledger alone (rempart.accounting.books).
Downloading a detail file is a ledger row and a security event (rempart.billing.detail.download) and asks for
a fresh second factor: the file names the insurer's adherents.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from rempart.accounting import books
from rempart.accounting import service as accounting
from rempart.accounts import roles
from rempart.accounts.models import Organisation
from rempart.accounts.stepup import step_up_required
from rempart.billing import detail, statement_pdf, statements
from rempart.billing.models import Receipt, Statement
from rempart.ledger.actor import Actor
from rempart.lib.db_routing import reads_may_lag

PAGE_SIZE = 50


def insurer_of(request) -> Organisation:
    """The member's insurer organisation; a 404 for anyone else (professionals, operator staff, outsiders)."""
    organisation = roles.organisation_of(request.user)
    if (
        organisation is None
        or organisation.kind != Organisation.Kind.INSURER
        or organisation.insurer_id is None
    ):
        raise Http404
    return organisation


def own_statement(organisation: Organisation, number: str) -> Statement:
    statement = Statement.objects.filter(insurer_id=organisation.insurer_id, number=number).first()
    if statement is None:
        raise Http404
    return statement


def position(insurer_id: int):
    """The insurer's balance (what it owes, cents) and its ageing today, from the money ledger."""
    account = accounting.insurer_receivable(insurer_id)
    today = timezone.localdate()
    return books.balance(account, today) * account.normal_sign, books.ageing(account, today)


@login_required
@reads_may_lag
def statement_list(request):
    organisation = insurer_of(request)
    balance, ageing = position(organisation.insurer_id)
    page = Paginator(
        Statement.objects.filter(insurer_id=organisation.insurer_id).order_by("-period_end", "-pk"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    context = {
        "organisation": organisation,
        "page": page,
        "balance_cents": balance,
        "ageing": ageing,
        "recent_receipts": Receipt.objects.filter(insurer_id=organisation.insurer_id)[:5],
    }
    return render(request, "billing/insurer/statements.html", context)


@login_required
@reads_may_lag
def statement_detail(request, number: str):
    organisation = insurer_of(request)
    statement = own_statement(organisation, number)
    context = {
        "organisation": organisation,
        "statement": statement,
        "receipts": statement.receipts.order_by("-received_on", "-pk"),
        "corrections": statement.corrections.order_by("pk"),
        "by_domain": statement_pdf.summary_rows(statement, "by_domain"),
    }
    return render(request, "billing/insurer/statement.html", context)


@login_required
def statement_pdf_view(request, number: str):
    """The PDF in the member's language (or ``?langue=fr|en``), after its SHA-256 is checked."""
    organisation = insurer_of(request)
    statement = own_statement(organisation, number)
    try:
        content, sha256, language = statements.verified_pdf_for(
            statement, statement_pdf.requested_language(request), user=request.user, request=request
        )
    except statements.StatementTampered:
        return render(
            request, "billing/insurer/refused.html", {"statement": statement, "what": "pdf"}, status=409
        )
    return statement_pdf.response(statement, content, sha256, language)


@login_required
@step_up_required
def statement_detail_csv(request, number: str):
    organisation = insurer_of(request)
    statement = own_statement(organisation, number)
    try:
        return detail.download(statement, Actor.portal(request), request=request, user=request.user)
    except detail.DetailError as exc:
        context = {"statement": statement, "what": "detail", "message": str(exc)}
        return render(request, "billing/insurer/refused.html", context, status=409)


@login_required
def receipts(request):
    organisation = insurer_of(request)
    page = Paginator(
        Receipt.objects.filter(insurer_id=organisation.insurer_id).select_related("statement"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    balance, ageing = position(organisation.insurer_id)
    context = {"organisation": organisation, "page": page, "balance_cents": balance, "ageing": ageing}
    return render(request, "billing/insurer/receipts.html", context)
