"""One invoice body, as the API and the lots carry it, turned into card data and a rules.Invoice.

The same schema serves ``POST /api/v1/claims`` and every line of a lot (docs/formats/claims-lot-v1.md),
so that an invoice is judged the same way whichever way it came. Money is integer cents: a float or a
string where cents are expected is an error, never rounded.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema
from pydantic import StrictInt, StrictStr, ValidationError

from rempart.claims import rules
from rempart.rights.cards import CardData, CardDataError, read_card_data

MAX_LINES = 99


class ClaimLineIn(Schema):
    code_system: Literal["LPP", "CIP13", "NGAP", "CCAM", "OTHER"] = Field(
        ..., description="LPP (dispositifs), CIP13 (médicaments), NGAP/CCAM (actes), OTHER"
    )
    code: StrictStr = Field(..., max_length=20, examples=["2290100"])
    lpp_class: Literal["A", "B", "I", "II"] | None = Field(None, description="Classe 100 % santé (LPP)")
    side: Literal["right", "left"] | None = Field(
        None, description="Œil ou oreille (verres, aides auditives)"
    )
    quantity: StrictInt = Field(..., ge=1, le=999)
    unit_price_cents: StrictInt = Field(..., ge=0, le=100_000_000, description="Prix unitaire, en centimes")
    base_cents: StrictInt = Field(..., ge=0, le=100_000_000, description="Base de remboursement de la ligne")
    amo_paid_cents: StrictInt = Field(..., ge=0, le=100_000_000, description="Payé par l'assurance maladie")
    amc_claimed_cents: StrictInt = Field(..., ge=0, le=100_000_000, description="Demandé à la complémentaire")


class ClaimIn(Schema):
    invoice_number: StrictStr = Field(
        ..., min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", examples=["F2026-000123"]
    )
    invoice_date: dt.date
    care_date: dt.date
    amc_number: StrictStr = Field(..., examples=["391689460"])
    adherent_number: StrictStr = Field(..., examples=["DEMO-0001"])
    nir: StrictStr = Field(
        ...,
        description="NIR lu sur la carte Vitale, 15 caractères clé comprise",
        examples=["285057512345623"],
    )
    birth_date: StrictStr = Field(
        ..., description="AAAA-MM-JJ ; 00 pour un jour ou un mois inconnus", examples=["1985-05-12"]
    )
    birth_rank: StrictInt | None = Field(None, ge=1, le=9)
    domain: StrictStr = Field(..., examples=["OPTI"], description="Domaine de soins (PHAR, OPTI, AUDI, …)")
    prescriber_rpps: StrictStr | None = Field(
        None, max_length=14, description="RPPS du prescripteur (11 chiffres)"
    )
    pec_number: StrictStr | None = Field(None, description="Numéro de prise en charge (optique, audiologie)")
    lines: list[ClaimLineIn] = Field(..., min_length=1, max_length=MAX_LINES)
    total_price_cents: StrictInt = Field(..., ge=0)
    total_amo_cents: StrictInt = Field(..., ge=0)
    total_amc_cents: StrictInt = Field(..., ge=0)


class InvoiceError(ValueError):
    """A field of the invoice is wrong: (invoice line or None, field path, French message) — never the value."""

    def __init__(self, errors: list[dict]) -> None:
        first = errors[0]
        super().__init__(f"{first['field']} : {first['message']}")
        self.errors = errors
        self.field = first["field"]


def from_schema(payload: ClaimIn, *, today: dt.date) -> tuple[CardData, rules.Invoice]:
    """Card data (checked as at the rights check) and the invoice; raises InvoiceError naming the field."""
    try:
        card = read_card_data(
            amc_number=payload.amc_number,
            adherent_number=payload.adherent_number,
            nir=payload.nir,
            birth_date=payload.birth_date,
            birth_rank=payload.birth_rank,
            domain=payload.domain,
            today=today,
        )
    except CardDataError as exc:
        raise InvoiceError(
            [{"line": None, "field": exc.field, "code": "card_data_invalid", "message": str(exc.message)}]
        ) from None
    invoice = rules.Invoice(
        invoice_number=payload.invoice_number,
        invoice_date=payload.invoice_date,
        care_date=payload.care_date,
        domain=card.domain,
        prescriber_rpps=(payload.prescriber_rpps or "").strip() or None,
        pec_number=(payload.pec_number or "").strip().upper() or None,
        lines=tuple(
            rules.InvoiceLine(
                number=number,
                code_system=line.code_system,
                code=line.code.strip(),
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                base_cents=line.base_cents,
                amo_paid_cents=line.amo_paid_cents,
                amc_claimed_cents=line.amc_claimed_cents,
                lpp_class=line.lpp_class,
                side=line.side,
            )
            for number, line in enumerate(payload.lines, start=1)
        ),
        total_price_cents=payload.total_price_cents,
        total_amo_cents=payload.total_amo_cents,
        total_amc_cents=payload.total_amc_cents,
    )
    return card, invoice


def from_dict(data: object, *, today: dt.date) -> tuple[CardData, rules.Invoice]:
    """A lot's line: the same schema as the API body, errors as (line, field, message)."""
    try:
        payload = ClaimIn.model_validate(data)
    except ValidationError as exc:
        raise InvoiceError([_schema_error(error) for error in exc.errors()[:20]]) from None
    return from_schema(payload, today=today)


def _schema_error(error: dict) -> dict:
    location = [str(part) for part in error.get("loc", ())]
    line = None
    if len(location) >= 2 and location[0] == "lines" and location[1].isdigit():
        line = int(location[1]) + 1
        field = f"lines[{location[1]}]" + "".join(f".{p}" for p in location[2:])
    else:
        field = ".".join(location) or "facture"
    return {"line": line, "field": field, "code": error.get("type", "invalid"), "message": _message(error)}


_MESSAGES = {
    "missing": "champ obligatoire",
    "int_type": "nombre entier attendu (centimes)",
    "string_type": "texte attendu",
    "date_from_datetime_parsing": "date AAAA-MM-JJ attendue",
    "date_parsing": "date AAAA-MM-JJ attendue",
    "date_type": "date AAAA-MM-JJ attendue",
    "literal_error": "valeur non prévue",
    "greater_than_equal": "valeur trop petite",
    "less_than_equal": "valeur trop grande",
    "too_short": "trop court",
    "too_long": "trop long",
    "string_too_short": "trop court",
    "string_too_long": "trop long",
    "string_pattern_mismatch": "caractères non autorisés",
    "list_type": "liste attendue",
    "model_type": "objet attendu",
    "extra_forbidden": "champ inconnu",
}


def _message(error: dict) -> str:
    return _MESSAGES.get(error.get("type", ""), "valeur invalide")
