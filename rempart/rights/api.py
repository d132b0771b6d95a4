"""POST /api/v1/rights/check: one patient, one domain, one date. No batch form, by design."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from django.utils import timezone
from ninja import Field, Router, Schema

from rempart.accounts.api_auth import TokenAuth
from rempart.api_errors import BadInput
from rempart.gate import Actor, check_rights
from rempart.rights.cards import CardDataError, read_card_data

router = Router(tags=["droits"])


class RightsCheckIn(Schema):
    amc_number: str = Field(
        ..., description="Numéro AMC (carte de tiers payant), 9 chiffres", examples=["391689460"]
    )
    adherent_number: str = Field(
        ..., description="Numéro d'adhérent (carte de tiers payant)", examples=["DEMO-0001"]
    )
    nir: str = Field(
        ..., description="NIR lu sur la carte Vitale, 15 caractères clé comprise (celui du bénéficiaire ou de l'ouvrant droit)",
        examples=["285057512345623"],
    )  # fmt: skip
    birth_date: str = Field(
        ..., description="Date de naissance AAAA-MM-JJ ; 00 pour un jour ou un mois inconnus (dates « lunaires »)",
        examples=["1985-05-12"],
    )  # fmt: skip
    birth_rank: int | None = Field(
        None, ge=1, le=9, description="Rang de naissance quand le NIR est celui de l'ouvrant droit"
    )
    domain: str = Field(
        ...,
        description="Domaine de soins : PHAR, MEDE, LABO, RADL, AUXI, DENT, OPTI, AUDI, HOSP, TRAN, SAGE",
        examples=["OPTI"],
    )
    care_date: dt.date | None = Field(
        None, description="Date des soins ; aujourd'hui par défaut ; ni future, ni trop ancienne"
    )


class TermsOut(Schema):
    tp_code: str = Field(..., description="Code imprimé sur la carte pour ce domaine", examples=["PEC"])
    rate_percent: int | None = Field(
        None, description="Taux en % de la base de remboursement", examples=[100]
    )
    amount_eur: Decimal | None = Field(None, description="Forfait en euros, s'il y en a un")
    pec_required: bool = Field(..., description="Une prise en charge est requise avant les soins")


class RightsCheckOut(Schema):
    outcome: Literal["covered", "not_covered", "no_match"] = Field(
        ..., description="covered : tiers payant accordé ; not_covered : pas pour ce domaine à cette date ; no_match : rien ne correspond"
    )  # fmt: skip
    reference: str = Field(
        ..., description="Référence de la vérification, à conserver", examples=["RC-7K3M-QZXP-2AFD"]
    )
    checked_at: dt.datetime
    domain: str
    care_date: dt.date
    terms: TermsOut | None = Field(None, description="Conditions de tiers payant, seulement si covered")
    valid_until: dt.date | None = Field(
        None, description="Date jusqu'à laquelle la réponse tient (fin du contrat ou de la couverture)"
    )


class ErrorOut(Schema):
    detail: str
    field: str | None = None
    code: str | None = Field(
        None,
        description="Refus de la surveillance ou coupure : rate_limited (429, voir Retry-After), switched_off (503)",
    )


@router.post(
    "/rights/check",
    auth=TokenAuth("rights:check", confirm_with_lookup=True),
    response={
        200: RightsCheckOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        429: ErrorOut,
        503: ErrorOut,
    },  # fmt: skip
    summary="Vérifier les droits d'un patient pour un domaine et une date",
    description=(
        "Confirme, sans rien divulguer d'autre, si l'assureur du patient accorde le tiers payant pour ce domaine à cette "
        "date. Une absence de correspondance donne toujours la même réponse (no_match), quelle que soit la donnée "
        "qui ne correspond pas. Chaque appel est enregistré dans le registre des divulgations."
    ),
)
def rights_check(request, payload: RightsCheckIn):
    try:
        card = read_card_data(**payload.dict(), today=timezone.localdate())
    except CardDataError as exc:
        raise BadInput(exc.field, exc.message) from None
    answer = check_rights(Actor.api(request), card)
    terms = None
    if answer.terms is not None:
        terms = TermsOut(
            tp_code=answer.terms.tp_code,
            rate_percent=answer.terms.rate_percent,
            amount_eur=answer.terms.amount_euros,
            pec_required=answer.terms.pec_required,
        )
    return RightsCheckOut(
        outcome=answer.outcome,
        reference=answer.reference,
        checked_at=answer.checked_at,
        domain=answer.domain,
        care_date=answer.care_date,
        terms=terms,
        valid_until=answer.valid_until,
    )
