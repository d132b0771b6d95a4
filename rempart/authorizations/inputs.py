"""What the PEC engine decides on: the request (prescription and quote lines) and what the gate adds.

The gate gathers the beneficiary's facts (:class:`BeneficiaryFacts`, with the product's
:class:`GuaranteeTerms`) and PEC history (:class:`HistoryItem`); a bad request raises
:class:`PecInputError`. Plain frozen values with the vocabulary (domains, items, sides) every stage
of the engine shares, so that the checks, the rule set and the decision import them from one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from rempart.lib.identifiers import LunarDate

from .optics import Correction

OPTI, AUDI = "OPTI", "AUDI"
DOMAINS = (OPTI, AUDI)
LENS, FRAME, DEVICE = "lens", "frame", "device"
RIGHT, LEFT = "right", "left"
SIDES = (RIGHT, LEFT)


@dataclass(frozen=True)
class Prescription:
    date: dt.date
    prescriber_id: str  # RPPS (11 digits) or numéro AM / ADELI (9 digits)
    right: Correction | None = None  # optics only
    left: Correction | None = None
    # The prescriber attests one of the listed medical conditions (glaucoma, AMD, cataract, amblyopia,
    # diabetes…): lenses may be renewed without a minimum period (domain reference §4.2).
    medical_condition: bool = False

    def correction(self, side: str) -> Correction | None:
        return self.right if side == RIGHT else self.left


@dataclass(frozen=True)
class QuoteLine:
    lpp_code: str
    lpp_class: str  # A | B (optics), I | II (audiology)
    side: str | None  # right | left: the eye for a lens, the ear for a device; None for a frame
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class PecRequest:
    domain: str  # OPTI | AUDI
    delivery_date: dt.date
    prescription: Prescription
    lines: tuple[QuoteLine, ...]

    def as_dict(self) -> dict:
        p = self.prescription
        return {
            "domain": self.domain,
            "delivery_date": self.delivery_date.isoformat(),
            "prescription": {
                "date": p.date.isoformat(),
                "prescriber_id": p.prescriber_id,
                "right": p.right.as_dict() if p.right else None,
                "left": p.left.as_dict() if p.left else None,
                "medical_condition": p.medical_condition,
            },
            "lines": [
                {
                    "lpp_code": line.lpp_code,
                    "class": line.lpp_class,
                    "side": line.side,
                    "quantity": line.quantity,
                    "unit_price_cents": line.unit_price_cents,
                }
                for line in self.lines
            ],
        }


@dataclass(frozen=True)
class GuaranteeTerms:
    """The product's terms for the domain on the delivery date (registry ``Guarantee``)."""

    rate_percent: int | None
    amount_cents: int | None
    ceilings: Mapping[str, int | None] = field(default_factory=dict)  # cents, keys of products-v1 §3


@dataclass(frozen=True)
class BeneficiaryFacts:
    birth_date: LunarDate
    rights_start: dt.date  # rights open for the domain from (latest of contract and coverage start)
    rights_end: dt.date | None  # … until (earliest of contract and coverage end), None: open
    product_responsible: bool
    # None when the product has no terms for the domain on the delivery date, or no tiers payant there.
    guarantee: GuaranteeTerms | None


@dataclass(frozen=True)
class HistoryItem:
    """One line of a previous PEC at Rempart (accepted line of a PEC not cancelled)."""

    domain: str
    delivery_date: dt.date
    item: str  # lens | frame | device
    side: str | None
    correction: Correction | None = None  # lenses: the correction it was made for, when known


class PecInputError(ValueError):
    """Bad input, nothing to decide or store. ``line`` is 1-based (None: the request as a whole).

    ``errors`` holds every problem found (this one first), each with its line, field and French message.
    """

    def __init__(self, line: int | None, field: str, message: str) -> None:
        super().__init__(f"{'ligne ' + str(line) if line else 'demande'}, {field} : {message}")
        self.line = line
        self.field = field
        self.message = message
        self.errors: tuple[PecInputError, ...] = (self,)

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}
