"""The coverage rule: given what the registry holds for one matched beneficiary, the answer for one domain and date.

Pure: no database, no HTTP. The recording gate gathers the facts and calls ``decide``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from rempart.registry.models import NO_TIERS_PAYANT_CODES


@dataclass(frozen=True)
class ContractFacts:
    status: str
    start_date: dt.date
    end_date: dt.date | None


@dataclass(frozen=True)
class CoverageFacts:
    start: dt.date
    end: dt.date | None


@dataclass(frozen=True)
class GuaranteeFacts:
    tp_code: str
    rate_percent: int | None
    amount_cents: int | None
    pec_required: bool

    @property
    def amount_euros(self) -> Decimal | None:
        return None if self.amount_cents is None else Decimal(self.amount_cents) / 100


@dataclass(frozen=True)
class Decision:
    covered: bool
    terms: GuaranteeFacts | None
    valid_until: dt.date | None


NOT_COVERED = Decision(covered=False, terms=None, valid_until=None)


def _within(day: dt.date, start: dt.date, end: dt.date | None) -> bool:
    return start <= day and (end is None or day <= end)


def decide(
    contract: ContractFacts, coverage: CoverageFacts, guarantee: GuaranteeFacts | None, care_date: dt.date
) -> Decision:
    """Covered when the contract is active and open, the person covered, and the domain granted in tiers payant."""
    if contract.status != "active" or not _within(care_date, contract.start_date, contract.end_date):
        return NOT_COVERED
    if not _within(care_date, coverage.start, coverage.end):
        return NOT_COVERED
    if guarantee is None or guarantee.tp_code in NO_TIERS_PAYANT_CODES:
        return NOT_COVERED
    ends = [d for d in (contract.end_date, coverage.end) if d is not None]
    return Decision(covered=True, terms=guarantee, valid_until=min(ends) if ends else None)
