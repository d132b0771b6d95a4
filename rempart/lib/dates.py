"""Dates in words for texts that are French whatever the reader's language (notices, letters, alerts).

Pages and English texts use Django's formats (rempart/formats/): these helpers are for the French
documents, written with ``translation.override("fr")`` or none at all, where "01/12/2026" would read as
12 January to half the readers. The month is in letters and a time says its zone.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")  # fmt: skip


def french_date(day: dt.date) -> str:
    """``1er décembre 2026``."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS[day.month - 1]} {day.year}"


def french_datetime(moment: dt.datetime) -> str:
    """``1er décembre 2026 à 14:05 (heure de Paris, UTC+01:00)`` in the platform's time zone."""
    local = timezone.localtime(moment)
    offset = local.strftime("%z")
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return f"{french_date(local.date())} à {local:%H:%M} (heure de Paris, {zone})"
