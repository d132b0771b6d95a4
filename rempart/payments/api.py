"""The payments API for practice software (scope ``payments:read``): the organisation's transfers and their
remittance statements, to reconcile each bank credit with the invoices it pays.

Everything is scoped to the token's organisation: another organisation's payment reference is a 404,
the same as a reference that does not exist. Amounts are integer cents; reason labels follow the
request's ``Accept-Language`` (French by default).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count
from django.http import HttpRequest
from django.utils.translation import get_language
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from rempart.accounts.api_auth import TokenAuth
from rempart.api_errors import BadInput
from rempart.lib.api_pages import page_of, window
from rempart.payments import return_reasons, statements
from rempart.payments.models import Payment, PaymentItem
from rempart.payments.portal_views import download, visible_payments

router = Router(tags=["paiements"])

MAX_PAGE_SIZE = 200


class ReasonOut(Schema):
    code: str = Field(..., examples=["reduced_to_guarantee"])
    label: str


class PaymentLineOut(Schema):
    kind: str = Field(
        ...,
        description=(
            "claim : facture payée ; review : écart après examen ; credit_note : avoir (négatif) ; "
            "return : virement rejeté par la banque, repris ; rejected : facture rejetée (0)"
        ),
    )
    invoice_number: str | None = Field(None, description="Absent pour un virement repris")
    care_date: dt.date | None = None
    invoice_date: dt.date | None = None
    claimed_cents: int | None = Field(None, description="Demandé à la complémentaire (lignes de facture)")
    accepted_cents: int | None = Field(None, description="Accepté pour la facture (lignes de facture)")
    paid_cents: int = Field(..., description="Ce que la ligne ajoute à ce virement (négatif : repris)")
    claim_status: str | None = Field(
        None, description="accepted, partially_accepted, rejected (statut de la facture)"
    )
    reasons: list[ReasonOut] = []
    returned_payment: str | None = Field(None, description="Pour un virement repris : sa référence")


class PaymentOut(Schema):
    reference: str = Field(..., description="Référence du virement (SEPA EndToEndId, sur le relevé bancaire)")
    run_reference: str
    execution_date: dt.date = Field(..., description="Date d'exécution demandée à la banque")
    created_at: dt.datetime
    amount_cents: int
    currency: str = "EUR"
    status: str = Field(..., description="sent, held, settled ou returned")
    iban_masked: str = Field(..., description="Pays, clé et 4 derniers caractères ; jamais l'IBAN en clair")
    bic: str
    held_reason: str | None = Field(None, description="no_iban, iban_on_hold ou iban_failed (statut held)")
    held_reason_label: str | None = None
    return_reason: str | None = Field(None, description="Code ISO 20022 du rejet bancaire (statut returned)")
    return_reason_label: str | None = None
    returned_at: dt.datetime | None = None
    settled_at: dt.datetime | None = None
    line_count: int
    statement_pdf_url: str
    statement_csv_url: str


class PaymentDetailOut(PaymentOut):
    lines: list[PaymentLineOut]
    lines_total_cents: int = Field(..., description="Somme des lignes : égale à amount_cents")


class PaymentPageOut(Schema):
    count: int = Field(..., description="Nombre de virements qui répondent aux filtres")
    page: int
    page_size: int
    next: str | None = Field(None, description="URL de la page suivante, absente à la dernière")
    previous: str | None = None
    results: list[PaymentOut]


class PaymentErrorOut(Schema):
    detail: str
    field: str | None = None


_ERRORS = {401: PaymentErrorOut, 403: PaymentErrorOut, 404: PaymentErrorOut}


def _date(value: str | None, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(field, "date attendue au format AAAA-MM-JJ") from None


def _summary(payment: Payment, line_count: int) -> dict:
    base = f"/api/v1/payments/{payment.reference}/statement"
    return {
        "reference": payment.reference,
        "run_reference": payment.run.reference,
        "execution_date": payment.run.execution_date,
        "created_at": payment.created_at,
        "amount_cents": payment.amount_cents,
        "status": payment.status,
        "iban_masked": payment.iban_masked,
        "bic": payment.bic,
        "held_reason": payment.held_reason or None,
        "held_reason_label": statements.held_label(payment.held_reason) if payment.held_reason else None,
        "return_reason": payment.return_reason or None,
        "return_reason_label": (
            return_reasons.label(payment.return_reason) if payment.status == Payment.Status.RETURNED else None
        ),
        "returned_at": payment.returned_at,
        "settled_at": payment.settled_at,
        "line_count": line_count,
        "statement_pdf_url": f"{base}.pdf",
        "statement_csv_url": f"{base}.csv",
    }


def _own_payment(request: HttpRequest, reference: str) -> Payment:
    payment = (
        visible_payments(request.api_token.organisation)
        .filter(reference=reference)
        .select_related("run")
        .first()
    )
    if payment is None:
        raise HttpError(404, "paiement inconnu pour votre organisation")
    return payment


@router.get(
    "/payments",
    auth=TokenAuth("payments:read"),
    response={200: PaymentPageOut, 400: PaymentErrorOut, **_ERRORS},
    summary="Les virements reçus par l'organisation, les plus récents d'abord",
    description=(
        "Filtres sur la date d'exécution : `since` et `until` (AAAA-MM-JJ, inclus). Pages de `page_size` "
        f"virements (1 à {MAX_PAGE_SIZE}, 50 par défaut) ; `next` donne la page suivante. Les lignes d'un "
        "virement : `GET /payments/{reference}`."
    ),
)
def list_payments(
    request: HttpRequest,
    since: str | None = None,
    until: str | None = None,
    page: int = 1,
    page_size: int = 50,
):
    first, last = _date(since, "since"), _date(until, "until")
    if first and last and first > last:
        raise BadInput("until", "la date de fin précède la date de début")
    if page < 1:
        raise BadInput("page", "entier à partir de 1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadInput("page_size", f"entre 1 et {MAX_PAGE_SIZE}")
    payments = visible_payments(request.api_token.organisation)
    if first:
        payments = payments.filter(run__execution_date__gte=first)
    if last:
        payments = payments.filter(run__execution_date__lte=last)
    rows = list(payments.order_by("-run__execution_date", "-pk")[window(page, page_size)])
    counts = _line_counts([p.pk for p in rows])
    return page_of(
        "/api/v1/payments",
        {"since": first, "until": last, "page_size": page_size},
        page=page,
        page_size=page_size,
        count=payments.count(),
        results=[_summary(p, counts.get(p.pk, 0)) for p in rows],
    )


def _line_counts(payment_ids: list[int]) -> dict[int, int]:
    rows = (
        PaymentItem.objects.filter(payment_id__in=payment_ids)
        .values("payment_id")
        .annotate(n=Count("pk"))
        .values_list("payment_id", "n")
    )
    return dict(rows)


@router.get(
    "/payments/{reference}",
    auth=TokenAuth("payments:read"),
    response={200: PaymentDetailOut, **_ERRORS},
    summary="Un virement et ses lignes (le relevé en JSON)",
    description=(
        "Chaque ligne : la facture (numéro, dates), ce qui était demandé et accepté, ce que la ligne ajoute au "
        "virement (`paid_cents`), les motifs. La somme des `paid_cents` est `amount_cents`."
    ),
)
def read_payment(request: HttpRequest, reference: str):
    payment = _own_payment(request, reference)
    statement = statements.build_statement(payment, get_language())
    lines = [
        {
            "kind": line.kind,
            "invoice_number": line.invoice_number or None,
            "care_date": line.care_date,
            "invoice_date": line.invoice_date,
            "claimed_cents": line.claimed_cents,
            "accepted_cents": line.accepted_cents,
            "paid_cents": line.paid_cents,
            "claim_status": line.status or None,
            "reasons": [{"code": code, "label": text} for code, text in line.reasons],
            "returned_payment": line.returned_reference or None,
        }
        for line in statement.lines
    ]
    return {
        **_summary(payment, len(lines)),
        "lines": lines,
        "lines_total_cents": statement.total_cents,
    }


@router.get(
    "/payments/{reference}/statement.pdf",
    auth=TokenAuth("payments:read"),
    response={**_ERRORS},
    summary="Le relevé d'un virement, en PDF",
)
def statement_pdf(request: HttpRequest, reference: str):
    return download(statements.build_statement(_own_payment(request, reference), get_language()), "pdf")


@router.get(
    "/payments/{reference}/statement.csv",
    auth=TokenAuth("payments:read"),
    response={**_ERRORS},
    summary="Le relevé d'un virement, en CSV (tableur : « ; », montants en euros)",
)
def statement_csv(request: HttpRequest, reference: str):
    return download(statements.build_statement(_own_payment(request, reference), get_language()), "csv")


@router.get(
    "/payments/{reference}/{name}", auth=TokenAuth("payments:read"), response=_ERRORS, include_in_schema=False
)
def unknown_file(request: HttpRequest, reference: str, name: str):
    """Any other file of a payment: a JSON 404 like the rest of the API, not Django's page."""
    raise HttpError(404, "fichier inconnu : statement.pdf ou statement.csv")
