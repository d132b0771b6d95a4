"""POST /api/v1/pec: a prise en charge for one quote (optics or audiology), decided at once.

The answer carries amounts and reasons for this quote only: no identity, no other guarantee, no history
beyond "a device was already covered on this ear within the period" (with its date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from django.utils import timezone
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from rempart.accounts.api_auth import TokenAuth
from rempart.api_errors import BadInput, BadLines
from rempart.authorizations import rules
from rempart.authorizations.optics import Correction, CorrectionError
from rempart.authorizations.service import PecConflict, request_pec
from rempart.gate import Actor
from rempart.rights.cards import CardDataError, read_card_data

router = Router(tags=["prise en charge"])


class CorrectionIn(Schema):
    sphere: str = Field(..., examples=["-2.25"], description="Sphère en dioptries")
    cylinder: str = Field(
        "0", examples=["-0.50"], description="Cylindre en dioptries (l'un ou l'autre signe)"
    )
    addition: str = Field("0", examples=["0"], description="Addition en dioptries (verres progressifs)")


class PrescriptionIn(Schema):
    date: dt.date = Field(..., description="Date de l'ordonnance")
    prescriber_id: str = Field(..., examples=["10001234567"], description="RPPS (11 chiffres) ou n° AM (9)")
    right: CorrectionIn | None = Field(None, description="Œil droit (optique)")
    left: CorrectionIn | None = Field(None, description="Œil gauche (optique)")
    medical_condition: bool = Field(
        False, description="Pathologie attestée permettant un renouvellement anticipé"
    )


class LineIn(Schema):
    lpp_code: str = Field(..., examples=["2000001"], description="Code LPP du catalogue")
    lpp_class: Literal["A", "B", "I", "II"] = Field(..., alias="class", description="Classe 100 % santé")
    side: Literal["right", "left"] | None = Field(None, description="Œil (verre) ou oreille (aide auditive)")
    quantity: int = Field(1, ge=1, le=2)
    unit_price_eur: Decimal = Field(..., gt=0, max_digits=9, decimal_places=2, examples=["49.90"])


class PecIn(Schema):
    amc_number: str = Field(..., examples=["391689460"])
    adherent_number: str = Field(..., examples=["DEMO-0001"])
    nir: str = Field(
        ...,
        description="NIR lu sur la carte Vitale, 15 caractères clé comprise",
        examples=["285057512345623"],
    )
    birth_date: str = Field(
        ..., description="AAAA-MM-JJ ; 00 pour un jour ou un mois inconnus", examples=["1985-05-12"]
    )
    birth_rank: int | None = Field(None, ge=1, le=9)
    domain: Literal["OPTI", "AUDI"]
    delivery_date: dt.date = Field(..., description="Date de délivrance prévue")
    prescription: PrescriptionIn
    lines: list[LineIn] = Field(..., min_length=1, max_length=10)


class LineOut(Schema):
    line: int
    lpp_code: str
    label: str
    status: Literal["accepted", "refused"]
    price_eur: Decimal
    base_eur: Decimal = Field(..., description="Base de remboursement")
    amo_eur: Decimal = Field(..., description="Part estimée de l'assurance maladie obligatoire")
    amc_eur: Decimal = Field(..., description="Montant pris en charge par l'assureur (engagé)")
    patient_eur: Decimal = Field(..., description="Reste à charge du patient")
    reasons: list[str] = Field(
        ..., description="Codes : full_cover_100_sante, guarantee, renewal_too_early, …"
    )
    explanation: str
    previous_delivery: dt.date | None = Field(
        None, description="Renouvellement refusé : date de l'équipement précédent"
    )


class TotalsOut(Schema):
    price_eur: Decimal
    base_eur: Decimal
    amo_eur: Decimal
    amc_eur: Decimal
    patient_eur: Decimal


class PecOut(Schema):
    outcome: Literal["decided", "no_match"] = Field(
        ..., description="no_match : rien ne correspond à la carte"
    )
    reference: str = Field(..., description="Référence de la demande dans le registre des divulgations")
    number: str | None = Field(None, examples=["PEC-7K3M-QZXP"])
    status: Literal["accepted", "partially_accepted", "refused"] | None = None
    valid_until: dt.date | None = None
    explanation: str | None = None
    lines: list[LineOut] = []
    totals: TotalsOut | None = None
    rule_version: str | None = None
    data_version: str | None = None
    replayed: bool = Field(
        False, description="Même clé d'idempotence, même demande : la décision déjà rendue"
    )


class LineErrorOut(Schema):
    line: int | None
    field: str
    message: str


class PecErrorOut(Schema):
    detail: str
    field: str | None = None
    code: str | None = None
    errors: list[LineErrorOut] = []


def _cents(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _eur(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def _correction(data: CorrectionIn | None, line_field: str) -> Correction | None:
    if data is None:
        return None
    try:
        return Correction.of(data.sphere, data.cylinder, data.addition)
    except CorrectionError as exc:
        raise BadInput(f"prescription.{line_field}.{exc.field}", exc.message) from None


@router.post(
    "/pec",
    auth=TokenAuth("pec:write"),
    response={
        200: PecOut,
        400: PecErrorOut,
        401: PecErrorOut,
        403: PecErrorOut,
        409: PecErrorOut,
        429: PecErrorOut,
        503: PecErrorOut,
    },
    summary="Demander une prise en charge (optique, audiologie) pour un devis",
    description=(
        "Décide immédiatement : accordée, accordée en partie ou refusée, avec le montant engagé par ligne et un motif "
        "par ligne. Rien d'autre n'est divulgué. Un en-tête `Idempotency-Key` rend la demande rejouable sans doublon."
    ),
)
def create_pec(request, payload: PecIn):
    # A domain the organisation does not practise is refused by the gate (403, recorded), like the rights check.
    try:
        card = read_card_data(
            amc_number=payload.amc_number, adherent_number=payload.adherent_number, nir=payload.nir,
            birth_date=payload.birth_date, birth_rank=payload.birth_rank, domain=payload.domain,
            today=timezone.localdate(),
        )  # fmt: skip
    except CardDataError as exc:
        raise BadInput(exc.field, exc.message) from None
    # Rights are judged on the delivery date (which may be ahead): the card data carry it as the care date.
    card = dataclasses.replace(card, care_date=payload.delivery_date)
    prescription = rules.Prescription(
        date=payload.prescription.date,
        prescriber_id=payload.prescription.prescriber_id,
        right=_correction(payload.prescription.right, "right"),
        left=_correction(payload.prescription.left, "left"),
        medical_condition=payload.prescription.medical_condition,
    )
    lines = tuple(
        rules.QuoteLine(line.lpp_code, line.lpp_class, line.side, line.quantity, _cents(line.unit_price_eur))
        for line in payload.lines
    )
    pec_request = rules.PecRequest(payload.domain, payload.delivery_date, prescription, lines)
    try:
        outcome = request_pec(
            Actor.api(request), card, pec_request, idempotency_key=request.headers.get("Idempotency-Key", "")
        )
    except rules.PecInputError as exc:
        raise BadLines(exc.field, str(exc), [e.as_dict() for e in exc.errors]) from None
    except PecConflict as exc:
        raise HttpError(409, str(exc)) from None
    if outcome.pec is None:
        return PecOut(outcome="no_match", reference=outcome.reference)
    return to_schema(outcome)


def to_schema(outcome) -> PecOut:
    pec = outcome.pec
    decision = pec.decision
    totals = decision["totals"]
    return PecOut(
        outcome="decided",
        reference=outcome.reference,
        number=pec.number,
        status=pec.status,
        valid_until=pec.valid_until,
        explanation=decision["explanation"],
        lines=[
            LineOut(
                line=line["line"],
                lpp_code=line["lpp_code"],
                label=line["label"],
                status=line["status"],
                price_eur=_eur(line["price_cents"]),
                base_eur=_eur(line["base_cents"]),
                amo_eur=_eur(line["amo_cents"]),
                amc_eur=_eur(line["amc_cents"]),
                patient_eur=_eur(line["patient_cents"]),
                reasons=line["reasons"],
                explanation=line["explanation"],
                previous_delivery=line["previous_delivery"],
            )  # fmt: skip
            for line in decision["lines"]
        ],
        totals=TotalsOut(**{key.replace("_cents", "_eur"): _eur(value) for key, value in totals.items()}),
        rule_version=pec.rule_version,
        data_version=pec.data_version,
        replayed=outcome.replayed,
    )
