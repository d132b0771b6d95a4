"""GET /api/v1/ledger/anchors: the ledger's signed anchors, for an insurer's software to fetch and keep."""

from __future__ import annotations

from ninja import Field, Router, Schema
from ninja.errors import HttpError

from rempart.accounts.api_auth import TokenAuth
from rempart.accounts.models import Organisation
from rempart.ledger import publication

router = Router(tags=["registre des divulgations"])


class AnchorsOut(Schema):
    format: str = Field(..., examples=["rempart-ledger-anchor/1"])
    key_id: str = Field(..., description="Empreinte de la clé publique (16 chiffres hexadécimaux)")
    public_key: str = Field(..., description="Clé publique Ed25519 (PEM) qui vérifie les signatures")
    anchors: list[dict] = Field(
        ..., description="Les ancres signées, telles que publiées, de la plus ancienne"
    )
    next_after: int | None = Field(None, description="S'il y en a d'autres : la valeur de `after` suivante")


@router.get(
    "/ledger/anchors",
    auth=TokenAuth("ledger:read"),
    response=AnchorsOut,
    summary="Ancres signées du registre des divulgations",
    description=(
        "Chaque ancre signe la tête de toutes les chaînes du registre à un instant donné (Ed25519). Conservez-les "
        "hors de Rempart : elles prouvent plus tard qu'aucune ligne antérieure n'a été retirée. "
        "`after` : le numéro de la dernière ancre déjà reçue."
    ),
)
def list_anchors(request, after: int = 0, limit: int = 500):
    if request.api_token.organisation.kind != Organisation.Kind.INSURER:
        raise HttpError(403, "réservé aux jetons des assureurs")
    if not 1 <= limit <= 1000 or after < 0:
        raise HttpError(400, "limit : entre 1 et 1000 ; after : positif ou nul")
    return publication.anchor_list(after=after, limit=limit)
