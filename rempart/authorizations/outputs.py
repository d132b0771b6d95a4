"""What the PEC engine answers: a decision per line and for the request, with stable reason codes.

Plain frozen values that the service stores as JSON (``as_dict``) and the API, the portal and FHIR
render; :func:`history_items` is what later decisions must know of this one (renewal periods).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from .inputs import LENS, HistoryItem, PecRequest

ACCEPTED, PARTIALLY_ACCEPTED, REFUSED = "accepted", "partially_accepted", "refused"


class Reason(enum.StrEnum):
    """Machine-readable reason codes, per line (stable: API clients switch on them)."""

    # the line is refused
    RIGHTS_CLOSED = "rights_closed"  # rights not open for the domain on the delivery date
    NO_TIERS_PAYANT = "no_tiers_payant"  # no tiers payant terms for the domain on the delivery date
    RENEWAL_TOO_EARLY = "renewal_too_early"  # a device was covered on this eye / ear within the period
    # how the accepted amount was set
    FULL_COVER = "full_cover_100_sante"  # class A / I, contrat responsable: remainder covered up to the PLV
    GUARANTEE = "guarantee"  # the product's guarantee (rate and / or forfait)
    FLOOR = "equipment_floor"  # raised to the floor for this equipment (contrat responsable grid or product)
    EQUIPMENT_CEILING = "equipment_ceiling"  # held to the ceiling for this equipment
    FRAME_CEILING = "frame_ceiling"  # frame held to its sub-ceiling
    EAR_CEILING = "ear_ceiling"  # held to the per-ear ceiling (AMO share included, or AMC only)
    NOT_RESPONSIBLE = "not_responsible"  # no contrat responsable floors and ceilings
    NO_AMC_SHARE = "no_amc_share"  # accepted, but the guarantee gives nothing on this line
    # an early renewal that is allowed
    RENEWAL_SIGHT_CHANGE = "renewal_sight_change"
    RENEWAL_MEDICAL = "renewal_medical_condition"


REFUSALS = frozenset({Reason.RIGHTS_CLOSED, Reason.NO_TIERS_PAYANT, Reason.RENEWAL_TOO_EARLY})


@dataclass(frozen=True)
class LineDecision:
    line: int  # 1-based, as in the request
    lpp_code: str
    label: str
    item: str
    lpp_class: str
    side: str | None
    status: str  # accepted | refused
    price_cents: int
    base_cents: int
    amo_cents: int
    amc_cents: int  # committed by the insurer
    patient_cents: int
    reasons: tuple[str, ...]
    explanation: str  # French
    previous_delivery: dt.date | None = None  # renewal refusals: the date of the previous covered device

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "lpp_code": self.lpp_code,
            "label": self.label,
            "item": self.item,
            "class": self.lpp_class,
            "side": self.side,
            "status": self.status,
            "price_cents": self.price_cents,
            "base_cents": self.base_cents,
            "amo_cents": self.amo_cents,
            "amc_cents": self.amc_cents,
            "patient_cents": self.patient_cents,
            "reasons": list(self.reasons),
            "explanation": self.explanation,
            "previous_delivery": self.previous_delivery.isoformat() if self.previous_delivery else None,
        }


@dataclass(frozen=True)
class Totals:
    price_cents: int
    base_cents: int
    amo_cents: int
    amc_cents: int
    patient_cents: int

    def as_dict(self) -> dict:
        return {
            "price_cents": self.price_cents,
            "base_cents": self.base_cents,
            "amo_cents": self.amo_cents,
            "amc_cents": self.amc_cents,
            "patient_cents": self.patient_cents,
        }


@dataclass(frozen=True)
class PecDecision:
    status: str  # accepted | partially_accepted | refused
    domain: str
    delivery_date: dt.date
    valid_until: dt.date | None  # delivery date + grace period; None when refused
    equipment: str | None  # optics: the grid key of the glasses, e.g. "simple_complex"
    lines: tuple[LineDecision, ...]
    totals: Totals
    reasons: tuple[str, ...]  # the refusal reasons met, in line order
    explanation: str  # French
    rule_version: str
    data_version: str

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "domain": self.domain,
            "delivery_date": self.delivery_date.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "equipment": self.equipment,
            "lines": [line.as_dict() for line in self.lines],
            "totals": self.totals.as_dict(),
            "reasons": list(self.reasons),
            "explanation": self.explanation,
            "rule_version": self.rule_version,
            "data_version": self.data_version,
        }


def history_items(request: PecRequest, decision: PecDecision) -> tuple[HistoryItem, ...]:
    """What later decisions must know of this one: its accepted lines (store them, or rebuild from the PEC)."""
    return tuple(
        HistoryItem(
            domain=decision.domain,
            delivery_date=decision.delivery_date,
            item=line.item,
            side=line.side,
            correction=request.prescription.correction(line.side)
            if line.item == LENS and line.side
            else None,
        )
        for line in decision.lines
        if line.status == ACCEPTED
    )
