"""Billing periods: a period string (``2026-11``, ``2026-W47``, ``2026-11-30``) to its first and last day.

A contract bills monthly, weekly (ISO weeks, Monday to Sunday) or daily; the string's shape says which, and
:func:`kind_of` recognises the kind of a (start, end) pair so that ``prepare_statements`` bills, for a given
period, only the insurers whose contract has that periodicity.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from django.utils.translation import gettext as _

MONTHLY, WEEKLY, DAILY = "monthly", "weekly", "daily"  # BillingContract.Period values

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class PeriodError(ValueError):
    """The period string or the dates are not a billing period; the message says why (user's language)."""


def parse(text: str) -> tuple[dt.date, dt.date, str]:
    """``"2026-11"`` → (1 Nov, 30 Nov, monthly); ``"2026-W47"`` → ISO week; ``"2026-11-30"`` → that day."""
    text = (text or "").strip()
    try:
        if match := _MONTH.match(text):
            year, month = int(match[1]), int(match[2])
            start = dt.date(year, month, 1)
            return start, dt.date(year, month, calendar.monthrange(year, month)[1]), MONTHLY
        if match := _WEEK.match(text):
            start = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
            return start, start + dt.timedelta(days=6), WEEKLY
        if match := _DAY.match(text):
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
            return day, day, DAILY
    except ValueError:
        raise PeriodError(_("La période %(p)s n'existe pas au calendrier.") % {"p": text[:20]}) from None
    raise PeriodError(
        _("Période %(p)s illisible : attendu AAAA-MM (mois), AAAA-Wss (semaine ISO) ou AAAA-MM-JJ (jour).")
        % {"p": text[:20]}
    )


def kind_of(start: dt.date, end: dt.date) -> str:
    """The periodicity a (start, end) pair is: a day, an ISO week or a calendar month; else PeriodError."""
    if start == end:
        return DAILY
    if start.weekday() == 0 and end == start + dt.timedelta(days=6):
        return WEEKLY
    if start.day == 1 and end == start.replace(day=calendar.monthrange(start.year, start.month)[1]):
        return MONTHLY
    raise PeriodError(
        _("Du %(a)s au %(b)s n'est ni un jour, ni une semaine ISO, ni un mois civil.")
        % {"a": start.isoformat(), "b": end.isoformat()}
    )


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
