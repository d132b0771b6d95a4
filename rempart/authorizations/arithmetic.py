"""Integer-cent and calendar arithmetic of the PEC engine, shared with claims adjudication.

Rounding is explicit and named (half up, to the cent), never a float; month arithmetic clamps to the
month's last day; a lunar birth date gives a range of ages. Pure functions, no rule figures.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from rempart.lib.identifiers import LunarDate


def percent_of(cents: int, percent: int | Decimal) -> int:
    """``cents × percent / 100`` rounded half up to the cent (amounts are never negative here)."""
    return int((Decimal(cents) * Decimal(percent) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later; the last day of the month when that day does not exist (29 Feb → 28 Feb)."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split_in_proportion(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` cents in proportion to ``weights`` (largest remainder; ties to the earlier line).

    With ``total ≤ sum(weights)`` no share exceeds its weight.
    """
    whole = sum(weights)
    if whole == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass(frozen=True)
class AgeRange:
    """The beneficiary's age in whole years on a day: one value, or a range for a lunar birth date."""

    youngest: int
    oldest: int


def age_range(birth: LunarDate, on: dt.date) -> AgeRange:
    """Age on ``on``. A lunar date (month or day unknown, ``00``) gives every possible reading.

    Each rule then takes the reading most favourable to the beneficiary: the shortest renewal period,
    the longest prescription validity, any age band the range touches.
    """
    earliest = dt.date(birth.year, birth.month or 1, birth.day or 1)
    last_month = birth.month or 12
    latest = dt.date(birth.year, last_month, birth.day or calendar.monthrange(birth.year, last_month)[1])

    def years(born: dt.date) -> int:
        return max(0, on.year - born.year - ((on.month, on.day) < (born.month, born.day)))

    return AgeRange(youngest=years(latest), oldest=years(earliest))
