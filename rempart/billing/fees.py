"""The operator's fees: which schedule is in force on a day, and the arithmetic (integer cents, one rounding).

- **Schedule of a day**: the insurer's latest ``FeeSchedule`` whose ``effective_from`` is on or before the day;
  on a day before the insurer's first schedule (or for an insurer without any), the default schedule's (insurer
  null) in force that day; no schedule at all: no fee that day. A change mid-period therefore applies per day.
- **Unit fees** (per rights check, per PEC, per invoice paid) are whole cents times whole counts: exact.
- **The share of what was paid** (basis points) is the only division. For each day, ``net paid that day ×
  basis points`` is an exact integer in hundredths of a basis point of a cent; the statement sums them and
  divides by 10 000 **once**, rounding half up (0.5 cent → 1 cent), so a statement never carries a per-day
  rounding error. A period whose net paid is negative (more credit notes than claims) bears no share (0, never
  a negative fee): the credit notes themselves are billed to the insurer's benefit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from rempart.billing.models import FeeSchedule

BASIS_POINTS = 10_000


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves up; both integers, numerator ≥ 0."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def schedules_by_day(insurer_id: int, days: Iterable[dt.date]) -> dict[dt.date, FeeSchedule | None]:
    """The schedule in force on each day for this insurer (its own, else the default), in one query."""
    days = sorted(days)
    if not days:
        return {}
    rows = list(
        FeeSchedule.objects.filter(effective_from__lte=days[-1])
        .filter(insurer_id__in=[insurer_id])
        .order_by("-effective_from")
    )
    defaults = list(
        FeeSchedule.objects.filter(effective_from__lte=days[-1], insurer__isnull=True).order_by(
            "-effective_from"
        )
    )
    return {day: _in_force(rows, day) or _in_force(defaults, day) for day in days}


def _in_force(schedules: list[FeeSchedule], day: dt.date) -> FeeSchedule | None:
    return next((schedule for schedule in schedules if schedule.effective_from <= day), None)


@dataclass
class DayCounts:
    """What happened on one day that fees are counted on."""

    rights_checks: int = 0
    pecs: int = 0
    invoices: int = 0
    net_paid_cents: int = 0


@dataclass
class Fees:
    """A statement's fees by component (cents) and the counts they come from; ``schedules``: ids used."""

    rights_checks: int = 0
    pecs: int = 0
    invoices: int = 0
    net_paid_cents: int = 0
    rights_check_cents: int = 0
    pec_cents: int = 0
    invoice_cents: int = 0
    share_cents: int = 0
    schedules: list[int] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return self.rights_check_cents + self.pec_cents + self.invoice_cents + self.share_cents

    def as_summary(self) -> dict:
        return {
            "rights_checks": self.rights_checks, "pecs": self.pecs, "invoices": self.invoices,
            "net_paid_cents": self.net_paid_cents, "rights_check_cents": self.rights_check_cents,
            "pec_cents": self.pec_cents, "invoice_cents": self.invoice_cents, "share_cents": self.share_cents,
            "total_cents": self.total_cents, "schedules": self.schedules,
        }  # fmt: skip


def compute(counts: dict[dt.date, DayCounts], schedules: dict[dt.date, FeeSchedule | None]) -> Fees:
    """The fees of a period: each day's counts at that day's schedule; the share rounded once (half up)."""
    fees = Fees()
    share_units = 0  # cents × basis points
    used: set[int] = set()
    for day, count in sorted(counts.items()):
        fees.rights_checks += count.rights_checks
        fees.pecs += count.pecs
        fees.invoices += count.invoices
        fees.net_paid_cents += count.net_paid_cents
        schedule = schedules.get(day)
        if schedule is None:
            continue
        used.add(schedule.pk)
        fees.rights_check_cents += count.rights_checks * schedule.per_rights_check_cents
        fees.pec_cents += count.pecs * schedule.per_pec_cents
        fees.invoice_cents += count.invoices * schedule.per_invoice_cents
        share_units += count.net_paid_cents * schedule.paid_share_basis_points
    fees.share_cents = round_half_up(share_units, BASIS_POINTS) if share_units > 0 else 0
    fees.schedules = sorted(used)
    return fees
