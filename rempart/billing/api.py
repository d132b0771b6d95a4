"""The billing API for insurers' systems (scope ``billing:read``): their statements and detail files.

Scoped to the token's insurer: another insurer's statement number answers the same 404 as one that does not
exist. Amounts are integer cents. The detail file is the CSV of docs/formats/billing-detail-v1.md; each
download is a ledger row (purpose ``billing``) and a security event, and an altered file is refused (409).
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from rempart.accounts.api_auth import TokenAuth
from rempart.accounts.models import Organisation
from rempart.api_errors import BadInput
from rempart.billing import detail, receipts, statement_pdf, statements
from rempart.billing.models import Statement
from rempart.ledger.actor import Actor
from rempart.lib.api_pages import page_of, window

router = Router(tags=["facturation des assureurs"])

MAX_PAGE_SIZE = 200


class StatementOut(Schema):
    number: str = Field(..., examples=["REL-123456789-20261130-1"])
    kind: str = Field(..., description="regular : relevé ; correction : relevé rectificatif")
    corrects: str | None = Field(None, description="Pour un rectificatif : le numéro du relevé rectifié")
    period_start: dt.date
    period_end: dt.date
    status: str = Field(..., description="issued, partly_paid ou paid")
    paid_cents: int = Field(..., description="Payé aux professionnels pour votre compte")
    reversals_cents: int = Field(..., description="Avoirs et annulations (négatif ou nul)")
    fees_cents: int = Field(..., description="Frais de gestion de l'opérateur")
    total_cents: int = Field(..., description="Total dû")
    currency: str = "EUR"
    due_date: dt.date
    issued_at: dt.datetime
    pdf_sha256: str = Field(..., description="Empreinte du PDF en français")
    pdf_en_sha256: str | None = Field(None, description="Empreinte du PDF en anglais (mêmes montants)")
    pdf_url: str = Field(
        ..., description="Le PDF dans la langue demandée par Accept-Language (fr par défaut)"
    )
    detail_sha256: str | None = Field(None, description="Empreinte du fichier détaillé, une fois produit")
    detail_rows: int | None = Field(None, description="Nombre de lignes du fichier détaillé (sans l'en-tête)")
    detail_url: str


class StatementDetailOut(StatementOut):
    summary: dict = Field(
        ..., description="Par domaine et par catégorie de professionnel : lignes et montants"
    )
    received_cents: int = Field(..., description="Paiements reçus affectés à ce relevé")


class StatementPageOut(Schema):
    count: int
    page: int
    page_size: int
    next: str | None = None
    previous: str | None = None
    results: list[StatementOut]


class BillingErrorOut(Schema):
    detail: str
    field: str | None = None


_ERRORS = {401: BillingErrorOut, 403: BillingErrorOut, 404: BillingErrorOut}


def _insurer_id(request: HttpRequest) -> int:
    organisation = request.api_token.organisation
    if organisation.kind != Organisation.Kind.INSURER or organisation.insurer_id is None:
        raise HttpError(403, "réservé aux jetons des assureurs")
    return organisation.insurer_id


def _own(request: HttpRequest, number: str) -> Statement:
    statement = (
        Statement.objects.filter(insurer_id=_insurer_id(request), number=number)
        .select_related("corrects")
        .first()
    )
    if statement is None:
        raise HttpError(404, "relevé inconnu pour votre organisme")
    return statement


def _summary(statement: Statement) -> dict:
    return {
        "number": statement.number,
        "kind": statement.kind,
        "corrects": statement.corrects.number if statement.corrects_id else None,
        "period_start": statement.period_start,
        "period_end": statement.period_end,
        "status": statement.status,
        "paid_cents": statement.paid_cents,
        "reversals_cents": statement.reversals_cents,
        "fees_cents": statement.fees_cents,
        "total_cents": statement.total_cents,
        "due_date": statement.due_date,
        "issued_at": statement.issued_at,
        "pdf_sha256": statement.pdf_sha256,
        "pdf_en_sha256": statement.pdf_en_sha256 or None,
        "pdf_url": f"/api/v1/insurer/statements/{statement.number}/pdf",
        "detail_sha256": statement.detail_sha256 or None,
        "detail_rows": statement.detail_rows if statement.detail_sha256 else None,
        "detail_url": f"/api/v1/insurer/statements/{statement.number}/detail",
    }


def _date(value: str | None, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(field, "date attendue au format AAAA-MM-JJ") from None


@router.get(
    "/insurer/statements",
    auth=TokenAuth("billing:read"),
    response={200: StatementPageOut, 400: BillingErrorOut, **_ERRORS},
    summary="Les relevés de l'opérateur pour votre organisme, les plus récents d'abord",
    description=(
        "Filtres sur la fin de période : `since` et `until` (AAAA-MM-JJ, inclus). Pages de `page_size` relevés "
        f"(1 à {MAX_PAGE_SIZE}, 50 par défaut)."
    ),
)
def list_statements(
    request: HttpRequest,
    since: str | None = None,
    until: str | None = None,
    page: int = 1,
    page_size: int = 50,
):
    insurer_id = _insurer_id(request)
    first, last = _date(since, "since"), _date(until, "until")
    if first and last and first > last:
        raise BadInput("until", "la date de fin précède la date de début")
    if page < 1:
        raise BadInput("page", "entier à partir de 1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadInput("page_size", f"entre 1 et {MAX_PAGE_SIZE}")
    rows = Statement.objects.filter(insurer_id=insurer_id).select_related("corrects")
    if first:
        rows = rows.filter(period_end__gte=first)
    if last:
        rows = rows.filter(period_end__lte=last)
    shown = rows.order_by("-period_end", "-pk")[window(page, page_size)]
    return page_of(
        "/api/v1/insurer/statements",
        {"since": first, "until": last, "page_size": page_size},
        page=page,
        page_size=page_size,
        count=rows.count(),
        results=[_summary(s) for s in shown],
    )


@router.get(
    "/insurer/statements/{number}",
    auth=TokenAuth("billing:read"),
    response={200: StatementDetailOut, **_ERRORS},
    summary="Un relevé : ses montants, son résumé par domaine, les paiements reçus",
)
def read_statement(request: HttpRequest, number: str):
    statement = _own(request, number)
    received = receipts.received_cents(statement)  # posted, not returned (not a receipt waiting or discarded)
    return {**_summary(statement), "summary": statement.summary or {}, "received_cents": received}


@router.get(
    "/insurer/statements/{number}/detail",
    auth=TokenAuth("billing:read"),
    response={409: BillingErrorOut, **_ERRORS},
    summary="Le fichier détaillé d'un relevé (CSV, une ligne par ligne de facture payée)",
    description=(
        "Format : docs/formats/billing-detail-v1.md (« ; », UTF-8, montants en centimes). L'en-tête "
        "`X-Content-SHA256` donne l'empreinte du fichier, la même que `detail_sha256`. Chaque téléchargement "
        "est inscrit au registre des divulgations."
    ),
)
def statement_detail(request: HttpRequest, number: str):
    statement = _own(request, number)
    try:
        return detail.download(statement, Actor.api(request), request=request)
    except detail.DetailError as exc:
        raise HttpError(409, str(exc)) from None


@router.get(
    "/insurer/statements/{number}/pdf",
    auth=TokenAuth("billing:read"),
    response={409: BillingErrorOut, **_ERRORS},
    summary="Le PDF d'un relevé, en français ou en anglais selon Accept-Language",
    description=(
        "Le PDF écrit à l'émission dans la langue demandée (`Accept-Language: en` : anglais ; sinon français), "
        "octet pour octet : `X-Content-SHA256` donne son empreinte (`pdf_sha256` ou `pdf_en_sha256`), "
        "`Content-Language` sa langue. Un PDF altéré est refusé (409)."
    ),
)
def statement_pdf_file(request: HttpRequest, number: str):
    statement = _own(request, number)
    try:
        content, sha256, language = statements.verified_pdf_for(
            statement, statement_pdf.requested_language(request), request=request
        )
    except statements.StatementTampered as exc:
        raise HttpError(409, exc.message) from None
    return statement_pdf.response(statement, content, sha256, language)
