"""The claims API: one invoice (``POST /claims``), a lot (``POST /claims/lots``), and one's own claims (``GET``).

An answer carries the adjudication of this invoice only (status, amounts, reason codes per line) and the
ledger reference; nothing of the person. A miss is the same ``no_match`` as at the rights check.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import get_language
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from rempart.accounts.api_auth import TokenAuth
from rempart.api_errors import BadLines
from rempart.claims import lots, postings, rules
from rempart.claims.intake import ClaimIn, InvoiceError, from_schema
from rempart.claims.models import Claim, ClaimLot
from rempart.claims.reasons import label as reason_label
from rempart.claims.service import ClaimConflict, CreditRefused, credit_claim, submit_claim
from rempart.gate import Actor

router = Router(tags=["factures"])


class ReasonOut(Schema):
    code: str = Field(..., examples=["pec_amount_exceeded"])
    label: str


class ClaimLineOut(Schema):
    line: int
    code: str
    status: str = Field(..., description="accepted, reduced, rejected ou pending (en examen)")
    claimed_cents: int
    accepted_cents: int
    reasons: list[ReasonOut]


class ClaimOut(Schema):
    outcome: str = Field(
        ..., description="adjudicated : facture jugée ; no_match : aucun bénéficiaire ne correspond"
    )
    reference: str = Field(..., description="Référence du registre des divulgations")
    invoice_number: str
    status: str | None = Field(
        None,
        description="accepted, partially_accepted, rejected ou pending_review (en examen par l'opérateur)",
    )
    claimed_cents: int | None = None
    accepted_cents: int | None = Field(None, description="Montant accepté, payé au prochain virement")
    lines: list[ClaimLineOut] = []
    review_reasons: list[ReasonOut] = []
    replayed: bool = False


class ErrorLineOut(Schema):
    line: int | None = None
    field: str
    message: str


class ClaimErrorOut(Schema):
    detail: str
    field: str | None = None
    code: str | None = None
    line: int | None = Field(
        None, description="Lot refusé : la ligne du fichier en cause, quand il y en a une"
    )
    errors: list[ErrorLineOut] = []


def to_schema(claim: Claim, *, reference: str, replayed: bool = False) -> ClaimOut:
    language = (get_language() or "fr")[:2]
    return ClaimOut(
        outcome="adjudicated",
        reference=reference,
        invoice_number=claim.invoice_number,
        status=claim.status,
        claimed_cents=claim.claimed_cents,
        accepted_cents=claim.accepted_cents,
        lines=[
            ClaimLineOut(
                line=line.number,
                code=line.code,
                status=line.status,
                claimed_cents=line.amc_claimed_cents,
                accepted_cents=line.accepted_cents,
                reasons=[ReasonOut(code=code, label=reason_label(code, language)) for code in line.reasons],
            )
            for line in claim.lines.order_by("number")
        ],
        review_reasons=[
            ReasonOut(code=code, label=reason_label(code, language))
            for code in claim.decision.get("review_reasons", [])
        ],
        replayed=replayed,
    )


_ERRORS = {400: ClaimErrorOut, 401: ClaimErrorOut, 403: ClaimErrorOut, 409: ClaimErrorOut, 429: ClaimErrorOut}


@router.post(
    "/claims",
    auth=TokenAuth("claims:write"),
    response={200: ClaimOut, **_ERRORS, 413: ClaimErrorOut, 503: ClaimErrorOut},
    summary="Envoyer une facture (part complémentaire) et recevoir son jugement",
    description=(
        "Le patient est identifié comme à la vérification des droits. La facture est jugée aussitôt : acceptée, "
        "acceptée en partie, rejetée (motifs par ligne) ou en examen. Le même corps avec le même numéro de facture "
        "rejoue la même réponse ; un autre corps avec ce numéro est un conflit (409)."
    ),
)
def create_claim(request: HttpRequest, payload: ClaimIn):
    today = timezone.localdate()
    try:
        card, invoice = from_schema(payload, today=today)
        outcome = submit_claim(Actor.api(request), card, invoice, channel=Claim.Channel.API, today=today)
    except InvoiceError as exc:
        raise BadLines(exc.field, exc.errors[0]["message"], exc.errors) from None
    except rules.ClaimInputError as exc:
        raise BadLines(exc.field, exc.message, [e.as_dict() for e in exc.errors]) from None
    except ClaimConflict as exc:
        raise HttpError(409, str(exc)) from None
    if outcome.claim is None:
        return ClaimOut(
            outcome="no_match", reference=outcome.reference, invoice_number=invoice.invoice_number
        )
    return to_schema(outcome.claim, reference=outcome.reference, replayed=outcome.replayed)


class LotOut(Schema):
    lot_number: str
    status: str = Field(
        ...,
        description="accepted (ARL positif) ; processing : lot accepté en entier, factures en cours de jugement "
        "(202, suivre status_url) ; un lot refusé en entier répond 400",
    )
    invoices: int
    counts: dict[str, int]
    results_url: str = Field(
        ..., description="Résultat par facture (RSP), CSV (404 tant que le lot est en cours)"
    )
    status_url: str | None = Field(None, description="Avancement d'un lot en cours de jugement (202)")
    replayed: bool = False


class LotJobOut(Schema):
    status: str = Field(..., description="queued, running, retrying, succeeded, failed, cancelled")
    done: int = Field(..., description="Factures jugées")
    total: int | None
    lot_number: str | None = None
    results_url: str | None = Field(None, description="Une fois le lot jugé (status succeeded)")
    failure_code: str = ""
    failure_message: str = ""


@router.post(
    "/claims/lots",
    auth=TokenAuth("claims:write"),
    response={
        200: LotOut,
        202: LotOut,
        **_ERRORS,
        413: ClaimErrorOut,
        415: ClaimErrorOut,
        503: ClaimErrorOut,
    },
    summary="Envoyer un lot de factures (format rempart-claims-lot v1, JSON Lines)",
    description=(
        "Le corps est le fichier du lot (docs/formats/claims-lot-v1.md). Un lot faux en entier (en-tête, organisation, "
        "nombre ou total, encodage, troncature) est refusé sans rien changer (400 avec un code). Sinon chaque facture a "
        "son résultat ; renvoyer le même lot ne change rien. Un lot de plus de REMPART_CLAIMS_INLINE_LOT_MAX factures "
        "(500) est jugé en tâche de fond : 202, status « processing », puis suivre status_url."
    ),
)
def create_lot(request: HttpRequest):
    from rempart.claims.jobs import receive_lot_via_api

    organisation = request.api_token.organisation
    received = receive_lot_via_api(
        Actor.api(request), organisation, request
    )  # LotRejected: 400 (rempart.api)
    results_url = f"/api/v1/claims/lots/{received.lot_number}/results.csv"
    if received.lot is None:
        return Status(
            202,
            LotOut(
                lot_number=received.lot_number,
                status="processing",
                invoices=received.invoices,
                counts={},
                results_url=results_url,
                status_url=f"/api/v1/claims/lots/jobs/{received.job_id}",
            ),
        )
    lot = received.lot
    return LotOut(
        lot_number=lot.lot_number,
        status=lot.status,
        invoices=lot.invoice_count,
        counts=lot.counts,
        results_url=results_url,
        replayed=received.replayed,
    )


@router.get(
    "/claims/lots/jobs/{job_id}",
    auth=TokenAuth("claims:write"),
    response={200: LotJobOut, 401: ClaimErrorOut, 403: ClaimErrorOut, 404: ClaimErrorOut},
    summary="L'avancement d'un lot jugé en tâche de fond",
)
def lot_job(request: HttpRequest, job_id: str):
    import uuid

    from rempart.jobs.models import Job
    from rempart.jobs.runner import live_progress

    try:
        uuid.UUID(job_id)
    except ValueError:
        raise HttpError(404, "lot inconnu pour votre organisation") from None
    job = Job.objects.filter(
        pk=job_id, kind="claims.import_lot", organisation_id=request.api_token.organisation_id
    ).first()
    if job is None:
        raise HttpError(404, "lot inconnu pour votre organisation")
    done, total, _note = live_progress(job)
    result = job.result if isinstance(job.result, dict) else {}
    lot_number = result.get("lot_number")
    return LotJobOut(
        status=job.status,
        done=done,
        total=total,
        lot_number=lot_number,
        results_url=f"/api/v1/claims/lots/{lot_number}/results.csv" if lot_number else None,
        failure_code=job.failure_code,
        failure_message=job.failure_message,
    )


@router.get(
    "/claims/lots/{lot_number}/results.csv",
    auth=TokenAuth("claims:write"),
    response={401: ClaimErrorOut, 403: ClaimErrorOut, 404: ClaimErrorOut},
    summary="Le résultat d'un lot, facture par facture (RSP), en CSV",
)
def lot_results(request: HttpRequest, lot_number: str):
    lot = ClaimLot.objects.filter(
        organisation_id=request.api_token.organisation_id,
        lot_number=lot_number,
        status=ClaimLot.Status.ACCEPTED,
    ).first()
    if lot is None:
        raise HttpError(404, "lot inconnu pour votre organisation")
    return lots.results_response(lot)


class CreditNoteIn(Schema):
    credit_note_number: str = Field(
        ..., min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
    )
    amount_cents: int = Field(..., gt=0, description="Montant rendu, en centimes (au plus ce qui reste dû)")
    reason: str = Field(..., min_length=1, max_length=200)


class CreditNoteOut(Schema):
    credit_note_number: str
    invoice_number: str
    amount_cents: int
    claim_worth_cents: int = Field(..., description="Ce que la facture rapporte encore après ses avoirs")


@router.post(
    "/claims/{invoice_number}/credit-notes",
    auth=TokenAuth("claims:write"),
    response={
        200: CreditNoteOut,
        400: ClaimErrorOut,
        401: ClaimErrorOut,
        403: ClaimErrorOut,
        404: ClaimErrorOut,
    },
    summary="Émettre un avoir sur une de ses factures acceptées",
    description="Rejouable : le même numéro d'avoir avec le même montant renvoie le même avoir.",
)
def create_credit_note(request: HttpRequest, invoice_number: str, payload: CreditNoteIn):
    claim = Claim.objects.filter(
        organisation_id=request.api_token.organisation_id, invoice_number=invoice_number
    ).first()
    if claim is None:
        raise HttpError(404, "facture inconnue pour votre organisation")
    try:
        note = credit_claim(
            Actor.api(request),
            claim,
            number=payload.credit_note_number,
            amount_cents=payload.amount_cents,
            reason=payload.reason,
        )
    except CreditRefused as exc:
        raise HttpError(400, str(exc)) from None
    claim.refresh_from_db()
    return CreditNoteOut(
        credit_note_number=note.number,
        invoice_number=claim.invoice_number,
        amount_cents=note.amount_cents,
        claim_worth_cents=postings.worth(claim),
    )


@router.get(
    "/claims/lots/{lot_number}/results",
    auth=TokenAuth("claims:write"),
    response={200: dict, 401: ClaimErrorOut, 403: ClaimErrorOut, 404: ClaimErrorOut},
    summary="Le résultat d'un lot, facture par facture (RSP), en JSON",
)
def lot_results_json(request: HttpRequest, lot_number: str):
    lot = ClaimLot.objects.filter(
        organisation_id=request.api_token.organisation_id,
        lot_number=lot_number,
        status=ClaimLot.Status.ACCEPTED,
    ).first()
    if lot is None:
        raise HttpError(404, "lot inconnu pour votre organisation")
    return lots.results_document(lot)


# After the lot routes: /claims/lots must not be read as an invoice number.
@router.get(
    "/claims/{invoice_number}",
    auth=TokenAuth("claims:write"),
    response={200: ClaimOut, 401: ClaimErrorOut, 403: ClaimErrorOut, 404: ClaimErrorOut},
    summary="Relire le jugement d'une de ses factures",
)
def read_claim(request: HttpRequest, invoice_number: str):
    claim = Claim.objects.filter(
        organisation_id=request.api_token.organisation_id, invoice_number=invoice_number
    ).first()
    if claim is None:
        raise HttpError(404, "facture inconnue pour votre organisation")
    return to_schema(claim, reference=claim.ledger_reference)
