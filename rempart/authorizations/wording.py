"""The French words of the PEC engine's notes and error messages: amounts, dates, durations, eyes, ears.

In one place so that the input checks and the decision say the same thing the same way (a date is
"1er décembre 2026", never a 01/12 that reads both ways).
"""

from __future__ import annotations

import datetime as dt

from rempart.lib.dates import french_date

from .inputs import AUDI, LEFT, OPTI, RIGHT


def eur(cents: int) -> str:
    """``1 234,56 €`` (non-breaking spaces)."""
    euros, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{euros:,}".replace(",", "\u00a0") + f",{rest:02d}\u00a0€"


def date_fr(day: dt.date) -> str:
    return french_date(day)  # "1er décembre 2026": never a 01/12 that reads both ways


def duration_fr(months: int) -> str:
    if months % 12 == 0:
        years = months // 12
        return f"{years} an{'s' if years > 1 else ''}"
    return f"{months} mois"


EYE = {RIGHT: "l'œil droit", LEFT: "l'œil gauche"}
EAR = {RIGHT: "l'oreille droite", LEFT: "l'oreille gauche"}
DOMAIN_FR = {OPTI: "l'optique", AUDI: "l'audioprothèse"}
